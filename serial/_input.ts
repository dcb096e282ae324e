/**
 * The byte input of the reader: a position in R serialization bytes read as XDR, native
 * little-endian or ascii, with the short-string cache and the ascii tokenizer. It knows bytes,
 * ints, doubles and strings, never R values: `_reader.ts` builds those.
 *
 * @module
 */

import {
  IS_LITTLE_ENDIAN,
  LOW_WORD,
  NA_INTEGER,
  NA_REAL_LOW_WORD,
  SerializationError,
} from "./_types.ts";

export const utf8: TextDecoder = new TextDecoder("utf-8", { fatal: true });
export const latin1: TextDecoder = new TextDecoder("latin1");

/** Slots of the per-message cache of short strings, and the longest string it holds. */
const CACHE_SIZE = 4096;
const SHORT_STRING = 24;

/** Short ASCII strings by their bytes: a direct-mapped table, checked byte for byte. */
class StringCache {
  /** Whether its strings are internalized (V8's unique copy of a text, as property keys are). */
  readonly #internalize: boolean;
  readonly #lengths = new Int32Array(CACHE_SIZE).fill(-1);
  readonly #bytes = new Uint8Array(CACHE_SIZE * SHORT_STRING);
  readonly #strings: string[] = new Array(CACHE_SIZE).fill("");

  /** Its bytes as little-endian words, to compare four at a time (a slot is 4-aligned). */
  readonly #words = new DataView(this.#bytes.buffer);

  constructor(internalize: boolean) {
    this.#internalize = internalize;
  }

  get(
    hash: number,
    bytes: Uint8Array,
    view: DataView,
    start: number,
    n: number,
  ): string | undefined {
    const slot = (hash ^ (hash >>> 16)) & (CACHE_SIZE - 1);
    if (this.#lengths[slot] !== n) return undefined;
    const base = slot * SHORT_STRING;
    const words = this.#words;
    let c = 0;
    for (; c + 4 <= n; c += 4) {
      if (words.getInt32(base + c, true) !== view.getInt32(start + c, true)) return undefined;
    }
    const cached = this.#bytes;
    for (; c < n; c++) if (cached[base + c] !== bytes[start + c]) return undefined;
    return this.#strings[slot];
  }

  set(hash: number, bytes: Uint8Array, start: number, n: number): string {
    const slot = (hash ^ (hash >>> 16)) & (CACHE_SIZE - 1);
    let text = asciiText(bytes, start, n);
    if (this.#internalize) {
      // A property key is internalized, and Object.keys gives that copy (the null prototype
      // keeps "__proto__" an own key).
      const keys: Record<string, number> = Object.create(null);
      keys[text] = 0;
      text = Object.keys(keys)[0]!;
    }
    const base = slot * SHORT_STRING;
    for (let c = 0; c < n; c++) this.#bytes[base + c] = bytes[start + c]!;
    this.#lengths[slot] = n;
    this.#strings[slot] = text;
    return text;
  }
}

/** Up to 8 ASCII bytes as a string in one allocation: no substring, no concatenation. */
function shortText(b: Uint8Array, s: number, n: number): string {
  const f = String.fromCharCode;
  switch (n) {
    case 0:
      return "";
    case 1:
      return f(b[s]!);
    case 2:
      return f(b[s]!, b[s + 1]!);
    case 3:
      return f(b[s]!, b[s + 1]!, b[s + 2]!);
    case 4:
      return f(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!);
    case 5:
      return f(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!);
    case 6:
      return f(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!);
    case 7:
      return f(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!);
    default:
      return f(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!);
  }
}

/**
 * The short-string cache, shared by every message: it checks each hit byte for byte, so a
 * string from one message is only reused for the same bytes in another, and allocating its
 * 100 KB per message cost more than decoding a small one.
 */
let sharedCache: StringCache | undefined;
/**
 * The print names of symbols, shared by every message as the strings are, and internalized:
 * R's names recur across messages (`names`, `class`, a model's variables), and an attribute
 * set under an internalized name skips V8's lookup of the key in its string table.
 */
let sharedNames: StringCache | undefined;

/** Vectors of at most this many elements are read into arrays on V8's heap. */
const SMALL_VECTOR = 16;
/** Vectors of at most this many bytes share a message's arena chunks of `ARENA_CHUNK`. */
const ARENA_VECTOR = 8192;
const ARENA_CHUNK = 65536;
/** The largest first chunk of a message's arena. */
const FIRST_ARENA_CHUNK = 16384;

/**
 * Where a streamed input gets its bytes from (an inflater): `fill` writes the next bytes into
 * `into` from `at` on, as many as fit or are left, and returns how many; 0 only at the end.
 */
export interface ByteSource {
  fill(into: Uint8Array, at: number): number;
  /** The most bytes it may still produce: what bounds a length before it is allocated. */
  readonly left: number;
  /**
   * Why `left` is less than `wanted` when a limit the caller may raise (not the data) is what
   * stops it: the refusal to give instead of "only N bytes remain".
   */
  limitReached(wanted: number): SerializationError | undefined;
}

/** The window a streamed input refills; one 1 MiB buffer, reused, is touched once. */
const WINDOW = 1 << 20;

/**
 * A position in the input, read as XDR, native little-endian or ascii: one buffer, or a window
 * refilled from a {@linkcode ByteSource} (binary formats only), so a large inflated stream is
 * never held whole: its fresh pages cost more than the inflating.
 */
export class Input {
  #chunk: ArrayBuffer | undefined;
  /** The chunk's bytes, where medium vectors are copied (one view per chunk, not per vector). */
  #chunkBytes: Uint8Array | undefined;
  #chunkUsed = 0;
  #bytes: Uint8Array;
  #view: DataView;
  #pos: number;
  #littleEndian = false;
  #ascii = false;
  readonly #source: ByteSource | undefined;
  /** The bytes before the window's start (streamed input only). */
  #base = 0;

  constructor(bytes: Uint8Array, start: number, source?: ByteSource) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#pos = start;
    this.#source = source;
  }

  get pos(): number {
    return this.#base + this.#pos;
  }

  /**
   * The refusal for an item of `n` bytes that exceeds `remaining` because of a limit the caller
   * set (a streamed source's), or undefined when the data itself is short.
   */
  limitReached(n: number): SerializationError | undefined {
    return this.#source?.limitReached(n - (this.#bytes.length - this.#pos));
  }

  /** The bytes left; for a streamed input, the most that may be left. */
  get remaining(): number {
    return this.#bytes.length - this.#pos + (this.#source?.left ?? 0);
  }

  /**
   * Moves the unread bytes to the window's start and fills the rest from the source; true
   * when at least `n` bytes are then at hand. The window grows only for an item longer than
   * it (checked against `remaining` before, so bounded by what the source may produce).
   */
  #refill(n: number): boolean {
    const source = this.#source;
    if (source === undefined) return false;
    const have = this.#bytes.length - this.#pos;
    let window = new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset);
    if (window.length < Math.max(n, WINDOW)) {
      const grown = new Uint8Array(Math.max(n, WINDOW));
      grown.set(this.#bytes.subarray(this.#pos));
      window = grown;
    } else {
      window.copyWithin(0, this.#pos, this.#bytes.length);
    }
    this.#base += this.#pos;
    this.#pos = 0;
    let filled = have;
    while (filled < window.length) {
      const got = source.fill(window, filled);
      if (got === 0) break;
      filled += got;
    }
    this.#bytes = window.subarray(0, filled);
    this.#view = new DataView(window.buffer, window.byteOffset, filled);
    return filled >= n;
  }

  /**
   * The next `size` bytes in a buffer of their own, filled by the source straight in (a
   * streamed input's long vectors: no window grows to hold them, and no copy is made).
   */
  #take(size: number): ArrayBuffer {
    const out = new Uint8Array(size);
    const have = Math.min(size, this.#bytes.length - this.#pos);
    out.set(this.#bytes.subarray(this.#pos, this.#pos + have));
    this.#pos += have;
    let filled = have;
    while (filled < size) {
      const got = this.#source!.fill(out, filled);
      if (got === 0) {
        this.fail(`stream ends after ${filled} of ${size} bytes of a vector`);
      }
      filled += got;
      this.#base += got;
    }
    return out.buffer;
  }

  /** Whether the next `size` bytes go through {@linkcode Input.#take}. */
  #direct(size: number): boolean {
    return this.#source !== undefined && size > WINDOW && size > this.#bytes.length - this.#pos;
  }

  /** Fails unless the object is all there is (ascii: but white space). */
  finish(): void {
    if (this.#ascii) {
      const rest = this.#bytes.subarray(this.#pos);
      if (rest.some((c) => !isSpace(c))) this.fail("data after the end of the R object");
      return;
    }
    const end = this.pos;
    let extra = this.#bytes.length - this.#pos;
    this.#pos = this.#bytes.length;
    while (this.#refill(1)) {
      extra += this.#bytes.length;
      this.#pos = this.#bytes.length;
    }
    if (extra > 0) {
      throw new SerializationError(
        `${extra} bytes after the end of the R object (at byte ${end})`,
        end,
      );
    }
  }

  get ascii(): boolean {
    return this.#ascii;
  }

  /** Smallest number of bytes one int takes in this format (ascii: a digit and a newline). */
  get intWidth(): number {
    return this.#ascii ? 2 : 4;
  }

  setFormat(format: "xdr" | "binary" | "ascii"): void {
    this.#littleEndian = format === "binary";
    this.#ascii = format === "ascii";
  }

  fail(what: string): never {
    throw new SerializationError(`${what} (at byte ${this.pos})`, this.pos);
  }

  #need(n: number, what: string): void {
    if (n > this.#bytes.length - this.#pos && !this.#refill(n)) {
      this.fail(`stream ends after ${this.remaining} bytes; expected ${n} bytes of ${what}`);
    }
  }

  #word(what: string): string {
    const bytes = this.#bytes;
    let i = this.#pos;
    while (i < bytes.length && isSpace(bytes[i]!)) i++;
    const start = i;
    while (i < bytes.length && !isSpace(bytes[i]!)) i++;
    if (start === i || i - start > 64) {
      this.#pos = start;
      this.fail(start === i ? `stream ends; expected ${what}` : `ascii token too long for ${what}`);
    }
    this.#pos = i;
    return latin1.decode(bytes.subarray(start, i));
  }

  int(what = "an integer"): number {
    // The common case in a few instructions, small enough to be inlined where it is called.
    const pos = this.#pos;
    if (pos + 4 <= this.#bytes.length && !this.#ascii) {
      this.#pos = pos + 4;
      return this.#view.getInt32(pos, this.#littleEndian);
    }
    return this.#slowInt(what);
  }

  /** An int in ascii, or one the window does not hold yet. */
  #slowInt(what: string): number {
    if (this.#ascii) {
      const word = this.#word(what);
      if (word === "NA") return NA_INTEGER;
      if (!/^[+-]?\d{1,10}$/.test(word)) this.fail(`"${word}" is not ${what}`);
      const n = Number(word);
      if (n < -2147483648 || n > 2147483647) this.fail(`"${word}" is not a 32-bit integer`);
      return n;
    }
    this.#need(4, what);
    const n = this.#view.getInt32(this.#pos, this.#littleEndian);
    this.#pos += 4;
    return n;
  }

  /**
   * Room for a medium vector of `size` bytes in this message's arena, 8-aligned: one 64 KiB
   * buffer holds many of them, where each in its own buffer costs an allocation (a 200-integer
   * vector: 200 ns here, 950 ns as a slice). The chunk is then `#chunk`; returns the offset.
   */
  #arena(size: number): number {
    let chunk = this.#chunk;
    let at = this.#chunkUsed;
    if (chunk === undefined || at + size > chunk.byteLength) {
      // No larger than what the rest of the message can fill: a chunk is zeroed when made, and
      // 64 KiB for each small message (a request of a few numbers) churns the allocator. The
      // first is smaller still, as the rest of a message is mostly not small vectors (a glm
      // fit: 47 KB left, 15 KB of them in the arena).
      const left = this.#bytes.length - this.#pos;
      const most = chunk === undefined ? FIRST_ARENA_CHUNK : ARENA_CHUNK;
      chunk = this.#chunk = new ArrayBuffer(Math.max(size, Math.min(most, left + size)));
      this.#chunkBytes = undefined;
      at = 0;
    }
    this.#chunkUsed = (at + size + 7) & ~7;
    return at;
  }

  ints(n: number): Int32Array {
    if (this.#ascii) {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = this.int();
      return out;
    }
    const size = n * 4;
    const sameOrder = this.#littleEndian === IS_LITTLE_ENDIAN;
    if (this.#direct(size)) {
      const buffer = this.#take(size);
      const out = new Int32Array(buffer);
      if (!sameOrder) {
        const view = new DataView(buffer);
        for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, this.#littleEndian);
      }
      return out;
    }
    // The message is only made when the window falls short (a string per vector otherwise).
    if (size > this.#bytes.length - this.#pos) this.#need(size, `${n} integers`);
    const start = this.#pos;
    this.#pos += size;
    let out: Int32Array;
    if (size <= ARENA_VECTOR) {
      // Small vectors (names, dims, attributes, byte code) too: a view on the arena costs 15 ns,
      // an array of its own on V8's heap 210 ns (new Int32Array(8)).
      const at = this.#arena(size);
      const buffer = this.#chunk!;
      out = new Int32Array(buffer, at, n);
      if (sameOrder && n > SMALL_VECTOR) {
        (this.#chunkBytes ??= new Uint8Array(buffer)).set(
          this.#bytes.subarray(start, start + size),
          at,
        );
        return out;
      }
    } else if (sameOrder) {
      // A copy (slice) is 4-aligned, so it can back an Int32Array.
      return new Int32Array(this.#bytes.slice(start, start + size).buffer);
    } else {
      out = new Int32Array(n);
    }
    // Swapped through the DataView in one pass: twice as fast as copying, then swapping.
    const view = this.#view;
    const littleEndian = this.#littleEndian;
    for (let i = 0, at = start; i < n; i++, at += 4) out[i] = view.getInt32(at, littleEndian);
    return out;
  }

  doubles(n: number): Float64Array {
    if (this.#ascii) {
      const out = new Float64Array(n);
      const words = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) {
        const word = this.#word("a double");
        if (word === "NA") {
          words[2 * i + LOW_WORD] = NA_REAL_LOW_WORD;
          words[2 * i + 1 - LOW_WORD] = 0x7ff00000;
        } else {
          out[i] = parseAsciiDouble(word, this);
        }
      }
      return out;
    }
    const size = n * 8;
    const littleEndian = this.#littleEndian;
    if (this.#direct(size)) {
      const buffer = this.#take(size);
      if (littleEndian !== IS_LITTLE_ENDIAN) {
        // Swapped in place, a word pair at a time (each pair read before it is written).
        const view = new DataView(buffer);
        const words = new Uint32Array(buffer);
        const first = littleEndian ? LOW_WORD : 1 - LOW_WORD;
        for (let i = 0, at = 0; i < 2 * n; i += 2, at += 8) {
          const a = view.getUint32(at, littleEndian);
          const b = view.getUint32(at + 4, littleEndian);
          words[i + first] = a;
          words[i + 1 - first] = b;
        }
      }
      return new Float64Array(buffer);
    }
    // The message is only made when the window falls short (a string per vector otherwise).
    if (size > this.#bytes.length - this.#pos) this.#need(size, `${n} doubles`);
    const start = this.#pos;
    this.#pos += size;
    const view = this.#view;
    if (n <= SMALL_VECTOR) {
      // Small vectors element by element into a view on the arena (as for integers). A double
      // moved from a DataView into a Float64Array keeps its bits, NaN payload too (x64 and arm64
      // moves do not quiet NaNs); the NA fixtures check it in both byte orders.
      const offset = this.#arena(size);
      const out = new Float64Array(this.#chunk!, offset, n);
      for (let i = 0, at = start; i < n; i++, at += 8) out[i] = view.getFloat64(at, littleEndian);
      return out;
    }
    // Larger ones are copied as bytes or 32-bit words, never through getFloat64.
    const sameOrder = littleEndian === IS_LITTLE_ENDIAN;
    let buffer: ArrayBuffer;
    let offset = 0;
    if (size <= ARENA_VECTOR) {
      offset = this.#arena(size);
      buffer = this.#chunk!;
      if (sameOrder) {
        (this.#chunkBytes ??= new Uint8Array(buffer)).set(
          this.#bytes.subarray(start, start + size),
          offset,
        );
        return new Float64Array(buffer, offset, n);
      }
    } else if (sameOrder) {
      return new Float64Array(this.#bytes.slice(start, start + size).buffer);
    } else {
      buffer = new ArrayBuffer(size);
    }
    const words = new Uint32Array(buffer, offset, 2 * n);
    // The stream's first word is the low one in little-endian order, the high one in XDR.
    const first = littleEndian ? LOW_WORD : 1 - LOW_WORD;
    for (let i = 0, at = start; i < 2 * n; i += 2, at += 8) {
      words[i + first] = view.getUint32(at, littleEndian);
      words[i + 1 - first] = view.getUint32(at + 4, littleEndian);
    }
    return new Float64Array(buffer, offset, n);
  }

  bytes(n: number, what: string): Uint8Array {
    if (this.#ascii) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const word = this.#word("a raw byte");
        if (!/^[0-9a-fA-F]{1,2}$/.test(word)) this.fail(`"${word}" is not a hex byte`);
        out[i] = parseInt(word, 16);
      }
      return out;
    }
    this.#need(n, what);
    const out = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /**
   * The next `n` bytes as a string when they are all ASCII (binary formats only), else
   * undefined with nothing consumed. Short strings are built without a TextDecoder call, whose
   * fixed cost dominates for names and labels.
   */
  asciiText(n: number): string | undefined {
    if (this.#ascii || (n > this.#bytes.length - this.#pos && !this.#refill(n))) return undefined;
    const bytes = this.#bytes;
    const start = this.#pos;
    for (let i = start; i < start + n; i++) if (bytes[i]! >= 0x80) return undefined;
    this.#pos += n;
    return asciiText(bytes, start, n);
  }

  /**
   * As {@linkcode Input.asciiText}, for a symbol's print name: one of up to 24 bytes comes from
   * the shared cache of names (see `sharedNames`).
   */
  nameText(n: number): string | undefined {
    if (n > SHORT_STRING) return this.asciiText(n);
    if (this.#ascii || (n > this.#bytes.length - this.#pos && !this.#refill(n))) return undefined;
    const bytes = this.#bytes;
    const view = this.#view;
    const start = this.#pos;
    const stop = start + n;
    let hash = 0x811c9dc5 ^ n;
    let high = 0;
    let k = start;
    for (; k + 4 <= stop; k += 4) {
      const word = view.getInt32(k, true);
      high |= word;
      hash = Math.imul(hash ^ word, 0x01000193);
    }
    for (; k < stop; k++) {
      const c = bytes[k]!;
      high |= c;
      hash = Math.imul(hash ^ c, 0x01000193);
    }
    if ((high & 0x80808080) !== 0) return undefined;
    this.#pos = stop;
    const cache = (sharedNames ??= new StringCache(true));
    return cache.get(hash, bytes, view, start, n) ?? cache.set(hash, bytes, start, n);
  }

  /**
   * Reads the CHARSXPs from `data[from]` on while each is NA or plain ASCII (binary formats
   * only), and returns the index of the first it left (a marked or non-ASCII string, or the
   * end). The bytes of a run are gathered and decoded with one TextDecoder call, then cut into
   * strings: per-string decoding or concatenation costs several times more for 10^5 strings.
   */
  asciiStrings(data: (string | null)[], from: number): number {
    if (this.#ascii) return from;
    const bytes = this.#bytes;
    const view = this.#view;
    const littleEndian = this.#littleEndian;
    const end = bytes.length;
    let pos = this.#pos;
    let i = from;
    let total = 0;
    // (index, start, length) per string; at most one per 8 bytes left, so O(input).
    // Made when the first string longer than 8 bytes comes (most vectors have none).
    let spans: Int32Array | undefined;
    let count = 0;
    // Short strings often repeat (a character column of a few values): one JS string per
    // value, as R's own string cache keeps one CHARSXP, saves an allocation per element: names
    // and labels repeat across a message's vectors (a model's row names in ten of them) and
    // across messages. But a hit saves little time over making the string (~equal for 5
    // bytes), and a miss costs a probe and a store into the cache's 150 KB: at 40-70% hits
    // (10^4 "r1".."r10000" after the same message, 10^4 of 3,000 ids) a vector reads 25-35%
    // slower than without it. So the cache is dropped for the rest of a vector once a run of
    // 256 of its strings hits fewer than 224 times; a run, not only the first, as the first
    // may hit strings the previous message left.
    let cached = true;
    let hits = 0;
    const cache = (sharedCache ??= new StringCache(false));
    for (; i < data.length; i++) {
      if (pos + 8 > end) break;
      const flags = view.getInt32(pos, littleEndian);
      // A CHARSXP without the latin1 (4) or bytes (2) mark.
      if ((flags & 0xff) !== 9 || ((flags >>> 12) & 6) !== 0) break;
      const n = view.getInt32(pos + 4, littleEndian);
      if (n === -1) {
        data[i] = null;
        pos += 8;
        continue;
      }
      if (n < 0 || pos + 8 + n > end) break;
      const start = pos + 8;
      const stop = start + n;
      if (cached && ((i - from) & 255) === 255) {
        if (hits < 224) cached = false;
        hits = 0;
      }
      // Four bytes at a time: a word's high bits, and a hash of whole words (the cache checks
      // each hit byte for byte, so the hash only spreads strings over its slots).
      let hash = 0x811c9dc5 ^ n;
      let high = 0;
      let k = start;
      if (cached && n <= SHORT_STRING) {
        for (; k + 4 <= stop; k += 4) {
          const word = view.getInt32(k, true);
          high |= word;
          hash = Math.imul(hash ^ word, 0x01000193);
        }
        for (; k < stop; k++) {
          const c = bytes[k]!;
          high |= c;
          hash = Math.imul(hash ^ c, 0x01000193);
        }
      } else {
        for (; k + 4 <= stop; k += 4) high |= view.getInt32(k, true);
        for (; k < stop; k++) high |= bytes[k]!;
      }
      if ((high & 0x80808080) !== 0) break;
      pos = stop;
      if (cached && n <= SHORT_STRING) {
        const hit = cache.get(hash, bytes, view, start, n);
        if (hit !== undefined) hits++;
        data[i] = hit ?? cache.set(hash, bytes, start, n);
        continue;
      }
      // A vector of at most 8 strings is never gathered into one decode (see below), so its
      // strings are made as they come, without the spans.
      if (n <= 8 || data.length <= 8) {
        data[i] = asciiText(bytes, start, n);
        continue;
      }
      spans ??= new Int32Array(3 * Math.min(data.length - i, Math.ceil((end - start) / 8) + 1));
      spans[count] = i;
      spans[count + 1] = start;
      spans[count + 2] = n;
      count += 3;
      total += n;
    }
    this.#pos = pos;
    if (spans === undefined) return i;
    if (count <= 3 * 8 || total <= 64) {
      for (let s = 0; s < count; s += 3) {
        data[spans[s]!] = asciiText(bytes, spans[s + 1]!, spans[s + 2]!);
      }
    } else {
      const gathered = new Uint8Array(total);
      let at = 0;
      for (let s = 0; s < count; s += 3) {
        const start = spans[s + 1]!;
        const n = spans[s + 2]!;
        if (n <= 16) { for (let k = 0; k < n; k++) gathered[at + k] = bytes[start + k]!; }
        else gathered.set(bytes.subarray(start, start + n), at);
        at += n;
      }
      const text = latin1.decode(gathered);
      at = 0;
      for (let s = 0; s < count; s += 3) {
        const n = spans[s + 2]!;
        data[spans[s]!] = text.substring(at, at + n);
        at += n;
      }
    }
    return i;
  }

  /** The bytes of a string of `n` bytes (ascii: an escaped token). */
  stringBytes(n: number): Uint8Array {
    if (!this.#ascii) return this.bytes(n, "a string");
    const bytes = this.#bytes;
    let i = this.#pos;
    while (i < bytes.length && isSpace(bytes[i]!)) i++;
    const out = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      if (i >= bytes.length) {
        this.#pos = i;
        this.fail(`stream ends inside an ascii string; expected ${n - k} more characters`);
      }
      let c = bytes[i++]!;
      if (c === 0x5c) {
        const e = bytes[i++];
        if (e === undefined) break;
        if (e >= 0x30 && e <= 0x37) {
          c = e - 0x30;
          for (
            let d = 0;
            d < 2 && i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x37;
            d++
          ) {
            c = c * 8 + bytes[i++]! - 0x30;
          }
          c &= 0xff;
        } else {
          c = ESCAPES[e] ?? e;
        }
      }
      out[k] = c;
    }
    this.#pos = i;
    return out;
  }
}

const ESCAPES: Record<number, number> = {
  0x6e: 10, // n
  0x74: 9, // t
  0x76: 11, // v
  0x62: 8, // b
  0x72: 13, // r
  0x66: 12, // f
  0x61: 7, // a
};

export function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function parseAsciiDouble(word: string, input: Input): number {
  switch (word) {
    case "NaN":
      return NaN;
    case "Inf":
      return Infinity;
    case "-Inf":
      return -Infinity;
  }
  const hex = /^([+-]?)0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)$/i.exec(word);
  if (hex) {
    const frac = hex[3] ?? "";
    const mantissa = parseInt((hex[2] ?? "0") + frac || "0", 16) / 16 ** frac.length;
    return (hex[1] === "-" ? -1 : 1) * mantissa * 2 ** Number(hex[4]);
  }
  const n = Number(word);
  if (word.trim() === "" || Number.isNaN(n)) input.fail(`"${word}" is not a double`);
  return n;
}

export function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

/** Strings up to this many bytes are made by `String.fromCharCode`, longer ones decoded. */
const MEDIUM_STRING = 128;
/** The char codes of one string for `String.fromCharCode.apply`, reused from string to string. */
const codes: number[] = [];

/**
 * `n` ASCII bytes from `start` as a string, without a TextDecoder call for short ones: its
 * fixed cost (~500 ns here) is more than `fromCharCode` over a reused array up to 128 bytes
 * (~100 ns for 12 bytes, 200 ns for 46, 450 ns for 128), and that beats concatenating chars.
 */
function asciiText(bytes: Uint8Array, start: number, n: number): string {
  if (n <= 8) return shortText(bytes, start, n);
  if (n > MEDIUM_STRING) return latin1.decode(bytes.subarray(start, start + n));
  codes.length = n;
  for (let k = 0; k < n; k++) codes[k] = bytes[start + k]!;
  return String.fromCharCode.apply(null, codes);
}

/** ASCII bytes as a string (see `asciiText`). */
export function asciiString(bytes: Uint8Array): string {
  return asciiText(bytes, 0, bytes.length);
}
