/**
 * R's files: `saveRDS()` output (gzip by default) and `save()`/`.RData` workspaces (`RDX3`/
 * `RDX2` and one pairlist), decompressed through the platform's `DecompressionStream` with the
 * output bounded before it can grow without limit.
 *
 * @module
 */

import { compressionOf, unserialize, type UnserializeOptions } from "./_reader.ts";
import { type RPairlist, type RValue, SerializationError } from "./_types.ts";

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

/** The most compressed input the decoder is given at a time. */
const MAX_INPUT_PIECE = 65536;

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
async function inflate(bytes: Uint8Array, options: ReadFileOptions, call: string) {
  const format = compressionOf(bytes);
  if (format === undefined) return bytes;
  if (format !== "gzip") throw unreadableCompression(format, call);
  const limit = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  // The input goes in pieces, pulled as the output is read: the decoder inflates a whole piece
  // at once (up to 1032 times its size, deflate's limit), so a piece of limit / 1032 keeps the
  // overshoot within the limit; 64 KiB at most, as smaller pieces cost time on large files.
  const piece = Math.max(1024, Math.min(MAX_INPUT_PIECE, Math.floor(limit / 1032)));
  let offset = 0;
  const source = new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(offset + piece, bytes.length);
      controller.enqueue(bytes.slice(offset, end));
      offset = end;
    },
  }, { highWaterMark: 0 });
  const stream = source.pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        throw new SerializationError(
          `gzip data inflates past maxDecompressedBytes (${limit}) from ${bytes.length} ` +
            "bytes; raise the option for a file this large",
          0,
        );
      }
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    if (error instanceof SerializationError) throw error;
    throw new SerializationError(`corrupt gzip data: ${(error as Error).message}`, 0, {
      cause: error,
    });
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Reads what R's `saveRDS()` writes (gzip-compressed by default, or uncompressed), like R's
 * `readRDS()`. bzip2 and xz files are refused with a {@linkcode SerializationError} that names
 * the R call writing a readable one.
 *
 * @example
 * ```ts ignore
 * import { readRds, simplify } from "@x/rsock/serial";
 * const fit = await readRds(await Deno.readFile("fit.rds")); // saveRDS(fit, "fit.rds")
 * console.log(fit.type); // "list"
 * ```
 */
export async function readRds(bytes: Uint8Array, options: ReadFileOptions = {}): Promise<RValue> {
  return unserialize(await inflate(bytes, options, "saveRDS"), options);
}

/**
 * Reads a workspace R's `save()` (or `save.image()`) writes: `RDX3`/`RDX2` (or ascii `RDA3`/
 * `RDA2`) and one pairlist whose tags are the objects' names, gzip-compressed by default.
 *
 * @example
 * ```ts ignore
 * import { readRData } from "@x/rsock/serial";
 * const saved = await readRData(await Deno.readFile("session.RData")); // save(x, y, file = …)
 * for (const { tag, value } of saved.data) console.log(tag, value.type);
 * ```
 */
export async function readRData(
  bytes: Uint8Array,
  options: ReadFileOptions = {},
): Promise<RPairlist> {
  const data = await inflate(bytes, options, "save");
  const magic = String.fromCharCode(...data.subarray(0, 5));
  if (!/^RD[XA][23]\n$/.test(magic)) {
    throw new SerializationError(
      `not an R workspace: starts with ${JSON.stringify(magic)}; expected "RDX3\\n" or ` +
        '"RDX2\\n" (save()) — an .rds file (saveRDS()) is read with readRds()',
      0,
    );
  }
  const value = unserialize(data.subarray(5), options);
  if (value.type === "NULL") return { type: "pairlist", data: [] };
  if (value.type !== "pairlist") {
    throw new SerializationError(`a workspace holding a ${value.type}; expected a pairlist`, 5);
  }
  return value;
}
