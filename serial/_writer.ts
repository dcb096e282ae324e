/**
 * The writer: typed R values (or plain JS, converted by `toR`) to R serialization version 2 or
 * 3, as native little-endian binary (`B\n`, what nanonext sends), XDR (`X\n`, R's default) or
 * ascii (`A\n`). Never writes ALTREP, so any R since 3.5 (version 3) or 2.3 (version 2) reads it.
 *
 * @module
 */

import { toR } from "./_convert.ts";
import type { Simplified } from "./_simplify.ts";
import {
  IS_LITTLE_ENDIAN,
  isNA,
  LOW_WORD,
  NA_INTEGER,
  type RAttributes,
  type RBytecode,
  type RCharacter,
  REncoding,
  type RPairlist,
  type RPairlistCell,
  type RValue,
  type RWithAttributes,
  SerializationError,
} from "./_types.ts";
import type { JsValue } from "./_convert.ts";

/**
 * The byte layouts R reads: see {@linkcode SerializeOptions.format}.
 *
 * @example
 * ```ts
 * import { SerialFormat, serialize } from "@x/rsock/serial";
 * serialize(1, { format: SerialFormat.xdr }); // what R's serialize(1, NULL) writes
 * ```
 */
export const SerialFormat = {
  /** `B\n`: native binary, little-endian; what nanonext's `send(mode = "serial")` writes. */
  binary: "binary",
  /** `X\n`: XDR, big-endian; what R's `serialize(x, NULL)` writes. */
  xdr: "xdr",
  /** `A\n`: text, one token per line; `serialize(x, NULL, ascii = TRUE)`. */
  ascii: "ascii",
} as const;

/** One of the {@linkcode SerialFormat} values. */
export type SerialFormat = typeof SerialFormat[keyof typeof SerialFormat];

/** Options for {@linkcode serialize}. */
export interface SerializeOptions {
  /**
   * The byte layout.
   *
   * @default {"binary"}
   */
  format?: SerialFormat;
  /**
   * R serialization version: 3 (R ≥ 3.5, names the native encoding) or 2.
   *
   * @default {3}
   */
  version?: 2 | 3;
  /**
   * The typed R value `value` was simplified from (usually the request being answered): where
   * `value` still fits it, its R type and attributes are written (see {@linkcode toR}). Arrays
   * and objects that `simplify` returned remember theirs without this.
   */
  like?: RValue;
  /**
   * Like the `refhook` of R's `serialize(x, NULL, refhook = f)`: called for each environment
   * with a frame (not the global, base, empty, package or namespace ones), external pointer and
   * weak reference, each time the value holds it. Strings returned are written in its place as
   * a persistent reference (PERSISTSXP), which the reading R hands to its own `refhook`;
   * `undefined` writes the object itself. `null` among them writes `NA_character_`; each string
   * is written as the writer writes any unmarked string (ASCII, else UTF-8). No strings (`[]`)
   * is a `TypeError`, as R's `serialize()` stops when its refhook gives none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { type RValue, serialize, unserialize } from "@x/rsock/serial";
   * const session: RValue = {
   *   type: "environment", name: "frame", locked: false,
   *   enclosure: { type: "environment", name: "global" },
   *   frame: { type: "NULL" }, hashTable: { type: "NULL" },
   * };
   * // R reads it with unserialize(bytes, refhook = function(names) sessions[[names]])
   * const bytes = serialize({ type: "list", data: [session, session] }, {
   *   format: "xdr",
   *   persistentName: (value) => value === session ? ["session-7"] : undefined,
   * });
   * const persistent: RValue = { type: "persistent", names: ["session-7"] };
   * assert.deepStrictEqual(unserialize(bytes), { type: "list", data: [persistent, persistent] });
   * ```
   */
  persistentName?: (value: RValue) => (string | null)[] | undefined;
  /**
   * Return a view of a buffer `serialize` keeps and writes over on its next call (borrowing
   * or not), instead of new memory: for bytes used at once (written to a socket or a file,
   * hashed) in a loop. New memory for every result costs more than writing it while the
   * earlier results wait to be collected: each first write to a page of it is a page fault.
   * Buffers of up to 64 MiB are recycled; a larger result keeps its own.
   *
   * @default {false}
   */
  borrowBuffer?: boolean;
}

const encoder = new TextEncoder();
// R 4.2.2 as the writer version, and the minimum reader each version needs.
const WRITER_VERSION = 0x040202;
const MIN_READER = { 2: 0x020300, 3: 0x030500 } as const;

/** Vectors up to this many bytes are copied word by word, without a byte view of them. */
const SMALL_BYTES = 512;
/** The buffer of the last short vector copied, and a view of it, for one `serialize` call. */
let sourceBuffer: ArrayBufferLike | undefined;
let sourceView: DataView | undefined;

/** Values estimated at up to this many bytes are written into the shared scratch buffer. */
const SCRATCH_MAX = 1 << 20;
const SCRATCH_START = 1 << 16;
/** The largest scratch buffer kept between calls. */
const SCRATCH_KEEP = 1 << 22;
/** The largest scratch buffer kept between calls that borrow it (`borrowBuffer`). */
const BORROW_KEEP = 1 << 26;
let scratchBuffer: Uint8Array | undefined;
let scratchView: DataView | undefined;

class Output {
  #buffer: Uint8Array;
  #view: DataView;
  #length = 0;
  readonly #littleEndian: boolean;
  readonly #ascii: boolean;

  /** Whether `#buffer` is the shared scratch buffer, handed out only as a borrowed view. */
  readonly #scratch: boolean;
  readonly #borrow: boolean;

  constructor(format: SerialFormat, size: number, borrow: boolean) {
    this.#littleEndian = format === "binary";
    this.#ascii = format === "ascii";
    this.#borrow = borrow;
    // Small and mid-sized values (closures, model fits: many small items, hard to estimate)
    // are written into one buffer kept between calls and copied out, instead of growing a
    // new one from a guess every call.
    this.#scratch = borrow || size <= SCRATCH_MAX;
    if (this.#scratch && (scratchBuffer === undefined || scratchBuffer.length < size)) {
      scratchBuffer = new Uint8Array(Math.max(SCRATCH_START, size));
      scratchView = new DataView(scratchBuffer.buffer);
    }
    this.#buffer = this.#scratch ? scratchBuffer! : new Uint8Array(size);
    this.#view = this.#scratch ? scratchView! : new DataView(this.#buffer.buffer);
  }

  get isAscii(): boolean {
    return this.#ascii;
  }

  #reserve(n: number): void {
    const needed = this.#length + n;
    if (needed <= this.#buffer.length) return;
    // Double, or (one large vector) take what is needed plus room for what follows.
    const size = Math.max(this.#buffer.length * 2, needed + (needed >>> 4));
    const next = new Uint8Array(size);
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
    this.#view = new DataView(next.buffer);
  }

  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  #text(text: string): void {
    this.raw(encoder.encode(text));
  }

  int(n: number): void {
    if (this.#ascii) {
      this.#text(n === NA_INTEGER ? "NA\n" : `${n}\n`);
      return;
    }
    this.#reserve(4);
    this.#view.setInt32(this.#length, n, this.#littleEndian);
    this.#length += 4;
  }

  ints(data: Int32Array): void {
    if (this.#ascii) {
      for (const n of data) this.int(n);
      return;
    }
    if (this.#littleEndian === IS_LITTLE_ENDIAN) {
      this.#sameOrder(data);
      return;
    }
    // Byte-swapped through the DataView: twice as fast as copying and swapping words.
    this.#reserve(data.byteLength);
    const view = this.#view;
    const littleEndian = this.#littleEndian;
    let at = this.#length;
    for (let i = 0; i < data.length; i++, at += 4) view.setInt32(at, data[i]!, littleEndian);
    this.#length = at;
  }

  doubles(data: Float64Array): void {
    if (this.#ascii) {
      for (const x of data) this.#text(`${asciiDouble(x)}\n`);
      return;
    }
    // Bytes are copied, never written through setFloat64, so NA's NaN payload survives.
    if (this.#littleEndian === IS_LITTLE_ENDIAN) {
      this.#sameOrder(data);
      return;
    }
    // Word by word through the DataView (a Float64Array is 8-aligned, so its words can be
    // read in place); setFloat64 is avoided as it may not keep NaN payloads.
    this.#reserve(data.byteLength);
    const words = new Uint32Array(data.buffer, data.byteOffset, 2 * data.length);
    const view = this.#view;
    const littleEndian = this.#littleEndian;
    const first = littleEndian ? LOW_WORD : 1 - LOW_WORD;
    let at = this.#length;
    for (let i = 0; i < words.length; i += 2, at += 8) {
      view.setUint32(at, words[i + first]!, littleEndian);
      view.setUint32(at + 4, words[i + 1 - first]!, littleEndian);
    }
    this.#length = at;
  }

  /**
   * A vector's bytes as they are in memory. Short vectors are copied word by word through a
   * view of their whole buffer, kept while the next vector shares it (a decoded value's vectors
   * share a few arenas): a new view for each costs more than their words, and is garbage.
   */
  #sameOrder(data: Int32Array | Float64Array): void {
    const bytes = data.byteLength;
    if (bytes > SMALL_BYTES) {
      this.raw(new Uint8Array(data.buffer, data.byteOffset, bytes));
      return;
    }
    const buffer = data.buffer;
    if (buffer !== sourceBuffer) {
      sourceBuffer = buffer;
      sourceView = new DataView(buffer);
    }
    this.#reserve(bytes);
    const from = sourceView!;
    const view = this.#view;
    const start = data.byteOffset;
    let at = this.#length;
    // Words keep every bit (a NaN's payload too); both sides are this machine's order.
    for (let k = 0; k < bytes; k += 4, at += 4) {
      view.setInt32(at, from.getInt32(start + k, IS_LITTLE_ENDIAN), IS_LITTLE_ENDIAN);
    }
    this.#length = at;
  }

  rawBytes(data: Uint8Array): void {
    if (!this.#ascii) {
      this.raw(data);
      return;
    }
    for (const b of data) this.#text(`${b.toString(16).padStart(2, "0")}\n`);
  }

  stringBytes(bytes: Uint8Array): void {
    if (!this.#ascii) {
      this.raw(bytes);
      return;
    }
    let text = "";
    for (const c of bytes) text += asciiChar(c);
    this.#text(`${text}\n`);
  }

  /**
   * A CHARSXP for a JS string, encoded straight into the buffer: ASCII (the common case) byte by
   * byte, anything else through encodeInto, then the flags and length are filled in.
   */
  /**
   * A string as a CHARSXP with `charsxp`'s flags: ASCII carries the ASCII mark, anything else
   * `mark` (UTF-8, 8, by default; 0 for none).
   */
  charsxp(text: string, charsxp: number, mark = 8): void {
    if (this.#ascii) {
      const bytes = encoder.encode(text);
      const ascii = bytes.length === text.length;
      this.int(charsxp | ((ascii ? 64 : mark) << 12));
      this.int(bytes.length);
      this.stringBytes(bytes);
      return;
    }
    this.#reserve(8 + text.length * 3);
    const buffer = this.#buffer;
    const start = this.#length + 8;
    let ascii = true;
    let n = 0;
    for (; n < text.length; n++) {
      const c = text.charCodeAt(n);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      buffer[start + n] = c;
    }
    if (!ascii) n = encoder.encodeInto(text, buffer.subarray(start)).written;
    // ASCII strings carry the ASCII mark, everything else UTF-8, as R does in a UTF-8 locale.
    this.#view.setInt32(this.#length, charsxp | ((ascii ? 64 : mark) << 12), this.#littleEndian);
    this.#view.setInt32(this.#length + 4, n, this.#littleEndian);
    this.#length = start + n;
  }

  /**
   * A character vector without encoding marks, written in one loop with the buffer reserved
   * once: the per-string calls of `charsxp` cost more than the copying for short strings.
   */
  plainStrings(data: (string | null)[]): void {
    // Room for every string as ASCII (one byte a character); a string that is not takes up
    // to three, reserved when met: reserving three for all would triple a large vector's
    // buffer for nothing.
    let need = 0;
    for (let i = 0; i < data.length; i++) need += 8 + (data[i]?.length ?? 0);
    this.#reserve(need);
    let buffer = this.#buffer;
    let view = this.#view;
    const littleEndian = this.#littleEndian;
    let at = this.#length;
    let reservedEnd = at + need;
    for (let i = 0; i < data.length; i++) {
      const text = data[i];
      if (text === null || text === undefined) {
        view.setInt32(at, 9, littleEndian);
        view.setInt32(at + 4, -1, littleEndian);
        at += 8;
        continue;
      }
      const start = at + 8;
      let n = 0;
      let ascii = true;
      for (; n < text.length; n++) {
        const c = text.charCodeAt(n);
        if (c >= 0x80 || c === 0) {
          ascii = false;
          break;
        }
        buffer[start + n] = c;
      }
      if (!ascii) {
        if (text.includes("\0")) throw nulError(text);
        this.#length = at;
        this.#reserve(reservedEnd - at + 2 * text.length);
        reservedEnd += 2 * text.length;
        buffer = this.#buffer;
        view = this.#view;
        n = encoder.encodeInto(text, buffer.subarray(start)).written;
      }
      // ASCII strings carry the ASCII mark, everything else UTF-8, as R does in a UTF-8 locale.
      view.setInt32(at, 9 | ((ascii ? 64 : 8) << 12), littleEndian);
      view.setInt32(at + 4, n, littleEndian);
      at = start + n;
    }
    this.#length = at;
  }

  result(): Uint8Array {
    if (this.#borrow) {
      // Kept for the next call up to a bound; past it the view alone keeps the buffer.
      const keep = this.#buffer.length <= BORROW_KEEP;
      scratchBuffer = keep ? this.#buffer : undefined;
      scratchView = keep ? this.#view : undefined;
      return this.#buffer.subarray(0, this.#length);
    }
    if (this.#scratch) {
      const out = this.#buffer.slice(0, this.#length);
      // Keep the grown buffer for the next call, up to a bound.
      if (this.#buffer.length <= SCRATCH_KEEP) {
        scratchBuffer = this.#buffer;
        scratchView = this.#view;
      }
      return out;
    }
    // A nearly full buffer is returned as is: copying 8 MB costs more than 1/8 of it unused.
    if (this.#length >= this.#buffer.length - (this.#buffer.length >>> 3)) {
      return this.#buffer.subarray(0, this.#length);
    }
    return this.#buffer.slice(0, this.#length);
  }
}

/**
 * About how many bytes `value` takes serialized, looking `depth` levels into lists (a data
 * frame's columns), so the output buffer is allocated once instead of doubling from 256 bytes.
 */
function estimateBytes(value: RValue, depth: number): number {
  switch (value.type) {
    case "logical":
    case "integer":
      return 8 + 4 * value.data.length;
    case "double":
    case "complex":
    case "raw":
      return 8 + value.data.byteLength;
    case "character":
      // Short strings are the common case; a long one makes the buffer grow once more.
      return 8 + 16 * value.data.length;
    case "list":
    case "expression": {
      let bytes = 8 + 64;
      for (const element of value.data) bytes += depth > 0 ? estimateBytes(element, depth - 1) : 8;
      return bytes;
    }
    default:
      return 64;
  }
}

/** R strings cannot hold NUL; R would stop with "embedded nul in string" on reading. */
function nulError(text: string): SerializationError {
  return new SerializationError(
    `string ${JSON.stringify(text.slice(0, 20))}… holds a NUL character, which R strings cannot`,
  );
}

const ASCII_ESCAPES: Record<number, string> = {
  10: "\\n",
  9: "\\t",
  11: "\\v",
  8: "\\b",
  13: "\\r",
  12: "\\f",
  7: "\\a",
  0x5c: "\\\\",
  0x3f: "\\?",
  0x27: "\\'",
  0x22: '\\"',
};

function asciiChar(c: number): string {
  const escape = ASCII_ESCAPES[c];
  if (escape !== undefined) return escape;
  if (c <= 32 || c > 126) return `\\${c.toString(8).padStart(3, "0")}`;
  return String.fromCharCode(c);
}

function asciiDouble(x: number): string {
  if (x !== x) return isNA(x) ? "NA" : "NaN";
  if (x === Infinity) return "Inf";
  if (x === -Infinity) return "-Inf";
  // JS's shortest round-trip form reads back exactly through C's strtod.
  return Object.is(x, -0) ? "-0" : String(x);
}

/** SEXP type codes (R's `TYPEOF`), as written in flags and in a byte-code constant pool. */
const TYPE_CODE = {
  NULL: 0,
  symbol: 1,
  pairlist: 2,
  closure: 3,
  environment: 4,
  promise: 5,
  language: 6,
  special: 7,
  builtin: 8,
  logical: 10,
  integer: 13,
  double: 14,
  complex: 15,
  character: 16,
  dots: 17,
  list: 19,
  expression: 20,
  bytecode: 21,
  externalptr: 22,
  weakref: 23,
  raw: 24,
  S4: 25,
  unbound: 1, // R's unbound marker is a symbol
} as const;

const SYMSXP = 1;
const LISTSXP = 2;
const CHARSXP = 9;
const PERSISTSXP = 247;
const PACKAGESXP = 248;
const NAMESPACESXP = 249;
const NILVALUE = 254;
const UNBOUNDVALUE = 252;
const REFSXP = 255;
const BCREPDEF = 244;
const BCREPREF = 243;
const ATTRLANGSXP = 240;
const ATTRLISTSXP = 239;
const ENVIRONMENT_CODE = { global: 253, empty: 242, base: 241, "base namespace": 250 } as const;

function hasAny(attributes: RAttributes | undefined): attributes is RAttributes {
  if (attributes === undefined) return false;
  for (const _ in attributes) return true;
  return false;
}

/** The numbers map of a write numbered by steps, which never uses it. */
const NO_NUMBERS: Map<RPairlistCell, number> = new Map();

/**
 * Which cells of a byte code's calls R finds twice, and the numbers given as they are written:
 * by `steps` (see {@linkcode CellScan}) when the walk writing them is the scan's, else by hashing
 * each cell.
 */
interface SharedCells {
  shared: Set<RPairlistCell>;
  numbers: Map<RPairlistCell, number>;
  steps: Int32Array | undefined;
  /** The next step of `steps`. */
  at: number;
}

class Writer {
  readonly #out: Output;
  readonly #symbols = new Map<string, number>();
  /** Environments, external pointers and weak references written, by identity. */
  readonly #refs = new Map<object, number>();
  #refCount = 0;
  readonly #persistentName: ((value: RValue) => (string | null)[] | undefined) | undefined;

  constructor(out: Output, persistentName?: (value: RValue) => (string | null)[] | undefined) {
    this.#out = out;
    this.#persistentName = persistentName;
  }

  item(value: RValue, depth: number): void {
    if (depth > 10_000) throw new SerializationError("value nests more than 10000 levels deep");
    const out = this.#out;
    switch (value.type) {
      case "NULL":
        out.int(NILVALUE);
        return;
      case "unbound":
        out.int(UNBOUNDVALUE);
        return;
      case "environment":
        if (value.name === "frame" && this.#persistent(value)) return;
        this.#environment(value, depth);
        return;
      case "persistent": {
        // One node read twice came from a PERSISTSXP and a reference to it, as R wrote them.
        const ref = this.#refs.get(value);
        if (ref !== undefined) this.#reference(ref);
        else this.#persistentNames(value.names, value.encodings, value);
        return;
      }
      case "symbol":
        this.#symbol(value.name, value.encoding);
        return;
      case "pairlist":
      case "language":
      case "dots":
        this.#pairlist(value, depth);
        return;
      case "closure":
        out.int(this.#flags(TYPE_CODE.closure, value) | 0x400);
        if (hasAny(value.attributes)) this.#attributes(value.attributes, depth);
        this.item(value.environment, depth + 1);
        this.item(value.formals, depth + 1);
        this.item(value.body, depth + 1);
        return;
      case "promise": {
        const hasEnvironment = value.environment.type !== "NULL";
        out.int(this.#flags(TYPE_CODE.promise, value) | (hasEnvironment ? 0x400 : 0));
        if (hasAny(value.attributes)) this.#attributes(value.attributes, depth);
        if (hasEnvironment) this.item(value.environment, depth + 1);
        this.item(value.value, depth + 1);
        this.item(value.expression, depth + 1);
        return;
      }
      case "externalptr":
      case "weakref": {
        if (this.#persistent(value)) return;
        const ref = this.#refs.get(value);
        if (ref !== undefined) {
          this.#reference(ref);
          return;
        }
        out.int(this.#flags(TYPE_CODE[value.type], value));
        this.#refs.set(value, ++this.#refCount);
        if (value.type === "externalptr") {
          this.item(value.protected, depth + 1);
          this.item(value.tag, depth + 1);
        }
        if (hasAny(value.attributes)) this.#attributes(value.attributes, depth);
        return;
      }
      case "builtin":
      case "special": {
        out.int(this.#flags(TYPE_CODE[value.type], value));
        const name = encoder.encode(value.name);
        out.int(name.length);
        out.stringBytes(name);
        if (hasAny(value.attributes)) this.#attributes(value.attributes, depth);
        return;
      }
      case "S4":
        out.int(this.#flags(TYPE_CODE.S4, value));
        if (hasAny(value.attributes)) this.#attributes(value.attributes, depth);
        return;
      case "bytecode":
        out.int(this.#flags(TYPE_CODE.bytecode, value));
        this.#bytecode(value, depth);
        if (hasAny(value.attributes)) this.#attributes(value.attributes, depth);
        return;
    }
    const flags = this.#flags(vectorCode(value.type), value);
    out.int(flags);
    switch (value.type) {
      case "integer":
      case "logical":
        this.#length(value.data.length);
        out.ints(value.data);
        break;
      case "double":
        this.#length(value.data.length);
        out.doubles(value.data);
        break;
      case "complex":
        if (value.data.length % 2 !== 0) {
          throw new TypeError(
            `complex data of odd length ${value.data.length}; expected (re, im) pairs`,
          );
        }
        this.#length(value.data.length / 2);
        out.doubles(value.data);
        break;
      case "raw":
        this.#length(value.data.length);
        out.rawBytes(value.data);
        break;
      case "character":
        this.#length(value.data.length);
        this.#strings(value);
        break;
      case "list":
      case "expression":
        this.#length(value.data.length);
        for (const element of value.data) this.item(element, depth + 1);
        break;
      default:
        throw new TypeError(`cannot serialize an R value of type "${(value as RValue).type}"`);
    }
    if ((flags & 0x200) !== 0) this.#attributes(value.attributes!, depth);
  }

  /** The flags word: type, R's gp bits, the object bit and whether attributes follow. */
  #flags(type: number, value: RWithAttributes): number {
    const levels = value.levels;
    let flags = levels === undefined ? type : type | (levels & 0xffff) << 12;
    const attributes = value.attributes;
    const object = value.object;
    if (attributes === undefined) return object === true ? flags | 0x100 : flags;
    // One pass over the names: whether there is any, and whether one is the class.
    let hasAttributes = false;
    let hasClass = false;
    for (const name in attributes) {
      if (!Object.hasOwn(attributes, name)) continue;
      hasAttributes = true;
      if (name === "class") {
        hasClass = true;
        break;
      }
    }
    if (hasAttributes) flags |= 0x200;
    // R sets the object bit exactly when a class attribute exists, unless the value says not.
    if (object ?? hasClass) flags |= 0x100;
    return flags;
  }

  /**
   * Asks the refhook about an environment, pointer or weak reference, before looking for it
   * among those written (as R does, so each occurrence it claims is its own PERSISTSXP), and
   * writes the strings it gives; false when it gives none.
   */
  #persistent(value: RValue): boolean {
    if (this.#persistentName === undefined) return false;
    const names = this.#persistentName(value);
    if (names === undefined) return false;
    // R's serialize() stops when its refhook gives no strings (its reader would accept them).
    if (Array.isArray(names) && names.length === 0) {
      throw new TypeError(
        `persistentName returned [] for a value of type "${value.type}"; expected one or more ` +
          "strings, or undefined to write the object itself",
      );
    }
    this.#persistentNames(names, undefined, value);
    return true;
  }

  /**
   * R's PERSISTSXP: the placeholder 0, the count and the strings, each as a STRSXP's (NA and
   * encoding marks included; none when a node was read so). `value` takes its reference index
   * (R's HashAdd), so an occurrence the refhook declines refers back to it.
   */
  #persistentNames(
    names: (string | null)[],
    encodings: REncoding[] | undefined,
    value: RValue,
  ): void {
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string" && n !== null)) {
      throw new TypeError(
        `a persistent reference's names are ${JSON.stringify(names)}; ` +
          "expected an array of strings (null for NA)",
      );
    }
    const out = this.#out;
    out.int(PERSISTSXP);
    out.int(0);
    out.int(names.length);
    const strings: RCharacter = { type: "character", data: names };
    if (encodings !== undefined) strings.encodings = encodings;
    this.#strings(strings);
    this.#refs.set(value, ++this.#refCount);
  }

  #reference(index: number): void {
    if (index > 0x7fffff) {
      this.#out.int(REFSXP);
      this.#out.int(index);
    } else {
      this.#out.int((index << 8) | REFSXP);
    }
  }

  #environment(value: Extract<RValue, { type: "environment" }>, depth: number): void {
    const out = this.#out;
    if (value.name !== "frame" && value.name !== "package" && value.name !== "namespace") {
      const code = ENVIRONMENT_CODE[value.name];
      if (code === undefined) throw new TypeError(`unknown special environment "${value.name}"`);
      out.int(code);
      return;
    }
    const ref = this.#refs.get(value);
    if (ref !== undefined) {
      this.#reference(ref);
      return;
    }
    this.#refs.set(value, ++this.#refCount);
    if (value.name === "frame") {
      out.int(TYPE_CODE.environment);
      out.int(value.locked ? 1 : 0);
      this.item(value.enclosure, depth + 1);
      this.item(value.frame, depth + 1);
      this.item(value.hashTable, depth + 1);
      // An environment's attributes are always written, NULL when it has none.
      if (hasAny(value.attributes)) this.#attributes(value.attributes, depth);
      else out.int(NILVALUE);
      return;
    }
    out.int(value.name === "package" ? PACKAGESXP : NAMESPACESXP);
    out.int(0);
    out.int(value.spec.length);
    for (const name of value.spec) this.#charsxp(name);
  }

  #length(n: number): void {
    if (n > 2147483647) {
      this.#out.int(-1);
      this.#out.int(Math.floor(n / 2 ** 32));
      this.#out.int(n >>> 0);
    } else {
      this.#out.int(n);
    }
  }

  #strings(value: RCharacter): void {
    const out = this.#out;
    if (value.encodings === undefined && !out.isAscii) {
      out.plainStrings(value.data);
      return;
    }
    for (let i = 0; i < value.data.length; i++) {
      const text = value.data[i];
      if (text === null || text === undefined) {
        out.int(CHARSXP);
        out.int(-1);
        continue;
      }
      const encoding = value.encodings?.[i];
      if (
        (encoding === "latin1" || encoding === "bytes" || encoding === "native bytes") &&
        !text.includes("\0")
      ) {
        const bytes = new Uint8Array(text.length);
        for (let k = 0; k < text.length; k++) {
          const c = text.charCodeAt(k);
          if (c > 0xff) {
            throw new SerializationError(
              `string ${i + 1} is marked ${encoding} but holds U+${
                c.toString(16)
              }, beyond one byte`,
            );
          }
          bytes[k] = c;
        }
        const ascii = bytes.every((b) => b < 0x80);
        const mark = ascii ? 64 : encoding === "latin1" ? 4 : encoding === "bytes" ? 2 : 0;
        out.int(CHARSXP | (mark << 12));
        out.int(bytes.length);
        out.stringBytes(bytes);
        continue;
      }
      if (encoding === "native") {
        if (text.includes("\0")) throw nulError(text);
        const bytes = encoder.encode(text);
        out.int(CHARSXP | ((bytes.length === text.length ? 64 : 0) << 12));
        out.int(bytes.length);
        out.stringBytes(bytes);
        continue;
      }
      this.#charsxp(text);
    }
  }

  /** A string with the UTF-8 mark if not ASCII, or with `mark` (see `Output.charsxp`). */
  #charsxp(text: string, mark?: number): void {
    // R strings cannot hold NUL; R would stop with "embedded nul in string" on reading.
    if (text.includes("\0")) throw nulError(text);
    this.#out.charsxp(text, CHARSXP, mark);
  }

  #symbol(name: string, encoding?: REncoding): void {
    const ref = this.#symbols.get(name);
    if (ref !== undefined) {
      this.#reference(ref);
      return;
    }
    if (name === "") {
      this.#out.int(251); // R's missing argument is the empty-named symbol
      return;
    }
    this.#out.int(SYMSXP);
    if (encoding === undefined || encoding === REncoding.native) {
      // R's parser makes unmarked print names (see RSymbol.encoding).
      this.#charsxp(name, 0);
    } else {
      this.#strings({ type: "character", data: [name], encodings: [encoding] });
    }
    this.#symbols.set(name, ++this.#refCount);
  }

  /** Attributes as the pairlist R writes, one tagged cell each, with no cells built for it. */
  #attributes(attributes: RAttributes, depth: number): void {
    const out = this.#out;
    for (const tag in attributes) {
      if (!Object.hasOwn(attributes, tag)) continue;
      out.int(LISTSXP | 0x400);
      this.#symbol(tag);
      this.item(attributes[tag]!, depth + 1);
    }
    out.int(NILVALUE);
  }

  #pairlist(value: RPairlist, depth: number): void {
    if (value.data.length === 0) {
      this.#out.int(NILVALUE); // an empty pairlist is NULL in R
      return;
    }
    this.#cells(value.data, depth, TYPE_CODE[value.type], value);
  }

  /**
   * A pairlist chain: the first cell carries the list's type, attributes and object bit; the
   * rest are LISTSXP unless the cell says otherwise.
   */
  #cells(
    cells: RPairlistCell[],
    depth: number,
    firstType: number,
    list: RWithAttributes | undefined,
  ): void {
    const out = this.#out;
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i]!;
      let flags = i === 0
        ? (list !== undefined ? this.#flags(firstType, list) : firstType)
        : cell.cellType === undefined
        ? LISTSXP
        : TYPE_CODE[cell.cellType];
      if (cell.levels !== undefined) flags |= (cell.levels & 0xffff) << 12;
      if (cell.tag !== undefined) flags |= 0x400;
      if (i > 0 && (hasAny(cell.attributes) || cell.object !== undefined)) {
        flags = this.#flags(flags, cell);
      }
      out.int(flags);
      if (i === 0 && list !== undefined && hasAny(list.attributes)) {
        this.#attributes(list.attributes, depth + 1);
      } else if (i > 0 && hasAny(cell.attributes)) {
        this.#attributes(cell.attributes, depth + 1);
      }
      if (cell.tag !== undefined) this.#symbol(cell.tag, cell.tagEncoding);
      this.item(cell.value, depth + 1);
    }
    out.int(NILVALUE);
  }

  /** Byte code as R's WriteBC: the count of shared cells (plus one), then code and constants. */
  #bytecode(value: RBytecode, depth: number): void {
    let scan = cellScans.get(value);
    if (scan === undefined || sameCells(value, scan, 0, 0) !== scan.order.length) {
      scan = { order: [], repeats: [], shared: new Set(), steps: undefined, bytecodeCar: false };
      scanCells(value, new Set(), scan, 0);
      if (!scan.bytecodeCar) scan.steps = stepCodes(scan);
      cellScans.set(value, scan);
    }
    this.#out.int(scan.shared.size + 1);
    this.#bytecodeBody(
      value,
      {
        shared: scan.shared,
        numbers: scan.steps === undefined ? new Map() : NO_NUMBERS,
        steps: scan.steps,
        at: 0,
      },
      depth,
    );
  }

  #bytecodeBody(value: RBytecode, cells: SharedCells, depth: number): void {
    const out = this.#out;
    this.item(value.code, depth + 1);
    out.int(value.constants.length);
    for (const constant of value.constants) {
      if (constant.type === "bytecode") {
        out.int(TYPE_CODE.bytecode);
        this.#bytecodeBody(constant, cells, depth + 1);
      } else if (
        (constant.type === "language" || constant.type === "pairlist") && constant.data.length > 0
      ) {
        this.#bytecodeLanguage(constant, cells, depth + 1);
      } else {
        out.int(sexpType(constant));
        this.item(constant, depth + 1);
      }
    }
  }

  /** A call in a constant pool, cell by cell, each shared cell defined once then referred to. */
  #bytecodeLanguage(value: RPairlist, cells: SharedCells, depth: number): void {
    if (depth > 10_000) throw new SerializationError("value nests more than 10000 levels deep");
    const out = this.#out;
    const data = value.data;
    for (let i = 0; i < data.length; i++) {
      const cell = data[i]!;
      if (cells.steps !== undefined) {
        const step = cells.steps[cells.at++]!;
        if (step >= 0) {
          out.int((step & 1) === 1 ? BCREPREF : BCREPDEF);
          out.int(step >> 1);
          if ((step & 1) === 1) return;
        }
      } else if (cells.shared.size > 0 && cells.shared.has(cell)) {
        const number = cells.numbers.get(cell);
        if (number !== undefined) {
          out.int(BCREPREF);
          out.int(number);
          return;
        }
        const next = cells.numbers.size;
        cells.numbers.set(cell, next);
        out.int(BCREPDEF);
        out.int(next);
      }
      const attributes = i === 0 ? value.attributes : cell.attributes;
      const language = i === 0 ? value.type === "language" : cell.cellType === "language";
      if (hasAny(attributes)) {
        out.int(language ? ATTRLANGSXP : ATTRLISTSXP);
        this.#attributes(attributes, depth);
      } else {
        out.int(language ? TYPE_CODE.language : LISTSXP);
      }
      if (cell.tag !== undefined) this.#symbol(cell.tag, cell.tagEncoding);
      else out.int(NILVALUE);
      const car = cell.value;
      if (car.type === "symbol") {
        out.int(0);
        this.#symbol(car.name);
      } else if ((car.type === "language" || car.type === "pairlist") && car.data.length > 0) {
        this.#bytecodeLanguage(car, cells, depth + 1);
      } else {
        out.int(0);
        this.item(car, depth + 1);
      }
    }
    out.int(0);
    out.int(NILVALUE);
  }
}

/**
 * R's ScanForCircles over one byte code: the cells of its calls reached more than once, and
 * every cell in the order the walk reaches it (a repeat ends its chain, as in R), whether a
 * repeat or not.
 */
interface CellScan {
  order: RPairlistCell[];
  repeats: boolean[];
  shared: Set<RPairlistCell>;
  /**
   * What the writer writes before each step's cell: -1 nothing, `2n` BCREPDEF n, `2n + 1`
   * BCREPREF n (which ends the chain). Undefined when a call holds byte code as its function:
   * R writes that byte code on its own, so the writer's walk skips steps the scan took.
   */
  steps: Int32Array | undefined;
  bytecodeCar: boolean;
}

/**
 * The last scan of each byte code written. Writing the same object again (a closure sent
 * to many workers, a fit answered again) walks it comparing each cell with the one reached at
 * that step before, by identity: the same order means the same cells repeat, so the scan
 * holds, and one comparison a cell replaces hashing each cell again. An edit anywhere in the
 * calls changes the order and the byte code is scanned anew.
 */
const cellScans = new WeakMap<RBytecode, CellScan>();

function scanCells(
  value: RValue,
  seen: Set<RPairlistCell>,
  scan: CellScan,
  depth: number,
): void {
  if (depth > 10_000) throw new SerializationError("value nests more than 10000 levels deep");
  if (value.type === "bytecode") {
    const constants = value.constants;
    for (let i = 0; i < constants.length; i++) scanCells(constants[i]!, seen, scan, depth + 1);
    return;
  }
  if (value.type !== "language" && value.type !== "pairlist") return;
  const data = value.data;
  for (let i = 0; i < data.length; i++) {
    const cell = data[i]!;
    // One hash operation a cell: the set grows unless the cell was seen.
    const size = seen.size;
    seen.add(cell);
    scan.order.push(cell);
    const repeat = seen.size === size;
    scan.repeats.push(repeat);
    if (repeat) {
      scan.shared.add(cell);
      return;
    }
    // Most cars are symbols and constants, which hold no cells: no call for them.
    const car = cell.value;
    if (car.type === "language" || car.type === "pairlist") {
      scanCells(car, seen, scan, depth + 1);
    } else if (car.type === "bytecode") {
      scan.bytecodeCar = true;
      scanCells(car, seen, scan, depth + 1);
    }
  }
}

/**
 * The writer's code for each step of `scan`. Without byte code as a call's function the
 * writer walks the cells as the scan did, a repeat being a reference to a shared cell met
 * before, so the numbers are known from the order alone.
 */
function stepCodes(scan: CellScan): Int32Array {
  const steps = new Int32Array(scan.order.length).fill(-1);
  if (scan.shared.size === 0) return steps;
  const numbers = new Map<RPairlistCell, number>();
  for (let at = 0; at < steps.length; at++) {
    const cell = scan.order[at]!;
    if (!scan.shared.has(cell)) continue;
    const number = numbers.get(cell);
    if (number === undefined) {
      numbers.set(cell, numbers.size);
      steps[at] = 2 * (numbers.size - 1);
    } else {
      steps[at] = 2 * number + 1;
    }
  }
  return steps;
}

/**
 * Walks `value` as {@linkcode scanCells} does from step `at` of `scan`: the step after the
 * walk when every cell is the one reached at that step before, else -1.
 */
function sameCells(value: RValue, scan: CellScan, at: number, depth: number): number {
  if (depth > 10_000) throw new SerializationError("value nests more than 10000 levels deep");
  if (value.type === "bytecode") {
    const constants = value.constants;
    for (let i = 0; i < constants.length && at >= 0; i++) {
      at = sameCells(constants[i]!, scan, at, depth + 1);
    }
    return at;
  }
  if (value.type !== "language" && value.type !== "pairlist") return at;
  const data = value.data;
  const order = scan.order;
  for (let i = 0; i < data.length; i++) {
    const cell = data[i]!;
    if (at >= order.length || order[at] !== cell) return -1;
    if (scan.repeats[at++]) return at;
    const car = cell.value;
    if (car.type === "language" || car.type === "pairlist" || car.type === "bytecode") {
      at = sameCells(car, scan, at, depth + 1);
      if (at < 0) return -1;
    }
  }
  return at;
}

/**
 * A vector's SEXP type code, by a switch on the type: `TYPE_CODE[type]` with a type that varies
 * is a keyed load over 23 names, where each `TYPE_CODE.name` here is a constant one.
 */
function vectorCode(
  type: "logical" | "integer" | "double" | "complex" | "raw" | "character" | "list" | "expression",
): number {
  switch (type) {
    case "integer":
      return TYPE_CODE.integer;
    case "character":
      return TYPE_CODE.character;
    case "double":
      return TYPE_CODE.double;
    case "logical":
      return TYPE_CODE.logical;
    case "list":
      return TYPE_CODE.list;
    case "raw":
      return TYPE_CODE.raw;
    case "complex":
      return TYPE_CODE.complex;
    case "expression":
      return TYPE_CODE.expression;
  }
}

/** R's TYPEOF of a value, as a byte-code constant pool writes it before the constant. */
function sexpType(value: RValue): number {
  // What a refhook claimed is an environment, pointer or weak reference; R writes its type
  // here (its reader skips the code and reads the PERSISTSXP that follows).
  if (value.type === "persistent") {
    const claimed = value.claimedType;
    return claimed === "externalptr" || claimed === "weakref"
      ? TYPE_CODE[claimed]
      : TYPE_CODE.environment;
  }
  if ((value.type === "pairlist" || value.type === "language") && value.data.length === 0) {
    return TYPE_CODE.NULL;
  }
  return TYPE_CODE[value.type];
}

/**
 * Writes `value` as an R serialization that R's `unserialize()` (and nanonext's
 * `recv(mode = "serial")`) reads back, like R's `serialize(x, NULL, xdr = FALSE)`. `value` is a
 * typed {@linkcode RValue} (kept exactly) or plain JS, converted by {@linkcode toR}.
 *
 * @example
 * ```ts
 * import { serialize } from "@x/rsock/serial";
 * const bytes = serialize({ a: 1, b: ["x", "y"] });            // B\n, as nanonext sends
 * const xdr = serialize([1, 2, 3], { format: "xdr", version: 2 }); // X\n, as serialize() writes
 * ```
 */
export function serialize(
  value: RValue | JsValue | Simplified,
  options: SerializeOptions = {},
): Uint8Array {
  const format = options.format ?? "binary";
  const version = options.version ?? 3;
  if (format !== "binary" && format !== "xdr" && format !== "ascii") {
    throw new TypeError(`unknown format "${format}"; expected "binary", "xdr" or "ascii"`);
  }
  if (version !== 2 && version !== 3) {
    throw new RangeError(`R serialization version ${version} is not supported; expected 2 or 3`);
  }
  const typed = toR(value, options.like);
  // Ascii takes about three times the bytes; the buffer still grows if the guess is short.
  const out = new Output(
    format,
    (format === "ascii" ? 3 : 1) * estimateBytes(typed, 2) + 64,
    options.borrowBuffer === true,
  );
  out.raw(encoder.encode(format === "binary" ? "B\n" : format === "xdr" ? "X\n" : "A\n"));
  out.int(version);
  out.int(WRITER_VERSION);
  out.int(MIN_READER[version]);
  if (version === 3) {
    out.int(5);
    out.stringBytes(encoder.encode("UTF-8"));
  }
  try {
    new Writer(out, options.persistentName).item(typed, 0);
  } finally {
    // The caller's buffers are not kept past the call.
    sourceBuffer = undefined;
    sourceView = undefined;
  }
  return out.result();
}
