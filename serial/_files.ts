/**
 * R's files: `saveRDS()` output (gzip by default) and `save()`/`.RData` workspaces (`RDX3`/
 * `RDX2` and one pairlist), inflated by zlib (`node:zlib`) with the output bounded before it
 * can grow without limit; and `.rds` files written as `saveRDS()` writes them, deflated by
 * zlib at R's level.
 *
 * @module
 */

import { constants } from "node:buffer";
import { constants as zlibConstants, createGunzip, gunzipSync, gzipSync } from "node:zlib";
import { type ByteSource, Input } from "./_input.ts";
import {
  compressionOf,
  hasWorkspaceMagic,
  readObject,
  unserializeFirst,
  type UnserializeOptions,
} from "./_reader.ts";
import { type RPairlist, type RValue, SerializationError } from "./_types.ts";
import { serialize } from "./_writer.ts";
import type { JsValue } from "./_convert.ts";
import type { Simplified } from "./_simplify.ts";

/** Options for {@linkcode readRds} and {@linkcode readRData}. */
export interface ReadFileOptions extends UnserializeOptions {
  /**
   * The most bytes a compressed file may inflate to. A few kilobytes of gzip can claim
   * gigabytes (a decompression bomb); past this the read stops with a
   * {@linkcode SerializationError} instead of allocating.
   *
   * @default {1073741824}
   */
  maxDecompressedBytes?: number;
}

/**
 * Default for {@linkcode ReadFileOptions.maxDecompressedBytes}: 1 GiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_DECOMPRESSED_BYTES } from "@x/rsock/serial";
 * console.log(DEFAULT_MAX_DECOMPRESSED_BYTES / 2 ** 30); // 1
 * ```
 */
export const DEFAULT_MAX_DECOMPRESSED_BYTES: number = 2 ** 30;

/**
 * The smallest output piece the inflater fills at a time: 64 KiB pieces cost little on large
 * files, 16 KiB ones (zlib's default) cost time.
 */
const INFLATE_PIECE = 65536;

/** deflate's largest ratio: no gzip inflates past this many times its size. */
const MAX_DEFLATE_RATIO = 1032;

/**
 * The output buffer to inflate into. A gzip file ends with the size it inflates to (mod 2^32):
 * one buffer of that size (and a byte, so zlib needs no second) holds all of it, with no pieces
 * to copy together after, 130 MB for a 50 MB .rds. That size is only a claim, so it is bounded
 * by the limit and by deflate's largest ratio: a false one costs no more than an honest file
 * within the limit would.
 */
function outputPiece(bytes: Uint8Array, limit: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const claimed = bytes.length >= 18 ? view.getUint32(bytes.length - 4, true) + 1 : 0;
  const most = Math.min(limit + 1, MAX_DEFLATE_RATIO * bytes.length, constants.MAX_LENGTH);
  return Math.max(INFLATE_PIECE, Math.min(claimed, most));
}

/** The refusal for a compression no Deno decoder reads, naming the R call that avoids it. */
function unreadableCompression(format: "bzip2" | "xz", call: string): SerializationError {
  return new SerializationError(
    `the file is ${format}-compressed, which rsock cannot read (Deno has no ${format} ` +
      `decoder); write it with ${call}(x, file, compress = "gzip") or compress = FALSE`,
    0,
  );
}

/**
 * `bytes` inflated when gzip-compressed (as they are when R's `saveRDS()` and `save()` write
 * by default), else unchanged.
 */
function inflate(bytes: Uint8Array, options: ReadFileOptions, call: string): Uint8Array {
  const format = compressionOf(bytes);
  if (format === undefined) return bytes;
  if (format !== "gzip") throw unreadableCompression(format, call);
  const limit = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  // zlib inflates in one synchronous call, a piece at a time, and stops with a RangeError as
  // soon as the output would pass the limit: the bomb is never held whole. It is zlib itself,
  // as R's gzfile() is; DecompressionStream takes 2.5 times its CPU on a 130 MB .rds.
  let out: Uint8Array;
  try {
    out = gunzipSync(bytes, {
      maxOutputLength: Math.min(limit, constants.MAX_LENGTH),
      chunkSize: outputPiece(bytes, limit),
    });
  } catch (error) {
    if (error instanceof RangeError) throw tooLarge(limit, bytes.length);
    throw new SerializationError(`corrupt gzip data: ${(error as Error).message}`, 0, {
      cause: error,
    });
  }
  // A plain Uint8Array view: a Buffer's slice() shares memory, and the reader copies with it.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Reads what R's `saveRDS()` writes (gzip-compressed by default, or uncompressed), like R's
 * `readRDS()`: gzip in several members (`gzcon()`, `gzfile(open = "ab")`) is read whole, and
 * the file's first object is the result. `file` is the file's bytes, or its path (read with
 * `--allow-read`). bzip2 and xz files are refused with a {@linkcode SerializationError} that
 * names the R call writing a readable one.
 *
 * @example
 * ```ts
 * import { readRds, writeRds } from "@x/rsock/serial";
 * const path = await Deno.makeTempFile({ suffix: ".rds" });
 * await Deno.writeFile(path, await writeRds({ type: "double", data: new Float64Array([1.5]) }));
 * const value = await readRds(path); // as R's readRDS(path)
 * console.log(value); // { type: "double", data: Float64Array(1) [ 1.5 ] }
 * ```
 */
export function readRds(
  file: Uint8Array | string | URL,
  options: ReadFileOptions = {},
): Promise<RValue> {
  // Inflating is synchronous; a refusal still arrives as the promise's rejection.
  return new Promise((resolve) => resolve(rds(fileBytes(file), options)));
}

/**
 * A file's bytes: given, or read into one buffer of the file's size (`Deno.readFile` takes
 * about twice the new memory and 2.5 times the CPU for a 50 MB file).
 */
function fileBytes(file: Uint8Array | string | URL): Uint8Array {
  if (file instanceof Uint8Array) return file;
  using handle = Deno.openSync(file);
  const size = handle.statSync().size;
  const bytes = new Uint8Array(size);
  let filled = 0;
  while (filled < size) {
    const n = handle.readSync(bytes.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled === size ? bytes : bytes.subarray(0, filled);
}

function rds(bytes: Uint8Array, options: ReadFileOptions): RValue {
  return streamed(bytes, options) ??
    unserializeFirst(inflate(bytes, options, "saveRDS"), options, true);
}

/** The first bytes a streamed read inflates: enough to see the format. */
const HEAD = 65536;

/**
 * A gzip-compressed binary (XDR or native) stream read as it inflates, like R's `readRDS()`
 * reads its gzfile: a window at a time, long vectors inflated straight into their own
 * buffers, never the whole inflated stream in memory, whose fresh pages cost more than the
 * inflating (130 MB for a 50 MB .rds). A workspace (`workspace`) has `save()`'s five-byte
 * magic number first. An ascii stream is inflated whole, then parsed. Undefined for anything
 * else (not gzip, not R), which the whole-buffer path reads or refuses with its messages.
 */
function streamed(
  bytes: Uint8Array,
  options: ReadFileOptions,
  workspace = false,
): RValue | undefined {
  if (compressionOf(bytes) !== "gzip") return undefined;
  const source = GzipSource.open(bytes, options.maxDecompressedBytes);
  if (source === undefined) return undefined;
  try {
    const head = new Uint8Array(HEAD);
    const start = workspace ? 5 : 0;
    let filled = 0;
    while (filled < start + 2) {
      const got = source.fill(head, filled);
      if (got === 0) break;
      filled += got;
    }
    if (filled < start + 2) return undefined;
    if (workspace && !hasWorkspaceMagic(head.subarray(0, filled))) return undefined;
    const format = head[start];
    if (head[start + 1] !== 0x0a) return undefined;
    // Ascii is parsed from the whole text, inflated here so that what follows the gzip member
    // ends the data as it does for the binary formats.
    if (format === 0x41) {
      return unserializeFirst(drain(source, head, filled).subarray(start), options, true);
    }
    if (format !== 0x58 && format !== 0x42) return undefined;
    return readObject(new Input(head.subarray(0, filled), start, source), format, options, true);
  } finally {
    source.close();
  }
}

/** Everything left in `source` after the `filled` bytes of `head`, inflated into one buffer. */
function drain(source: GzipSource, head: Uint8Array, filled: number): Uint8Array {
  let out = head;
  for (;;) {
    if (filled === out.length) {
      // Doubling; the source refuses to inflate past maxDecompressedBytes.
      const next = new Uint8Array(2 * out.length);
      next.set(out);
      out = next;
    }
    const got = source.fill(out, filled);
    if (got === 0) return out.subarray(0, filled);
    filled += got;
  }
}

/**
 * A gzip stream inflated by zlib on demand into the caller's buffer (the handle behind
 * `node:zlib`'s streams, driven synchronously as its `*Sync` functions drive it), bounded by
 * `maxDecompressedBytes`: past the limit it stops with a {@linkcode SerializationError}.
 */
class GzipSource implements ByteSource {
  readonly #input: Uint8Array;
  readonly #limit: number;
  /** What the stream may inflate to: the limit, and deflate's largest ratio. */
  readonly #bound: number;
  // deno-lint-ignore no-explicit-any
  readonly #zlib: any;
  #at = 0;
  #produced = 0;
  #error: string | undefined;
  #ended = false;

  /**
   * A source on a gunzip handle, or undefined where `node:zlib` has none to drive (its
   * `_handle`, as in Node; then the whole-buffer path reads the file).
   */
  static open(input: Uint8Array, limit = DEFAULT_MAX_DECOMPRESSED_BYTES): GzipSource | undefined {
    // deno-lint-ignore no-explicit-any
    const zlib: any = createGunzip();
    if (
      typeof zlib._handle?.writeSync !== "function" || !(zlib._writeState instanceof Uint32Array)
    ) {
      zlib.close();
      return undefined;
    }
    return new GzipSource(input, limit, zlib);
  }

  // deno-lint-ignore no-explicit-any
  private constructor(input: Uint8Array, limit: number, zlib: any) {
    this.#input = input;
    this.#limit = limit;
    this.#bound = Math.min(limit, MAX_DEFLATE_RATIO * input.length);
    this.#zlib = zlib;
    zlib._handle.onerror = (message: string) => {
      this.#error = message;
    };
  }

  get left(): number {
    return this.#bound - this.#produced;
  }

  limitReached(wanted: number): SerializationError | undefined {
    // The limit, not deflate's ratio, is what the stream cannot inflate past.
    return this.#produced + wanted > this.#limit &&
        this.#limit < MAX_DEFLATE_RATIO * this.#input.length
      ? tooLarge(this.#limit, this.#input.length)
      : undefined;
  }

  fill(into: Uint8Array, at: number): number {
    if (this.#ended) return 0;
    // One byte past the limit is room enough to see the limit passed.
    const most = Math.min(into.length - at, this.#limit + 1 - this.#produced);
    const rest = this.#input.length - this.#at;
    const zlib = this.#zlib;
    zlib._handle.writeSync(zlibConstants.Z_FINISH, this.#input, this.#at, rest, into, at, most);
    const [outLeft = 0, inLeft = 0] = zlib._writeState as Uint32Array;
    if (this.#error !== undefined) {
      // Bytes after a whole member that are no gzip header end the data, as R's gzfile reads
      // them (readRDS() reads a file with anything appended); any other error is corruption.
      if (this.#produced + most - outLeft === 0 || !NOT_A_MEMBER.test(this.#error)) {
        throw new SerializationError(`corrupt gzip data: ${this.#error}`, 0);
      }
      this.#ended = true;
    }
    this.#at += rest - inLeft;
    const got = most - outLeft;
    this.#produced += got;
    if (this.#produced > this.#limit) throw tooLarge(this.#limit, this.#input.length);
    return got;
  }

  close(): void {
    this.#zlib._handle.close();
  }
}

/** zlib's refusals of a member's header: what follows a member is no gzip stream. */
const NOT_A_MEMBER =
  /^(incorrect header check|unknown compression method|unknown header flags set)$/;

function tooLarge(limit: number, size: number): SerializationError {
  return new SerializationError(
    `gzip data inflates past maxDecompressedBytes (${limit}) from ${size} ` +
      "bytes; raise the option for a file this large",
    0,
  );
}

/**
 * Reads a workspace R's `save()` (or `save.image()`) writes: `RDX3`/`RDX2` (or ascii `RDA3`/
 * `RDA2`) and one pairlist whose tags are the objects' names, gzip-compressed by default.
 *
 * `file` is the file's bytes, or its path (read with `--allow-read`).
 *
 * @example
 * ```ts
 * import { readRData } from "@x/rsock/serial";
 * const saved = await readRData("session.RData"); // save(x, y, file = "session.RData")
 * for (const { tag, value } of saved.data) console.log(tag, value.type);
 * ```
 */
export function readRData(
  file: Uint8Array | string | URL,
  options: ReadFileOptions = {},
): Promise<RPairlist> {
  return new Promise((resolve) => resolve(workspace(fileBytes(file), options)));
}

function workspace(bytes: Uint8Array, options: ReadFileOptions): RPairlist {
  const value = streamed(bytes, options, true) ?? wholeWorkspace(bytes, options);
  if (value.type === "NULL") return { type: "pairlist", data: [] };
  if (value.type !== "pairlist") {
    throw new SerializationError(`a workspace holding a ${value.type}; expected a pairlist`, 5);
  }
  return value;
}

/** The object after `save()`'s magic number, the file read whole (uncompressed, no zlib handle). */
function wholeWorkspace(bytes: Uint8Array, options: ReadFileOptions): RValue {
  const data = inflate(bytes, options, "save");
  if (!hasWorkspaceMagic(data)) {
    const magic = String.fromCharCode(...data.subarray(0, 5));
    throw new SerializationError(
      `not an R workspace: starts with ${JSON.stringify(magic)}; expected "RDX3\\n" or ` +
        '"RDX2\\n" (save()) — an .rds file (saveRDS()) is read with readRds()',
      0,
    );
  }
  return unserializeFirst(data.subarray(5), options, true);
}

/** Options for {@linkcode writeRds}. */
export interface WriteRdsOptions {
  /**
   * Whether to gzip the serialization, as `saveRDS()` does by default; `false` gives the bytes
   * of `saveRDS(x, file, compress = FALSE)`.
   *
   * @default {true}
   */
  compress?: boolean;
  /**
   * The zlib compression level, 0 (stored) to 9 (smallest). R's `saveRDS()` writes through
   * `gzfile()`, whose default is 6: the same level gives files of the size R's are.
   *
   * @default {6}
   */
  compressionLevel?: number;
  /**
   * R serialization version: 3 (R ≥ 3.5, `saveRDS()`'s default) or 2 (R ≥ 2.3).
   *
   * @default {3}
   */
  version?: 2 | 3;
  /**
   * The typed R value `value` was simplified from, whose R types and attributes it keeps where
   * it still fits, as `like` does for {@linkcode serialize}.
   */
  like?: RValue;
}

/** R's `gzfile()` compression level, which `saveRDS()` writes with. */
const R_COMPRESSION_LEVEL = 6;

/**
 * The bytes of an `.rds` file as R's `saveRDS(x, file)` writes them: the value serialized in
 * XDR (`X\n`, version 3) and gzip-compressed by zlib at R's level 6, which R's `readRDS()`
 * (and {@linkcode readRds}) reads. `value` is a typed {@linkcode RValue} or plain JS, as for
 * {@linkcode serialize}.
 *
 * @example
 * ```ts
 * import { readRds, simplify, writeRds } from "@x/rsock/serial";
 * import assert from "node:assert/strict";
 *
 * const bytes = await writeRds({ x: [1.5, 2], label: "a" }); // then Deno.writeFile("x.rds", bytes)
 * assert.deepStrictEqual([bytes[0], bytes[1]], [0x1f, 0x8b]); // gzip, as saveRDS() writes
 * assert.deepStrictEqual(simplify(await readRds(bytes)), { x: [1.5, 2], label: "a" });
 * ```
 */
export function writeRds(
  value: RValue | JsValue | Simplified,
  options: WriteRdsOptions = {},
): Promise<Uint8Array> {
  return new Promise((resolve) => resolve(rdsBytes(value, options)));
}

function rdsBytes(value: RValue | JsValue | Simplified, options: WriteRdsOptions): Uint8Array {
  const level = options.compressionLevel ?? R_COMPRESSION_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(`compressionLevel ${level} is not a zlib level; expected 0 to 9`);
  }
  const serialized = serialize(value, {
    format: "xdr",
    version: options.version ?? 3,
    ...(options.like === undefined ? {} : { like: options.like }),
  });
  if (options.compress === false) return serialized;
  const gzip = gzipSync(serialized, { level });
  return new Uint8Array(gzip.buffer, gzip.byteOffset, gzip.byteLength);
}
