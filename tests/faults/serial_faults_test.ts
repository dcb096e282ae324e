/**
 * Decode bombs (issue #11 item 2): R streams of a few bytes whose attributes or ALTREP states ask
 * for gigabytes. Each must fail with SerializationError having built at most one expansion budget
 * of elements (counted by the codec, never timed), and a REP door that received one must still
 * answer the next healthy request.
 */
import assert from "node:assert/strict";
import {
  type RCharacter,
  type RDouble,
  readRData,
  readRds,
  type RInteger,
  type RValue,
  SerializationError,
  serialize,
  simplify,
  toR,
  unserialize,
} from "../../serial/mod.ts";
import { work } from "../../serial/_work.ts";
import { isNulByte, request, serve, socket } from "../../reqrep/mod.ts";

const FIXTURES = new URL("../fixtures/rserial/", import.meta.url);
const fixture = (path: string) => Deno.readFileSync(new URL(path, FIXTURES));

/**
 * One message's expansion budget (unserialize's and simplify's default `maxExpandedElements`):
 * the most elements a refused bomb may have had built before it was refused.
 */
const BUDGET = 2 ** 24;

/**
 * Runs unserialize + simplify; returns the error it threw and how many elements the codec built
 * meanwhile (counted, not timed: the same on any machine, however loaded).
 */
function decode(bytes: Uint8Array): { error: unknown; elements: number } {
  const before = work.elements;
  let error: unknown;
  try {
    const value = unserialize(bytes);
    // The typed tree written back as it is (closures, cycles through environments and all).
    serialize(value, { format: "xdr" });
    // What reply does with `(x) => x`: simplify, then write it back like the request.
    serialize(simplify(value), { like: value });
    simplify(unserialize(bytes), { dataFrame: "rows" });
  } catch (e) {
    error = e;
  }
  return { error, elements: work.elements - before };
}

/** What a refusal must look like (see {@linkcode assertRefused}). */
interface Refusal {
  /** The error message. */
  message?: RegExp;
  /** The most elements built before the refusal. @default {BUDGET} */
  elements?: number;
}

/**
 * The bomb is a SerializationError, refused after building at most `expect.elements` elements
 * (the stream asks for far more), and memory grew by far less than the bomb asks for.
 */
function assertRefused(bytes: Uint8Array, what: string, expect: Refusal = {}): void {
  const rssBefore = Deno.memoryUsage().rss;
  const { error, elements } = decode(bytes);
  assert.ok(error instanceof SerializationError, `${what}: got ${String(error)}`);
  if (expect.message) assert.match(error.message, expect.message, what);
  const bound = expect.elements ?? BUDGET;
  assert.ok(
    elements <= bound,
    `${what}: built ${elements} elements before refusing; at most ${bound}`,
  );
  const grown = Deno.memoryUsage().rss - rssBefore;
  assert.ok(grown < 300 * 2 ** 20, `${what}: rss grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
}

/** An attribute that does not fit its data is refused before anything is built from it. */
function assertRefusedUnbuilt(bytes: Uint8Array, what: string, message?: RegExp): void {
  assertRefused(bytes, what, message ? { message, elements: 0 } : { elements: 0 });
}

const dbl = (...xs: number[]): RDouble => ({ type: "double", data: new Float64Array(xs) });
const int = (...xs: number[]): RInteger => ({ type: "integer", data: new Int32Array(xs) });
const chr = (...xs: string[]): RCharacter => ({ type: "character", data: xs });

/** One double with `dim = dim`, written by hand as a hostile peer would (R refuses to). */
function oneDoubleWithDim(...dim: number[]): Uint8Array {
  return serialize({
    type: "double",
    data: new Float64Array([1]),
    attributes: { dim: dbl(...dim) },
  }, {
    format: "xdr",
    version: 2,
  });
}

/** `n` copies of R's `compact_realseq` (from the fixture of 1e10:(1e10+2)) with length `length`. */
function realSequences(n: number, length: number): Uint8Array {
  const source = fixture("extra/altrep_realseq.bin");
  const header = 23; // X\n, three ints, "UTF-8" with its length
  const item = source.slice(header);
  // The state c(3, 1e10, 1): its first double (3) is the length.
  const three = [0x40, 0x08, 0, 0, 0, 0, 0, 0];
  const at = item.findIndex((_, i) => three.every((b, k) => item[i + k] === b));
  assert.ok(at > 0, "state not found in the fixture");
  new DataView(item.buffer).setFloat64(at, length);
  const list = new Uint8Array(8);
  new DataView(list.buffer).setInt32(0, 19); // VECSXP
  new DataView(list.buffer).setInt32(4, n);
  const out = new Uint8Array(header + 8 + n * item.length);
  out.set(source.subarray(0, header));
  out.set(list, header);
  for (let i = 0; i < n; i++) out.set(item, header + 8 + i * item.length);
  return out;
}

Deno.test("serial bombs: attributes that do not fit their data fail fast", async (t) => {
  await t.step("one double with dim = c(2, 1e8)", () => {
    const bytes = oneDoubleWithDim(2, 1e8);
    assert.ok(bytes.length < 100, `${bytes.length} bytes`);
    assertRefusedUnbuilt(bytes, "dim c(2, 1e8)", /dim c\(2, 100000000\).*holds 1/);
  });
  await t.step("one double with dim = c(2, 5e7)", () => {
    assertRefusedUnbuilt(oneDoubleWithDim(2, 5e7), "dim c(2, 5e7)");
  });
  await t.step("dim that is negative, fractional, NA or overflows", () => {
    for (const dim of [[-1, -1], [0.5, 2], [NaN, 1], [2 ** 31, 2 ** 31, 0.25], [1e300, 1e300]]) {
      assertRefusedUnbuilt(oneDoubleWithDim(...dim), `dim c(${dim})`);
    }
  });
  await t.step("a 1e9 x 0 matrix is charged to the expansion budget", () => {
    const bytes = serialize({
      type: "double",
      data: new Float64Array(0),
      attributes: { dim: dbl(1e9, 0) },
    });
    assertRefusedUnbuilt(bytes, "dim c(1e9, 0)", /empty rows/);
    const small = serialize({ ...dbl(), attributes: { dim: dbl(3, 0) } });
    assert.deepStrictEqual(simplify(unserialize(small)), [[], [], []]);
    assert.throws(
      () => simplify(unserialize(small), { maxExpandedElements: 2 }),
      SerializationError,
    );
  });
  await t.step("names, dimnames, levels and row.names are checked against the data", () => {
    const cases: [string, RValue][] = [
      ["names longer than the vector", { ...dbl(1), attributes: { names: chr("a", "b") } }],
      ["dimnames of the wrong extent", {
        ...int(1, 2, 3, 4),
        attributes: { dim: int(2, 2), dimnames: { type: "list", data: [chr("a"), chr("b", "c")] } },
      }],
      ["factor code past its levels", {
        ...int(1, 7),
        attributes: { levels: chr("a"), class: chr("factor") },
      }],
      ["data.frame whose row.names claim 1e9 rows", {
        type: "list",
        data: [dbl(1, 2)],
        attributes: {
          names: chr("x"),
          class: chr("data.frame"),
          "row.names": int(-2147483648, -1e9),
        },
      }],
      ["data.frame with ragged columns", {
        type: "list",
        data: [dbl(1, 2), dbl(1)],
        attributes: {
          names: chr("x", "y"),
          class: chr("data.frame"),
          "row.names": int(-2147483648, -2),
        },
      }],
    ];
    for (const [what, value] of cases) assertRefusedUnbuilt(serialize(value), what);
  });
  await t.step("healthy attributes still simplify", () => {
    const matrix = { ...int(1, 2, 3, 4, 5, 6), attributes: { dim: int(2, 3) } };
    assert.deepStrictEqual(simplify(unserialize(serialize(matrix))), [[1, 3, 5], [2, 4, 6]]);
    assert.deepStrictEqual(simplify(unserialize(fixture("extra/int_matrix_dimnames.bin"))), [
      [1, 3],
      [2, 4],
    ]);
  });
});

Deno.test("serial bombs: ALTREP sequences share one expansion budget per message", () => {
  // Each alone is within 2^24 elements; together they ask for 1 GiB: the budget is per message.
  const bytes = realSequences(8, 2 ** 24);
  assert.ok(bytes.length < 1_000, `${bytes.length} bytes`);
  assertRefused(bytes, "8 compact_realseq of 2^24", { message: /expansion budget/ });
  // The budget is per message: the next message gets a fresh one.
  const one = unserialize(realSequences(1, 1000));
  assert.ok(one.type === "list" && one.data[0]?.type === "double");
  assert.equal(one.data[0].data.length, 1000);
  assert.throws(
    () => unserialize(realSequences(3, 1000), { maxExpandedElements: 2500 }),
    SerializationError,
  );
  assert.doesNotThrow(() => unserialize(realSequences(3, 1000), { maxExpandedElements: 3000 }));
});

/**
 * R 4.2's `serialize(as.character(1:2^24), NULL, xdr = FALSE)`: 216 bytes, a deferred_string
 * over a compact_intseq. Expanded, that would be 2^24 JS strings (~840 MiB).
 */
function deferredStrings(n: number): Uint8Array {
  const hex =
    "420a030000000202040000050300050000005554462d38ee0000000200000001000000090004000f0000006465666572" +
    "7265645f737472696e670200000001000000090004000400000062617365020000000d0000000100000010000000fe00" +
    "000002000000ee0000000200000001000000090004000e000000636f6d706163745f696e7473657102000000ff020000" +
    "020000000d000000010000000d000000fe0000000e000000030000000000000000007041000000000000f03f00000000" +
    "0000f03ffe0000000d0000000100000000000000fe000000";
  const bytes = Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
  // The intseq's state c(n, 1, 1) starts at byte 172 (native, little-endian doubles).
  new DataView(bytes.buffer).setFloat64(172, n, true);
  return bytes;
}

Deno.test("serial bombs: strings deferred over an ALTREP sequence draw on the budget", () => {
  assertRefused(deferredStrings(2 ** 24), "as.character(1:2^24)", { message: /expansion budget/ });
  // as.character(1:1e6) as R sends it still arrives, every string as R prints it.
  const value = unserialize(deferredStrings(1e6));
  assert.ok(value.type === "character" && value.data.length === 1e6);
  assert.deepStrictEqual([value.data[0], value.data[999_999]], ["1", "1000000"]);
});

/** R's `1:n` (compact_intseq, native) with `dim = c(n, 1)`: a one-column matrix of n rows. */
function sequenceColumn(n: number): Uint8Array {
  const b: number[] = [0x42, 0x0a];
  const int = (x: number) => b.push(x & 255, (x >>> 8) & 255, (x >>> 16) & 255, x >>> 24);
  const sym = (name: string) => {
    int(1);
    int(0x00040009);
    int(name.length);
    for (const c of name) b.push(c.charCodeAt(0));
  };
  const double = (x: number) => {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, x, true);
    b.push(...bytes);
  };
  [3, 0x040200, 0x030500, 5].forEach(int);
  for (const c of "UTF-8") b.push(c.charCodeAt(0));
  int(238 | 0x200); // ALTREP, with attributes
  int(2), sym("compact_intseq"), int(2), sym("base"), int(2), int(13), int(1), int(13), int(254);
  int(14), int(3), double(n), double(1), double(1); // state c(n, 1, 1)
  int(2 | 0x400), sym("dim"), int(13), int(2), int(n), int(1), int(254);
  return new Uint8Array(b);
}

Deno.test("serial bombs: the rows of a matrix draw on simplify's budget", () => {
  // 170 bytes that would unfold into 2^24 one-element rows: refused before any is built.
  const bytes = sequenceColumn(2 ** 24);
  assert.ok(bytes.length < 200, `${bytes.length} bytes`);
  assertRefused(bytes, "1:2^24 with dim c(2^24, 1)", { message: /maxExpandedElements/ });
  // A matrix of 10^5 rows is an ordinary one.
  const rows = simplify(unserialize(sequenceColumn(1e5))) as number[][];
  assert.equal(rows.length, 1e5);
  assert.deepStrictEqual([rows[0], rows[99_999]], [[1], [100_000]]);
});

/** A data.frame whose only column is a data.frame with no columns, both of 2^31 - 1 rows. */
function hollowFrames(): Uint8Array {
  const rows = int(-0x80000000, -(2 ** 31 - 1));
  const frame = (columns: RValue[], names: string[]): RValue => ({
    type: "list",
    data: columns,
    attributes: { names: chr(...names), class: chr("data.frame"), "row.names": rows },
  });
  return serialize(frame([frame([], [])], ["inner"]));
}

Deno.test("serial bombs: a column added to frames that hold no rows stays cheap", async () => {
  const bytes = hollowFrames();
  assert.ok(bytes.length < 300, `${bytes.length} bytes`);
  // What reply does with `(df) => ({ ...df, z: 1 })`: a column added to frames that hold no
  // rows is not recycled to 2^31 - 1 of them. Nothing holds those rows: a plain named list.
  const before = work.elements;
  const value = unserialize(bytes);
  const written = toR({ ...(simplify(value) as Record<string, never>), z: 1 }, value);
  assert.ok(work.elements - before <= 16, `built ${work.elements - before} elements`);
  assert.ok(written.type === "list" && written.data.length === 2);
  assert.deepStrictEqual(written.attributes, { names: chr("inner", "z") });

  const signal = AbortSignal.timeout(20_000);
  await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
  await using req = await socket("req", { dial: rep.urls[0]! });
  const stop = new AbortController();
  const serving = serve(rep, (df) => ({ ...(df as Record<string, unknown>), z: 1 }), {
    signal: stop.signal,
  });
  try {
    const sent = work.elements;
    const answer = await request(req.context(), bytes, { sendMode: "raw", signal });
    assert.ok(work.elements - sent <= 16, `built ${work.elements - sent} elements`);
    assert.deepStrictEqual(Object.keys(answer as object), ["inner", "z"]);
    const healthy = await request(req.context(), { a: [1, 2, 3] }, { signal });
    assert.deepStrictEqual(healthy, { a: [1, 2, 3], z: 1 });
  } finally {
    stop.abort();
    await serving;
  }
});

/** A fixed number of runs, not a time: the same mutations are tried on any machine. */
const FUZZ_RUNS = 20_000;

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Every R fixture (XDR and native): attributes, ALTREP, closures, byte code, environments that
 * hold themselves, promises, S4: the corpus the fuzz mutates.
 */
function corpus(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const dir of ["", "extra/", "native/", "objects/"]) {
    for (const entry of Deno.readDirSync(new URL(dir, FIXTURES))) {
      if (entry.name.endsWith(".bin")) out.push(fixture(dir + entry.name));
    }
  }
  return out;
}

Deno.test("serial bombs: seeded fuzz of R fixtures through unserialize AND simplify", () => {
  const random = prng(1102);
  const sources = corpus();
  assert.ok(sources.length >= 60, `only ${sources.length} fixtures`);
  // Values a hostile peer writes into an int or double: lengths, extents, codes.
  const ints = [0, -1, 1, 2, 3, 0x7fffffff, -0x80000000, 1e8, 5e7, 2 ** 24, 2 ** 30, 65536];
  const doubles = [0, -1, 0.5, 1e8, 2 ** 24, 2 ** 53, 1e300, NaN, Infinity];
  for (let runs = 0; runs < FUZZ_RUNS; runs++) {
    const bytes = sources[Math.floor(random() * sources.length)]!.slice();
    const view = new DataView(bytes.buffer);
    const littleEndian = bytes[0] === 0x42;
    const mutations = 1 + Math.floor(random() * 3);
    for (let m = 0; m < mutations; m++) {
      const choice = random();
      const at = Math.floor(random() * bytes.length);
      if (choice < 0.45 && at + 4 <= bytes.length) {
        view.setInt32(at, ints[Math.floor(random() * ints.length)]!, littleEndian);
      } else if (choice < 0.7 && at + 8 <= bytes.length) {
        view.setFloat64(at, doubles[Math.floor(random() * doubles.length)]!, littleEndian);
      } else if (choice < 0.9) {
        bytes[at] = Math.floor(random() * 256);
      } else {
        bytes[at]! ^= 1 << Math.floor(random() * 8);
      }
    }
    const { error, elements } = decode(bytes);
    if (error !== undefined && !(error instanceof SerializationError)) {
      throw new Error(`run ${runs}: ${String(error)} for [${Array.from(bytes).join(",")}]`);
    }
    // Two unserialize and two simplify calls, each within its budget, plus what the bytes hold.
    const bound = 4 * BUDGET + 8 * bytes.length;
    assert.ok(elements <= bound, `run ${runs} built ${elements} elements: [${Array.from(bytes)}]`);
  }
});

Deno.test("serial bombs: a REP door answers a healthy request after a bomb", async () => {
  const signal = AbortSignal.timeout(20_000);
  await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
  await using req = await socket("req", { dial: rep.urls[0]! });
  const stop = new AbortController();
  const errors: unknown[] = [];
  const serving = serve(rep, (x) => x, {
    signal: stop.signal,
    concurrency: 2,
    onError: (e) => errors.push(e),
  });
  try {
    const rssBefore = Deno.memoryUsage().rss;
    for (
      const bomb of [
        oneDoubleWithDim(2, 5e7),
        oneDoubleWithDim(2, 1e8),
        realSequences(8, 2 ** 24),
        deferredStrings(2 ** 24),
        sequenceColumn(2 ** 24),
      ]
    ) {
      const before = work.elements;
      const answer = await request(req.context(), bomb, {
        sendMode: "raw",
        recvMode: "serial",
        signal,
      });
      const elements = work.elements - before;
      assert.ok(isNulByte(answer), `a bomb got ${String(answer)} instead of the error reply`);
      assert.ok(elements <= BUDGET, `a bomb had ${elements} elements built before its refusal`);
    }
    // Each refusal may leave up to BUDGET elements (128 MiB of doubles) for V8 to collect
    // later, so the bound allows five of those; one unbounded bomb here builds 2e8 doubles
    // (1.5 GiB) before anything could collect it.
    const grown = Deno.memoryUsage().rss - rssBefore;
    assert.ok(grown < 1024 * 2 ** 20, `rss grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
    assert.equal(errors.length, 5);
    assert.ok(errors.every((e) => e instanceof SerializationError), String(errors));
    const healthy = await request(req.context(), { a: [1, 2, 3] }, { signal });
    assert.deepStrictEqual(healthy, { a: [1, 2, 3] });
  } finally {
    stop.abort();
    await serving;
  }
});

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** gzip of `size` zero bytes after `head`, compressed as it streams (never held inflated). */
async function gzipZeros(head: Uint8Array, size: number): Promise<Uint8Array> {
  let left = size;
  const source = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(controller) {
      controller.enqueue(head.slice());
    },
    pull(controller) {
      if (left <= 0) return controller.close();
      const n = Math.min(left, 2 ** 20);
      controller.enqueue(new Uint8Array(n));
      left -= n;
    },
  });
  const compressed = source.pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(compressed).arrayBuffer());
}

Deno.test("serial bombs: gzip that inflates past the bound is a SerializationError", async () => {
  // A raw vector of 64 MiB as R would write it, gzipped to ~64 KiB: refused at 1 MiB.
  const size = 64 * 2 ** 20;
  // raw(0) without its length, then the length: a raw vector's header claiming 64 MiB.
  const head = serialize({ type: "raw", data: new Uint8Array(0) }).slice(0, -4);
  const header = new Uint8Array([...head, ...new Uint8Array(new Int32Array([size]).buffer)]);
  const bomb = await gzipZeros(header, size);
  assert.ok(bomb.length < 2 ** 20, `${bomb.length} bytes`);
  const rssBefore = Deno.memoryUsage().rss;
  for (const read of [readRds, readRData]) {
    await assert.rejects(
      () => read(bomb, { maxDecompressedBytes: 2 ** 20 }),
      (error: unknown) => {
        assert.ok(error instanceof SerializationError, String(error));
        assert.match(error.message, /inflates past maxDecompressedBytes \(1048576\)/);
        return true;
      },
    );
  }
  // The input is inflated a piece at a time: refused long before its 64 MiB exist.
  const grown = Deno.memoryUsage().rss - rssBefore;
  assert.ok(grown < 40 * 2 ** 20, `rss grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
  assert.throws(() => unserialize(bomb), /gzip-compressed data .* read it with readRds\(\)/);
  // Within the bound a gzip file reads; truncated or corrupt gzip is a SerializationError.
  const value = { type: "raw" as const, data: new Uint8Array(1000).fill(7) };
  const gz = await gzipZeros(serialize(value), 0);
  assert.deepStrictEqual(await readRds(gz), value);
  for (
    const broken of [gz.subarray(0, gz.length - 12), Uint8Array.from([0x1f, 0x8b, 8, 0, 1, 2])]
  ) {
    await assert.rejects(() => readRds(broken), SerializationError);
  }
});

Deno.test("serial files: bzip2 and xz are refused, naming the R call that avoids them", async () => {
  const bzip2 = Uint8Array.from([0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59]);
  const xz = Uint8Array.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]);
  for (const [bytes, format] of [[bzip2, "bzip2"], [xz, "xz"]] as const) {
    await assert.rejects(
      () => readRds(bytes),
      new RegExp(
        `${format}-compressed.*saveRDS\\(x, file, compress = "gzip"\\) or compress = FALSE`,
      ),
    );
    await assert.rejects(() => readRData(bytes), /save\(x, file, compress = "gzip"\)/);
  }
  // A save() workspace: RDX3 and a pairlist, gzip or not.
  const workspace = new Uint8Array([
    ...new TextEncoder().encode("RDX3\n"),
    ...serialize({ type: "pairlist", data: [{ tag: "x", value: { type: "NULL" } }] }, {
      format: "xdr",
    }),
  ]);
  for (const bytes of [workspace, await gzip(workspace)]) {
    const saved = await readRData(bytes);
    assert.deepStrictEqual(saved.data, [{ tag: "x", value: { type: "NULL" } }]);
  }
  await assert.rejects(() => readRData(serialize(1)), /not an R workspace/);
  assert.throws(() => unserialize(workspace), /save\(\); read it with readRData\(\)/);
});
