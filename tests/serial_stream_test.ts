/**
 * readRds inflates a gzip .rds as it reads it, a window at a time, with long vectors inflated
 * straight into their own buffers. These cases put every item kind across the window's edges
 * (strings, short and long vectors, attributes) in both byte orders, and check the streamed
 * read gives exactly what `unserialize` gives for the inflated bytes, and the same errors.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  readRData,
  readRds,
  REncoding,
  type RValue,
  SerializationError,
  serialize,
  unserialize,
} from "../serial/mod.ts";

/** gzip as a plain Uint8Array (a Buffer's slice() would share memory). */
const gzip = (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes));

/** Several MiB of every kind, with NA doubles (a NaN payload) and strings of every length. */
function bigValue(): RValue {
  const n = 200_000;
  const doubles = new Float64Array(n).map((_, i) => i * 1.25 - 7);
  // R's NA_real_: a NaN whose low word is 1954; it must keep its bits through the byte swap.
  const words = new Uint32Array(doubles.buffer);
  words[2 * 777] = 1954;
  words[2 * 777 + 1] = 0x7ff00000;
  const strings: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    strings.push(
      i % 97 === 0 ? null : i % 31 === 0 ? `é${i}` : "x".repeat(i % 40) + i.toString(36),
    );
  }
  const encodings = strings.map((s, i) => i % 1001 === 0 && s !== null ? REncoding.latin1 : 0);
  return {
    type: "list",
    data: [
      { type: "double", data: doubles },
      { type: "integer", data: new Int32Array(n).map((_, i) => i - 5) },
      { type: "character", data: strings, encodings: encodings as REncoding[] },
      { type: "logical", data: new Int32Array(1000).map((_, i) => i % 3) },
      { type: "raw", data: new Uint8Array(3 * 2 ** 20 + 5).map((_, i) => i) },
      ...Array.from({ length: 2000 }, (_, i): RValue => ({
        type: "double",
        data: new Float64Array(i % 40).fill(i),
        attributes: { names: { type: "character", data: Array(i % 40).fill(`n${i}`) } },
      })),
    ],
    attributes: { class: { type: "character", data: ["big"] } },
  };
}

/**
 * The same value to the bit, NaN payloads too: compared by R's bytes for it (a deep-equality
 * failure message on values this large would take gigabytes to print).
 */
function assertSameBits(actual: RValue, expected: RValue): void {
  const a = serialize(actual);
  const b = serialize(expected);
  const at = a.findIndex((byte, i) => byte !== b[i]);
  assert.ok(at === -1 && a.length === b.length, `values differ at byte ${at} of ${b.length}`);
}

Deno.test("readRds: a gzip stream read as it inflates equals the inflated bytes read whole", async () => {
  const value = bigValue();
  for (const format of ["xdr", "binary"] as const) {
    const bytes = serialize(value, { format });
    assert.ok(bytes.length > 8 * 2 ** 20, `${bytes.length} bytes`);
    assertSameBits(await readRds(gzip(bytes)), unserialize(bytes));
  }
});

Deno.test("readRds: a streamed read refuses what a whole read refuses", async () => {
  const bytes = serialize(bigValue(), { format: "xdr" });
  // Cut inside the long double vector (read straight into its buffer), then inside the window.
  for (const cut of [100_000, bytes.length - 1000]) {
    await assert.rejects(() => readRds(gzip(bytes.subarray(0, cut))), (error: unknown) => {
      assert.ok(error instanceof SerializationError, String(error));
      assert.match(error.message, /stream ends|bytes remain/);
      return true;
    });
  }
  // Bytes after the object, past the window: left unread, as R's readRDS() leaves them.
  const padded = new Uint8Array(bytes.length + 3 * 2 ** 20 + 7);
  padded.set(bytes);
  assertSameBits(await readRds(gzip(padded)), unserialize(bytes));
  // Bytes after the gzip member that are no gzip member end the data, as for R's readRDS();
  // a corrupt member is still refused.
  const small = serialize({ type: "double", data: new Float64Array(300_000).fill(2.5) }, {
    format: "xdr",
  });
  const appended = Uint8Array.from([...gzip(small), ...new TextEncoder().encode("junk\n")]);
  assertSameBits(await readRds(appended), unserialize(small));
  const corrupt = gzip(small);
  corrupt[10] = corrupt[10]! ^ 0xff;
  await assert.rejects(() => readRds(corrupt), /corrupt gzip data/);
  // A vector longer than the stream could inflate to is refused before it is allocated.
  const claim = serialize({ type: "double", data: new Float64Array(1) }, { format: "xdr" });
  new DataView(claim.buffer).setInt32(claim.length - 12, 2 ** 27 - 1);
  await assert.rejects(
    () => readRds(gzip(claim), { maxDecompressedBytes: 2 ** 20 }),
    /a double vector claims 134217727 elements but only \d+ bytes remain/,
  );
});

Deno.test("readRData: a save() workspace is read as it inflates, bytes appended left", async () => {
  // What save(x, file = f) writes for x <- <the big value>: "RDX3\n", then a pairlist of one.
  const workspace = serialize({
    type: "pairlist",
    data: [{ tag: "x", value: bigValue() }],
  }, { format: "xdr" });
  const file = gzip(Uint8Array.from([...new TextEncoder().encode("RDX3\n"), ...workspace]));
  const expected = unserialize(workspace);
  assertSameBits(await readRData(file), expected);
  // R's load() reads the file with anything appended after its gzip member.
  const appended = Uint8Array.from([...file, ...new TextEncoder().encode("junk\n")]);
  assertSameBits(await readRData(appended), expected);
  // The streamed read keeps the whole read's refusals.
  const rds = gzip(serialize({ type: "double", data: new Float64Array(3) }, { format: "xdr" }));
  await assert.rejects(() => readRData(rds), /not an R workspace: starts with "X\\n/);
});

Deno.test("readRds, readRData: a gzip ascii file is read with bytes appended, as R reads it", async () => {
  // What saveRDS(x, ascii = TRUE) and save(x, ascii = TRUE, compress = TRUE) write, plus junk:
  // R's readRDS() and load() read the object and leave the rest.
  const value: RValue = {
    type: "list",
    data: [
      { type: "integer", data: Int32Array.of(1, 2, 3) },
      { type: "character", data: ["z", null, "é"] },
    ],
  };
  const junk = new TextEncoder().encode("junk\n");
  const ascii = serialize(value, { format: "ascii" });
  assertSameBits(await readRds(Uint8Array.from([...gzip(ascii), ...junk])), unserialize(ascii));
  const saved = serialize({ type: "pairlist", data: [{ tag: "x", value }] }, { format: "ascii" });
  const file = gzip(Uint8Array.from([...new TextEncoder().encode("RDA3\n"), ...saved]));
  assertSameBits(await readRData(Uint8Array.from([...file, ...junk])), unserialize(saved));
  // The inflated text is still bounded.
  await assert.rejects(
    () =>
      readRds(
        gzip(serialize({ type: "integer", data: new Int32Array(100_000) }, {
          format: "ascii",
        })),
        { maxDecompressedBytes: 50_000 },
      ),
    /inflates past maxDecompressedBytes \(50000\)/,
  );
});

Deno.test("readRds, readRData: a path is read as the file's bytes are", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rsock_files_" });
  try {
    const value = bigValue();
    const bytes = gzip(serialize(value, { format: "xdr" }));
    await Deno.writeFile(`${dir}/big.rds`, bytes);
    assertSameBits(await readRds(`${dir}/big.rds`), await readRds(bytes));
    const saved = serialize({ type: "pairlist", data: [{ tag: "x", value }] }, { format: "xdr" });
    const file = gzip(Uint8Array.from([...new TextEncoder().encode("RDX3\n"), ...saved]));
    await Deno.writeFile(`${dir}/session.RData`, file);
    assertSameBits(await readRData(new URL(`file://${dir}/session.RData`)), unserialize(saved));
    await assert.rejects(() => readRds(`${dir}/missing.rds`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
