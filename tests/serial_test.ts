import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import {
  isNA,
  isRValue,
  NA_INTEGER,
  R_NULL,
  readRds,
  type RPairlistCell,
  type RValue,
  rValueOf,
  SerializationError,
  serialize,
  simplify,
  toR,
  unserialize,
  writeRds,
} from "../serial/mod.ts";

const FIXTURES = new URL("./fixtures/rserial/", import.meta.url);

function fixture(path: string): Uint8Array {
  return Deno.readFileSync(new URL(path, FIXTURES));
}

/** An empty, unhashed environment enclosed by the global one. */
function frameEnvironment(): RValue {
  return {
    type: "environment",
    name: "frame",
    locked: false,
    enclosure: { type: "environment", name: "global" },
    frame: R_NULL,
    hashTable: R_NULL,
  };
}

/** Names of fixtures with their XDR and native files (top level and extra/). */
function fixtureFiles(): { name: string; xdr: string; native: string }[] {
  const files: { name: string; xdr: string; native: string }[] = [];
  for (const entry of Deno.readDirSync(FIXTURES)) {
    if (!entry.name.endsWith(".bin")) continue;
    const name = entry.name.slice(0, -4);
    files.push({ name, xdr: entry.name, native: `native/${entry.name}` });
  }
  for (const entry of Deno.readDirSync(new URL("extra/", FIXTURES))) {
    if (!entry.name.endsWith(".bin") || entry.name.endsWith(".native.bin")) continue;
    const name = entry.name.slice(0, -4);
    files.push({ name, xdr: `extra/${entry.name}`, native: `extra/${name}.native.bin` });
  }
  return files.sort((a, b) => a.name.localeCompare(b.name));
}

const dbl = (...xs: number[]) => ({ type: "double", data: new Float64Array(xs) });
const int = (...xs: number[]) => ({ type: "integer", data: new Int32Array(xs) });
const lgl = (...xs: number[]) => ({ type: "logical", data: new Int32Array(xs) });
const chr = (...xs: (string | null)[]) => ({ type: "character", data: xs });
const NA_REAL = (() => {
  const a = new Float64Array(1);
  new Uint32Array(a.buffer)[0] = 1954;
  new Uint32Array(a.buffer)[1] = 0x7ff00000;
  return a[0]!;
})();

/** The value each fixture must decode to (typed), checked with deepStrictEqual. */
const EXPECTED: Record<string, unknown> = {
  int_seq_1_10: int(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
  int_scalar: int(42),
  dbl_na_inf: dbl(1.5, NA_REAL, -Infinity),
  dbl_nan_na_inf: dbl(NaN, NA_REAL, Infinity, -0),
  int_na: int(NA_INTEGER),
  lgl_na: lgl(1, NA_INTEGER, 0),
  chr_hello: chr("hello"),
  chr_na_utf8: chr("a", null, "é"),
  null: { type: "NULL" },
  list_named: {
    type: "list",
    data: [dbl(1), chr("x")],
    attributes: { names: chr("a", "b") },
  },
  list_nested: { type: "list", data: [dbl(1), { type: "list", data: [dbl(2), chr("y")] }] },
  data_frame: {
    type: "list",
    data: [int(1, 2, 3), chr("a", "b", "c")],
    attributes: {
      names: chr("x", "y"),
      class: chr("data.frame"),
      "row.names": int(NA_INTEGER, -3),
    },
  },
  factor: {
    type: "integer",
    data: new Int32Array([2, 1, 2]),
    attributes: { levels: chr("hi", "lo"), class: chr("factor") },
  },
  raw_vec: { type: "raw", data: new Uint8Array([0, 255, 16]) },
  complex: { type: "complex", data: new Float64Array([1, -2]) },
  matrix_int: { ...int(1, 2, 3, 4, 5, 6), attributes: { dim: int(2, 3) } },
  dbl_named: { ...dbl(1, 2), attributes: { names: chr("a", "b") } },
  dbl_seq_by: dbl(0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5),
  v2_int: int(1, 2, 3),
  altrep_intseq_rev: int(10, 9, 8, 7, 6, 5, 4, 3, 2, 1),
  altrep_realseq: dbl(1e10, 1e10 + 1, 1e10 + 2),
  altrep_deferred_str: chr("1", "2", "3"),
  altrep_wrap_real: dbl(1, 2, 3),
  altrep_wrap_int: int(1, 2, 3),
  chr_latin1: { ...chr("café"), encodings: ["latin1"] },
  chr_bytes: { ...chr("\xff\xfe"), encodings: ["bytes"] },
  chr_empty_and_na: chr("", null),
  empty_vectors: {
    type: "list",
    data: [chr(), int(), dbl(), lgl(), { type: "list", data: [] }, {
      type: "raw",
      data: new Uint8Array(0),
    }],
  },
  refsym_names_twice: {
    type: "list",
    data: [{ ...dbl(1), attributes: { names: chr("a") } }, {
      ...dbl(2),
      attributes: { names: chr("b") },
    }],
  },
  globalenv: { type: "environment", name: "global" },
  formula: {
    type: "language",
    data: [
      { value: { type: "symbol", name: "~" } },
      { value: { type: "symbol", name: "y" } },
      {
        value: {
          type: "language",
          data: [
            { value: { type: "symbol", name: "+" } },
            { value: { type: "symbol", name: "x" } },
            { value: dbl(1) },
          ],
        },
      },
    ],
    attributes: { class: chr("formula"), ".Environment": { type: "environment", name: "global" } },
  },
  call_quote: {
    type: "language",
    data: [
      { value: { type: "symbol", name: "f" } },
      { value: { type: "symbol", name: "x" } },
      { value: int(1) },
    ],
  },
  pairlist_tagged: { type: "pairlist", data: [{ tag: "a", value: dbl(1) }, { value: dbl(2) }] },
  nested_df_factor: {
    type: "list",
    data: [
      { ...int(1, 2), attributes: { levels: chr("u", "v"), class: chr("factor") } },
      dbl(1.5, NA_REAL),
    ],
    attributes: {
      names: chr("g", "n"),
      class: chr("data.frame"),
      "row.names": int(NA_INTEGER, -2),
    },
  },
  s3_object: {
    type: "list",
    data: [int(1)],
    attributes: { names: chr("v"), class: chr("myclass", "list") },
  },
  int_matrix_dimnames: {
    ...int(1, 2, 3, 4),
    attributes: {
      dim: int(2, 2),
      dimnames: { type: "list", data: [chr("r1", "r2"), chr("c1", "c2")] },
    },
  },
  error_condition: {
    type: "list",
    data: [chr("boom"), { type: "NULL" }],
    attributes: {
      names: chr("message", "call"),
      class: chr("simpleError", "error", "condition"),
    },
  },
  raw_nul_byte: { type: "raw", data: new Uint8Array([0]) },
  rownames_character: {
    type: "list",
    data: [int(1, 2)],
    attributes: { names: chr("x"), class: chr("data.frame"), "row.names": chr("a", "b") },
  },
};

/** Bit-exact comparison of doubles (deepStrictEqual treats every NaN alike). */
function doubleBits(value: RValue): string {
  if (value.type !== "double") throw new Error(`expected a double vector, got ${value.type}`);
  const { buffer, byteOffset, length } = value.data;
  return Array.from(new Uint32Array(buffer, byteOffset, 2 * length), (w) => w.toString(16)).join(
    ",",
  );
}

function throwsSerializationError(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (error) {
    if (error instanceof SerializationError) return;
    throw new Error(`${what}: threw ${String(error)} instead of SerializationError`, {
      cause: error,
    });
  }
  throw new Error(`${what}: decoded without an error`);
}

Deno.test("tests read fixtures from the repository and cannot read outside it", () => {
  // deno.json scopes the tests' read permission (the repository, the temp folder, /proc for
  // memory checks, /usr/bin for the peers), so a fixture left outside the repo fails here too.
  const repo = new URL("../", import.meta.url);
  assert.equal(Deno.permissions.querySync({ name: "read", path: repo }).state, "granted");
  // Not the folder above the repository: a clone may sit in the temp folder, which is granted.
  for (const outside of ["/etc", "/root"]) {
    assert.notEqual(Deno.permissions.querySync({ name: "read", path: outside }).state, "granted");
    assert.throws(() => Deno.readDirSync(outside), Deno.errors.NotCapable);
  }
});

Deno.test("unserialize: every R fixture decodes to the expected value, XDR and native", () => {
  const files = fixtureFiles();
  assert.ok(files.length >= 39, `found only ${files.length} fixtures`);
  for (const { name, xdr, native } of files) {
    const expected = EXPECTED[name];
    assert.ok(expected !== undefined, `no expectation written for fixture ${name}`);
    const fromXdr = unserialize(fixture(xdr));
    assert.deepStrictEqual(fromXdr, expected, `${xdr}`);
    assert.deepStrictEqual(unserialize(fixture(native)), expected, native);
  }
});

Deno.test("unserialize: NA_real_, NaN, Inf and -0 keep their bits", () => {
  const value = unserialize(fixture("extra/dbl_nan_na_inf.bin"));
  assert.equal(value.type, "double");
  if (value.type !== "double") return;
  assert.deepEqual(Array.from(value.data, isNA), [false, true, false, false]);
  assert.ok(Number.isNaN(value.data[0]));
  assert.ok(Object.is(value.data[3], -0));
  const native = unserialize(fixture("extra/dbl_nan_na_inf.native.bin"));
  assert.equal(doubleBits(native), doubleBits(value));
  for (const format of ["binary", "xdr", "ascii"] as const) {
    assert.equal(doubleBits(unserialize(serialize(value, { format }))), doubleBits(value), format);
  }
  const naInf = unserialize(fixture("dbl_na_inf.bin"));
  assert.ok(naInf.type === "double" && isNA(naInf.data[1]!) && naInf.data[2] === -Infinity);
});

Deno.test("serialize: every fixture survives a round trip in each format and version", () => {
  for (const { name, xdr } of fixtureFiles()) {
    const value = unserialize(fixture(xdr));
    for (const format of ["binary", "xdr", "ascii"] as const) {
      for (const version of [2, 3] as const) {
        const bytes = serialize(value, { format, version });
        assert.deepStrictEqual(unserialize(bytes), value, `${name} ${format} v${version}`);
      }
    }
  }
});

Deno.test("serialize: bytes match what R writes for data without ALTREP", () => {
  for (
    const name of [
      "dbl_na_inf",
      "int_scalar",
      "int_na",
      "lgl_na",
      "chr_hello",
      "chr_na_utf8",
      "null",
      "list_named",
      "list_nested",
      "factor",
      "raw_vec",
      "complex",
      "dbl_named",
      "dbl_seq_by",
    ]
  ) {
    const xdr = fixture(`${name}.bin`);
    assert.deepStrictEqual(serialize(unserialize(xdr), { format: "xdr" }), xdr, name);
    const native = fixture(`native/${name}.bin`);
    assert.deepStrictEqual(serialize(unserialize(native)), native, `native ${name}`);
  }
  assert.deepStrictEqual(
    serialize(unserialize(fixture("v2_int.bin")), { format: "xdr", version: 2 }),
    fixture("v2_int.bin"),
  );
});

Deno.test("unserialize: nanonext's 0x07 headers are skipped, other forms refused", () => {
  const body = fixture("native/list_named.bin");
  const expected = unserialize(body);
  const with8 = new Uint8Array([7, 0, 0, 1, 5, 0, 0, 0, ...body]);
  assert.deepStrictEqual(unserialize(with8), expected);
  const with12 = new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...body]);
  assert.deepStrictEqual(unserialize(with12), expected);
  const bad = new Uint8Array([7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, ...body]);
  assert.throws(() => unserialize(bad), SerializationError);
  assert.throws(() => unserialize(new Uint8Array([7, 1, 2])), /0x07 header/);
  // nanonext's serial_config(): bytes 4-11 hold where the R stream ends, the class's own
  // serialization of each claimed object follows (a count, then length and bytes of each).
  const stream = serialize({ type: "persistent", names: ["1"] });
  const end = 12 + stream.length;
  const framed = new Uint8Array([7, 0, 0, 0, end, 0, 0, 0, 0, 0, 0, 0, ...stream]);
  const configured = new Uint8Array([
    ...framed,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    9,
    9,
  ]);
  assert.throws(
    () => unserialize(configured),
    new RegExp(
      `nanonext's serial_config\\(\\): after the R stream \\(bytes 12 to ${end}\\) come 18 bytes`,
    ),
  );
});

Deno.test("unserialize: every truncation of every fixture is a SerializationError", () => {
  for (const { xdr, native } of fixtureFiles()) {
    for (const path of [xdr, native]) {
      const bytes = fixture(path);
      for (let cut = 0; cut < bytes.length; cut++) {
        throwsSerializationError(
          () => unserialize(bytes.subarray(0, cut)),
          `${path} cut at ${cut}`,
        );
      }
    }
  }
  const ascii = serialize(unserialize(fixture("data_frame.bin")), { format: "ascii" });
  const text = new TextDecoder().decode(ascii).trimEnd();
  for (let cut = 0; cut < text.length; cut++) {
    if (/\s/.test(text[cut]!)) continue; // cutting at whitespace only ends a token early
    throwsSerializationError(
      () => unserialize(new TextEncoder().encode(text.slice(0, cut))),
      `ascii cut at ${cut}`,
    );
  }
});

function xdrHeaderV2(): number[] {
  return [0x58, 0x0a, 0, 0, 0, 2, 0, 4, 2, 2, 0, 2, 3, 0];
}

function be32(...ints: number[]): number[] {
  return ints.flatMap((n) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

Deno.test("unserialize: huge length claims and garbage are refused without allocating", () => {
  const cases: [string, number[]][] = [
    ["empty", []],
    ["not R", Array.from(new TextEncoder().encode("hello world"))],
    ["version 4", [0x58, 0x0a, ...be32(4, 0x040202, 0x030500)]],
    ["double length 2^31-1", [...xdrHeaderV2(), ...be32(14, 0x7fffffff)]],
    ["long length 2^40", [...xdrHeaderV2(), ...be32(14, -1, 256, 0)]],
    ["negative length", [...xdrHeaderV2(), ...be32(13, -5)]],
    ["string length 2^31-1", [...xdrHeaderV2(), ...be32(16, 1, 0x40009, 0x7fffffff)]],
    ["list of 2^30", [...xdrHeaderV2(), ...be32(19, 0x40000000)]],
    ["unknown type", [...xdrHeaderV2(), ...be32(99)]],
    ["closure", [...xdrHeaderV2(), ...be32(3)]],
    ["environment", [...xdrHeaderV2(), ...be32(4, 0)]],
    ["external pointer", [...xdrHeaderV2(), ...be32(22)]],
    ["reference before any symbol", [...xdrHeaderV2(), ...be32(0x1ff)]],
    ["trailing bytes", [...xdrHeaderV2(), ...be32(254, 0)]],
    ["encoding name 2^31", [0x58, 0x0a, ...be32(3, 0x040202, 0x030500, 0x7fffffff)]],
  ];
  for (const [what, bytes] of cases) {
    throwsSerializationError(() => unserialize(new Uint8Array(bytes)), what);
  }
  // 1:1e9 as R writes it (compact_intseq) is 24 bytes of state: refused by maxElements.
  const seq = unserialize(fixture("int_seq_1_10.bin"));
  assert.equal(seq.type, "integer");
  const hugeSeq = fixture("int_seq_1_10.bin").slice();
  const view = new DataView(hugeSeq.buffer);
  const stateAt = hugeSeq.length - 4 - 24;
  assert.equal(view.getFloat64(stateAt), 10);
  view.setFloat64(stateAt, 1e9);
  assert.throws(() => unserialize(hugeSeq), /maxExpandedElements/);
  view.setFloat64(stateAt, 100);
  assert.throws(() => unserialize(hugeSeq, { maxExpandedElements: 50 }), SerializationError);
  assert.equal((unserialize(hugeSeq) as { data: Int32Array }).data.length, 100);
  // 100 000 nested lists: refused by maxDepth, not a stack overflow.
  const deep = [
    ...xdrHeaderV2(),
    ...Array.from({ length: 100_000 }, () => be32(19, 1)).flat(),
    ...be32(254),
  ];
  assert.throws(() => unserialize(new Uint8Array(deep)), /maxDepth/);
});

/** Small seeded PRNG (mulberry32) so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("unserialize: seeded fuzz of mutated fixtures throws only SerializationError", () => {
  const random = prng(20261123);
  const corpus = fixtureFiles().flatMap((f) => [f.xdr, f.native].map((p) => fixture(p)));
  corpus.push(serialize(unserialize(fixture("data_frame.bin")), { format: "ascii" }));
  const deadline = performance.now() + 5_000;
  let runs = 0;
  for (; runs < 20_000 && performance.now() < deadline; runs++) {
    const source = corpus[Math.floor(random() * corpus.length)]!;
    const bytes = source.slice();
    const mutations = 1 + Math.floor(random() * 4);
    for (let m = 0; m < mutations; m++) {
      const at = Math.floor(random() * bytes.length);
      const choice = random();
      if (choice < 0.5) bytes[at] = Math.floor(random() * 256);
      else if (choice < 0.8) bytes[at] = [0x00, 0xff, 0x7f, 0x80][Math.floor(random() * 4)]!;
      else bytes[at]! ^= 1 << Math.floor(random() * 8);
    }
    try {
      unserialize(bytes, { maxElements: 1 << 20 });
    } catch (error) {
      if (!(error instanceof SerializationError)) {
        throw new Error(`run ${runs}: ${String(error)} for ${Array.from(bytes).join(",")}`);
      }
    }
  }
  assert.ok(runs >= 1000, `only ${runs} fuzz runs`);
});

Deno.test("toR and simplify: plain JS in, plain JS out", async (t) => {
  await t.step("scalars and homogeneous arrays become atomic vectors", () => {
    assert.deepStrictEqual(toR(1.5), dbl(1.5));
    assert.deepStrictEqual(toR("a"), chr("a"));
    assert.deepStrictEqual(toR(true), lgl(1));
    assert.deepStrictEqual(toR(null), { type: "NULL" });
    assert.deepStrictEqual(toR(["a", null]), chr("a", null));
    assert.deepStrictEqual(toR([true, null, false]), lgl(1, NA_INTEGER, 0));
    const numbers = toR([1, null]);
    assert.ok(numbers.type === "double" && isNA(numbers.data[1]!));
    assert.deepStrictEqual(toR([1, "a"]), { type: "list", data: [dbl(1), chr("a")] });
    assert.deepStrictEqual(toR({ a: 1 }), {
      type: "list",
      data: [dbl(1)],
      attributes: { names: chr("a") },
    });
    assert.throws(() => toR(new Date() as never), TypeError);
  });
  await t.step("simplify reads factors, data.frames, matrices and named vectors", () => {
    assert.deepStrictEqual(simplify(unserialize(fixture("factor.bin"))), ["lo", "hi", "lo"]);
    assert.deepStrictEqual(simplify(unserialize(fixture("data_frame.bin"))), {
      x: [1, 2, 3],
      y: ["a", "b", "c"],
    });
    assert.deepStrictEqual(
      simplify(unserialize(fixture("extra/nested_df_factor.bin")), { dataFrame: "rows" }),
      [{ g: "u", n: 1.5 }, { g: "v", n: null }],
    );
    assert.deepStrictEqual(simplify(unserialize(fixture("matrix_int.bin"))), [[1, 3, 5], [
      2,
      4,
      6,
    ]]);
    assert.deepStrictEqual(simplify(unserialize(fixture("dbl_named.bin"))), { a: 1, b: 2 });
    assert.deepStrictEqual(simplify(unserialize(fixture("int_na.bin"))), null);
    assert.deepStrictEqual(simplify(unserialize(fixture("complex.bin"))), { re: 1, im: -2 });
    assert.deepStrictEqual(simplify(unserialize(fixture("list_nested.bin"))), [1, [2, "y"]]);
    assert.deepStrictEqual(simplify(unserialize(fixture("chr_na_utf8.bin"))), ["a", null, "é"]);
    const plain = { a: 1, b: ["x", null], c: [true, false], d: { e: "é" } };
    assert.deepStrictEqual(simplify(unserialize(serialize(plain))), plain);
  });
});

Deno.test("serialize: values R cannot hold are refused with a typed error", () => {
  assert.throws(() => serialize("a\0b"), SerializationError);
  assert.throws(
    () => serialize({ type: "character", data: ["ā"], encodings: ["latin1"] }),
    SerializationError,
  );
  assert.throws(() => serialize(new Map() as never), TypeError);
  assert.throws(() => serialize(1, { format: "json" as never }), TypeError);
  assert.throws(() => serialize(1, { version: 4 as never }), RangeError);
});

Deno.test("simplify → serialize: R values come back as they were", async (t) => {
  const decoded = fixtureFiles().map(({ xdr }) => ({ xdr, value: unserialize(fixture(xdr)) }));
  await t.step("every fixture, with the request as `like`", () => {
    for (const { xdr, value } of decoded) {
      const plain = simplify(value);
      assert.deepStrictEqual(unserialize(serialize(plain, { like: value })), value, xdr);
    }
  });
  await t.step("every fixture that simplifies to an array or object, from its own tag", () => {
    let tagged = 0;
    for (const { xdr, value } of decoded) {
      const plain = simplify(value);
      if (typeof plain !== "object" || plain === null || isRValue(plain)) continue;
      tagged++;
      assert.deepStrictEqual(unserialize(serialize(plain)), value, xdr);
      assert.equal(rValueOf(plain), value, `${xdr} remembers its R value`);
    }
    assert.ok(tagged >= 25, `only ${tagged} fixtures simplify to containers`);
  });
  await t.step("scalars without `like` keep today's plain rules", () => {
    const int42 = simplify(unserialize(fixture("int_scalar.bin")));
    assert.equal(int42, 42);
    assert.deepStrictEqual(unserialize(serialize(int42 as number)), dbl(42));
    assert.deepStrictEqual(unserialize(serialize([1, 2])), dbl(1, 2));
    assert.deepStrictEqual(toR({ a: [1, 2] }), {
      type: "list",
      data: [dbl(1, 2)],
      attributes: { names: chr("a") },
    });
  });
});

/** toR for edited simplified values, whose static type the test does not spell out. */
const looseToR = (value: unknown, like?: RValue) => toR(value as never, like);

Deno.test("simplify → edit in JS → serialize keeps R types and attributes", async (t) => {
  const read = (path: string) => {
    const value = unserialize(fixture(path));
    // deno-lint-ignore no-explicit-any
    return { value, plain: simplify(value) as any };
  };
  await t.step("a column added to a data.frame, by spread or by assignment", () => {
    // Spreading builds a new object without the tag: the request, as `like`, stands in.
    const { value: frame, plain } = read("data_frame.bin");
    const spread = looseToR({ ...plain, z: [true, false, true] }, frame);
    assert.deepStrictEqual(spread, {
      type: "list",
      data: [int(1, 2, 3), chr("a", "b", "c"), lgl(1, 0, 1)],
      attributes: {
        names: chr("x", "y", "z"),
        class: chr("data.frame"),
        "row.names": int(NA_INTEGER, -3),
      },
    });
    const assigned = read("extra/rownames_character.bin").plain;
    assigned.double = (assigned.x as number[]).map((x) => x * 2);
    assigned.label = "k"; // recycled, as df$label <- "k"
    const value = looseToR(assigned);
    assert.ok(value.type === "list");
    assert.deepStrictEqual(value.data, [int(1, 2), dbl(2, 4), chr("k", "k")]);
    assert.deepStrictEqual(value.attributes?.["row.names"], chr("a", "b"));
  });
  await t.step("a data.frame whose columns differ in length becomes a named list", () => {
    const { value: frame, plain } = read("data_frame.bin");
    const value = looseToR({ ...plain, z: [1] }, frame);
    assert.ok(value.type === "list");
    assert.deepStrictEqual(value.attributes, { names: chr("x", "y", "z") });
  });
  await t.step("an element of a named list changed; a vector mapped to the same length", () => {
    const nested = unserialize(serialize({
      type: "list",
      data: [int(1), chr("x")],
      attributes: { names: chr("a", "b") },
    }));
    const plain = simplify(nested) as { a: number; b: string };
    assert.deepStrictEqual(looseToR({ ...plain, a: 5 }, nested), {
      type: "list",
      data: [int(5), chr("x")],
      attributes: { names: chr("a", "b") },
    });
    // A new shape (an array for a named list) is new JS: the plain rules, no stray names.
    assert.deepStrictEqual(looseToR(["p", "q"], nested), chr("p", "q"));
    const seq = read("int_seq_1_10.bin");
    assert.deepStrictEqual(looseToR(seq.plain.map((x: number) => x * 2), seq.value), {
      type: "integer",
      data: Int32Array.from({ length: 10 }, (_, i) => 2 * (i + 1)),
    });
    assert.deepStrictEqual(looseToR(new Int32Array([7]), read("int_scalar.bin").value), int(7));
    // Fractions no longer fit an integer: a double, as R's 1:3 / 2.
    assert.deepStrictEqual(
      looseToR(seq.plain.map((x: number) => x / 2), seq.value).type,
      "double",
    );
  });
  await t.step("a factor stays a factor; a new label becomes a new level", () => {
    const { value, plain } = read("factor.bin");
    const relabelled = looseToR(plain.map((x: string) => x === "lo" ? "new" : x), value);
    assert.deepStrictEqual(relabelled, {
      type: "integer",
      data: new Int32Array([3, 1, 3]),
      attributes: { levels: chr("hi", "lo", "new"), class: chr("factor") },
    });
  });
  await t.step("a matrix keeps dim and dimnames while its shape does", () => {
    const { value, plain } = read("extra/int_matrix_dimnames.bin");
    assert.deepStrictEqual(looseToR(plain), value);
    const doubled = (plain as unknown as number[][]).map((row) => row.map((x) => x * 2));
    assert.deepStrictEqual(looseToR(doubled, value), {
      ...value,
      data: new Int32Array([2, 4, 6, 8]),
    });
    const wider = looseToR([[1, 2, 3]], value);
    assert.deepStrictEqual(wider, {
      type: "integer",
      data: new Int32Array([1, 2, 3]),
      attributes: { dim: int(1, 3) },
    });
  });
  await t.step("empty vectors keep their type; NA keeps its type", () => {
    const { value, plain } = read("extra/empty_vectors.bin");
    assert.deepStrictEqual(looseToR(plain), value);
    const na = read("int_na.bin");
    assert.equal(na.plain, null);
    assert.deepStrictEqual(looseToR(na.plain, na.value), int(NA_INTEGER));
  });
});

Deno.test("simplify → serialize: the shapes review found coming back different", async (t) => {
  const INT = (...xs: number[]) => int(...xs) as RValue;
  const CHR = (...xs: (string | null)[]) => chr(...xs) as RValue;
  const DBL = (...xs: number[]) => dbl(...xs) as RValue;
  const frame = (columns: RValue[], names: string[], rows: RValue): RValue => ({
    type: "list",
    data: columns,
    attributes: { names: CHR(...names), class: CHR("data.frame"), "row.names": rows },
  });
  /** Both ways back: from the value's own tag, and with the request as `like`. */
  const same = (value: RValue) => {
    const plain = simplify(value);
    assert.deepStrictEqual(unserialize(serialize(plain)), value, "from its tag");
    assert.deepStrictEqual(unserialize(serialize(plain, { like: value })), value, "with like");
  };
  await t.step("a data.frame column that is a data.frame", () => {
    const inner = frame([INT(3, 4)], ["a"], INT(NA_INTEGER, -2));
    const outer = frame([INT(1, 2), inner], ["x", "inner"], INT(NA_INTEGER, -2));
    same(outer);
    // Its own column keeps the inner frame's shape: { a: [3, 4] }, not [{ a: [3, 4] }].
    assert.deepStrictEqual(simplify(outer), { x: [1, 2], inner: { a: [3, 4] } });
  });
  await t.step("a factor with an NA level (addNA)", () => {
    same({
      type: "integer",
      data: new Int32Array([1, 2, NA_INTEGER]),
      attributes: { levels: CHR("a", null), class: CHR("factor") },
    });
  });
  await t.step("a data.frame with rows and no columns", () => {
    same(frame([], [], INT(NA_INTEGER, -3)));
  });
  await t.step("a list whose names repeat", () => {
    const list: RValue = {
      type: "list",
      data: [INT(1), CHR("x")],
      attributes: { names: CHR("a", "a") },
    };
    same(list);
    // A JS object cannot hold both: an array, as for an unnamed list.
    assert.deepStrictEqual(simplify(list), [1, "x"]);
    same({ type: "double", data: new Float64Array([1, 2]), attributes: { names: CHR("b", "b") } });
  });
  await t.step("a scalar recycled into a zero-row data.frame is an empty vector", () => {
    const empty = frame([INT()], ["x"], INT(NA_INTEGER, 0));
    const plain = simplify(empty) as Record<string, unknown>;
    const value = toR({ ...plain, z: 1, s: "a" } as never, empty);
    assert.ok(value.type === "list");
    assert.deepStrictEqual(value.data, [INT(), DBL(), CHR()]);
  });
  await t.step("a vector edited into several types: a list whose elements keep their type", () => {
    const named: RValue = {
      type: "logical",
      data: new Int32Array([1, NA_INTEGER]),
      attributes: { names: CHR("a", "b") },
    };
    const plain = simplify(named) as Record<string, unknown>;
    // NA stays a logical NA (not NULL) next to the new element of another type.
    assert.deepStrictEqual(toR({ ...plain, z: "new" } as never, named), {
      type: "list",
      data: [lgl(1), lgl(NA_INTEGER), CHR("new")],
      attributes: { names: CHR("a", "b", "z") },
    });
    const ints = INT(1, NA_INTEGER);
    const pushed = simplify(ints) as unknown[];
    pushed.push("x");
    assert.deepStrictEqual(toR(pushed as never), {
      type: "list",
      data: [INT(1), INT(NA_INTEGER), CHR("x")],
    });
  });
});

Deno.test("simplify: a value that is already simplified comes back unchanged", () => {
  for (const { xdr } of fixtureFiles()) {
    const once = simplify(unserialize(fixture(xdr)));
    assert.deepStrictEqual(simplify(once as never), once, xdr);
  }
  for (const plain of [1.5, "a", null, true, [1, 2], { a: [1, 2] }]) {
    assert.deepStrictEqual(simplify(plain as never), plain);
  }
});

Deno.test("reqrep: recv mode typed, R types kept by reply, rsock req --json", async () => {
  const { recv, reply, request, send, socket } = await import("../reqrep/mod.ts");
  const { main } = await import("../cli.ts");
  const { captured } = await import("./_process.ts");
  const signal = AbortSignal.timeout(10_000);
  await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
  await using req = await socket("req", { dial: rep.urls[0]! });
  const factor: RValue = {
    type: "integer",
    data: new Int32Array([2, 1]),
    attributes: {
      levels: { type: "character", data: ["a", "b"] },
      class: { type: "character", data: ["factor"] },
    },
  };
  // typed: the exact tree, as sent.
  await send(req, factor);
  assert.deepStrictEqual(await recv(rep, { mode: "typed", signal }), factor);
  await send(rep, 1);
  await recv(req, { signal });
  // serial: the reply keeps the request's R type (a factor, a lone integer).
  const serving = reply(rep, (x) => (x as string[]).map((label) => label === "a" ? "b" : label));
  assert.deepStrictEqual(await request(req, factor, { recvMode: "typed", signal }), {
    ...factor,
    data: new Int32Array([2, 2]),
  });
  await serving;
  const scalar = reply(rep, (x) => (x as number) + 1);
  assert.deepStrictEqual(await request(req, int(41), { recvMode: "typed", signal }), int(42));
  await scalar;
  // The CLI: a structured request with --json, and the reply printed as JSON.
  const echo = reply(rep, (x) => x);
  const output = captured();
  const code = await main(["req", rep.urls[0]!, "--json", '{"a": [1, 2, 3], "b": null}'], output);
  await echo;
  assert.equal(code, 0, output.err);
  assert.deepStrictEqual(JSON.parse(output.out), { a: [1, 2, 3], b: null });
  const typed = reply(rep, () => factor);
  const typedOut = captured();
  await main(
    ["req", rep.urls[0]!, "--data", "x", "--recv-mode", "typed", "--format", "json"],
    typedOut,
  );
  await typed;
  assert.deepStrictEqual(JSON.parse(typedOut.out), {
    type: "integer",
    data: [2, 1],
    attributes: {
      levels: { type: "character", data: ["a", "b"] },
      class: { type: "character", data: ["factor"] },
    },
  });
});

Deno.test("unserialize: long runs of short, repeated and unique strings decode exactly", () => {
  const random = prng(77);
  const words = Array.from({ length: 5000 }, () => {
    const n = Math.floor(random() * 14);
    return Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 95)))
      .join("");
  });
  const pick = (k: number) =>
    Array.from({ length: 20_000 }, () => words[Math.floor(random() * k)]!);
  for (
    const data of [
      pick(5000),
      pick(7),
      [...pick(3), "é", null, ...pick(3000), "x".repeat(40)],
      Array.from({ length: 20_000 }, (_, i) => `s${i}`),
    ]
  ) {
    for (const format of ["binary", "xdr"] as const) {
      const value = unserialize(serialize({ type: "character", data }, { format }));
      assert.ok(value.type === "character");
      assert.deepStrictEqual(value.data, data);
    }
  }
});

Deno.test("unserialize: symbols and attributes named like JS's own keys decode as written", () => {
  // Print names are cached and shared across messages: read each value twice, so the second
  // reading takes them from the cache. Names longer than the cache's 24 bytes are made as read.
  const names = ["__proto__", "0", "4294967295", "constructor", "toString", "a".repeat(24)];
  const symbols: RValue = {
    type: "list",
    data: [...names, "b".repeat(25)].map((name): RValue => ({ type: "symbol", name })),
  };
  const call: RValue = {
    type: "language",
    data: [
      { value: { type: "symbol", name: "f" } },
      ...names.map((tag, i): RPairlistCell => ({
        tag,
        value: { type: "double", data: new Float64Array([i]) },
      })),
    ],
  };
  const attributes: Record<string, RValue> = {};
  for (const [i, name] of names.entries()) {
    Object.defineProperty(attributes, name, {
      value: { type: "integer", data: new Int32Array([i]) },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const attributed: RValue = { type: "logical", data: new Int32Array([1]), attributes };
  for (const value of [symbols, call, attributed]) {
    for (const format of ["binary", "xdr"] as const) {
      const bytes = serialize(value, { format });
      for (let reading = 0; reading < 2; reading++) {
        const back = unserialize(bytes);
        assert.deepStrictEqual(back, value);
        if (back.type === "logical") {
          assert.deepStrictEqual(Object.keys(back.attributes!), Object.keys(attributes));
          assert.equal(Object.getPrototypeOf(back.attributes), Object.prototype);
        }
      }
    }
  }
});

/** The objects/ fixtures: closures, byte code, environments, promises, S4 (XDR and native). */
function objectFixtures(): string[] {
  return [...Deno.readDirSync(new URL("objects/", FIXTURES))]
    .map((entry) => entry.name)
    .filter((name) => name.endsWith(".bin"))
    .sort();
}

function bindings(environment: RValue): Map<string, RValue> {
  assert.ok(environment.type === "environment" && environment.name === "frame");
  const out = new Map<string, RValue>();
  const chains = environment.hashTable.type === "list"
    ? environment.hashTable.data
    : [environment.frame];
  for (const chain of chains) {
    if (chain.type !== "pairlist") continue;
    for (const cell of chain.data) out.set(cell.tag!, cell.value);
  }
  return out;
}

Deno.test("unserialize → serialize: R's objects come back as R's own bytes", () => {
  const names = objectFixtures();
  assert.ok(names.length >= 24, `only ${names.length} object fixtures`);
  for (const name of names) {
    const bytes = fixture(`objects/${name}`);
    const value = unserialize(bytes);
    const written = serialize(value, name.endsWith(".native.bin") ? {} : { format: "xdr" });
    assert.deepStrictEqual(written, bytes, name);
  }
});

Deno.test("unserialize: an environment is one object, also when it holds itself", () => {
  const environment = unserialize(fixture("objects/env_self.bin"));
  assert.ok(environment.type === "environment" && environment.name === "frame");
  assert.equal(bindings(environment).get("self"), environment);
  assert.deepStrictEqual(bindings(environment).get("x"), dbl(1, 2));
  // A namespace referred to twice: read once, then a reference to the same object.
  const namespaces = unserialize(fixture("objects/env_namespace.bin"));
  assert.ok(namespaces.type === "list");
  assert.equal(namespaces.data[0], namespaces.data[1]);
  assert.deepStrictEqual(namespaces.data[0], {
    type: "environment",
    name: "namespace",
    spec: ["stats", "4.2.2"],
  });
  const locked = unserialize(fixture("objects/env_locked.bin"));
  assert.ok(locked.type === "environment" && locked.name === "frame" && locked.locked);
  // lockEnvironment(e, bindings = TRUE) locks each binding: R's bit 14 on the frame's cell.
  assert.ok(locked.frame.type === "pairlist");
  assert.equal((locked.frame.data[0]!.levels ?? 0) & (1 << 14), 1 << 14);
});

Deno.test("unserialize: closures, byte code, promises, primitives and S4 are typed", () => {
  const closure = unserialize(fixture("objects/closure_captured.bin"));
  assert.ok(closure.type === "closure");
  assert.equal(bindings(closure.environment).get("k")?.type, "double");
  const sd = unserialize(fixture("objects/stats_sd.bin"));
  assert.ok(sd.type === "closure" && sd.body.type === "bytecode");
  assert.deepStrictEqual(sd.environment, {
    type: "environment",
    name: "namespace",
    spec: ["stats", "4.2.2"],
  });
  // The compiled expression is constant 1; its calls are shared with later constants.
  assert.equal(sd.body.constants[0]?.type, "language");
  const promise = bindings(unserialize(fixture("objects/env_promise.bin"))).get("p");
  assert.ok(promise?.type === "promise");
  assert.deepStrictEqual(promise.value, { type: "unbound" });
  assert.equal(promise.expression.type, "language");
  const dots = bindings(unserialize(fixture("objects/env_dots.bin"))).get("...");
  assert.ok(dots?.type === "dots");
  assert.deepStrictEqual(dots.data.map((cell) => cell.tag), [undefined, "b"]);
  assert.deepStrictEqual(unserialize(fixture("objects/primitives.bin")), {
    type: "list",
    data: [{ type: "builtin", name: "sum" }, { type: "special", name: "if" }],
  });
  const person = unserialize(fixture("objects/s4_person.bin"));
  assert.ok(person.type === "S4");
  assert.equal((person.levels ?? 0) & 16, 16);
  assert.deepStrictEqual(person.attributes?.["name"], chr("Ada"));
  const celsius = unserialize(fixture("objects/s4_numeric.bin"));
  assert.ok(celsius.type === "double" && ((celsius.levels ?? 0) & 16) === 16);
  const pointer = unserialize(fixture("objects/external_pointer.bin"));
  assert.deepStrictEqual(pointer, {
    type: "externalptr",
    protected: { type: "NULL" },
    tag: { type: "NULL" },
  });
});

Deno.test("unserialize: an unmarked string that is not UTF-8 keeps its bytes and no mark", () => {
  // c("caf\xe9", "plain") typed in a UTF-8 R: no encoding mark, bytes 63 61 66 e9.
  const bytes = fixture("objects/chr_unmarked_bytes.bin");
  const value = unserialize(bytes);
  assert.ok(value.type === "character");
  assert.deepStrictEqual(value.data, ["caf\xe9", "plain"]);
  assert.deepStrictEqual(value.encodings, ["native bytes", "UTF-8"]);
  assert.deepStrictEqual(serialize(value, { format: "xdr" }), bytes);
});

Deno.test("unserialize: a reference to an item not read is a SerializationError", () => {
  const header = [0x58, 0x0a, 0, 0, 0, 2, 0, 4, 2, 2, 0, 2, 3, 0];
  const be = (...xs: number[]) =>
    xs.flatMap((x) => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]);
  // list(<ref 1>) with nothing read before it; list(x, <ref 7>) with one symbol read.
  const streams = [
    [...header, ...be(19, 1, (1 << 8) | 255)],
    [...header, ...be(19, 2, 1, 9 | (64 << 12), 1), 0x78, ...be(255, 7)],
  ];
  for (const stream of streams) {
    assert.throws(() => unserialize(Uint8Array.from(stream)), (error: unknown) => {
      assert.ok(error instanceof SerializationError);
      assert.match(error.message, /reference #(1|7) to an item not read yet/);
      return true;
    });
  }
  // Byte code whose constant refers to a shared cell never defined (1 declared).
  const bytecode = [...header, ...be(21, 1, 13, 1, 12, 1, 243, 0)];
  assert.throws(
    () => unserialize(Uint8Array.from(bytecode)),
    /byte-code cell #0 referred to before it is defined/,
  );
  // More shared cells declared than bytes follow: refused before allocating.
  assert.throws(
    () => unserialize(Uint8Array.from([...header, ...be(21, 0x7fffffff)])),
    /shared byte-code cells/,
  );
});

Deno.test("simplify leaves closures and environments typed, and edits write them back", () => {
  const closure = unserialize(fixture("objects/closure_captured.bin"));
  const frame = {
    type: "list",
    data: [int(1, 2), { type: "list", data: [closure, closure] }],
    attributes: {
      names: chr("a", "fns"),
      class: chr("data.frame"),
      "row.names": int(NA_INTEGER, -2),
    },
  } as RValue;
  const plain = simplify(unserialize(serialize(frame))) as { a: number[]; fns: RValue[] };
  assert.ok(isRValue(plain.fns[0]) && plain.fns[0].type === "closure");
  plain.a[0] = 5;
  const back = unserialize(serialize(plain));
  assert.ok(back.type === "list" && back.data[1]?.type === "list");
  const [f, g] = back.data[1].data;
  assert.ok(f?.type === "closure" && g?.type === "closure");
  // One environment, written once and referred to after, as R does.
  assert.equal(f.environment, g.environment);
  assert.deepStrictEqual(f, closure);
  assert.deepStrictEqual(back.data[0], int(5, 2));
  const list = simplify(unserialize(serialize({ f: closure, n: 1 }))) as Record<string, unknown>;
  list.n = 2;
  list.m = "new";
  const written = unserialize(serialize(list as never));
  assert.ok(written.type === "list");
  assert.deepStrictEqual(written.data[0], closure);
  const weak: RValue = { type: "weakref" };
  const twice = unserialize(serialize({ type: "list", data: [weak, weak] }));
  assert.ok(twice.type === "list");
  assert.equal(twice.data[0], twice.data[1]);
});

Deno.test("unserialize: a refhook's persistent references stay typed or go to the hook", () => {
  // serialize(list(e, ptr, e, c(1L, 2L), globalenv(), quote(k), quote(k)), NULL, refhook = …)
  // with the hook naming e "session-7" and the pointer c("ptr", "2").
  const bytes = fixture("objects/persistent_refhook.bin");
  const session = { type: "persistent", names: ["session-7"] };
  const expected = {
    type: "list",
    data: [
      session,
      { type: "persistent", names: ["ptr", "2"] },
      session,
      int(1, 2),
      { type: "environment", name: "global" },
      { type: "symbol", name: "k" },
      { type: "symbol", name: "k" },
    ],
  };
  const typed = unserialize(bytes);
  assert.deepStrictEqual(typed, expected);
  assert.deepStrictEqual(unserialize(fixture("objects/persistent_refhook.native.bin")), expected);
  // Written back as R wrote it, in each format and version.
  assert.deepStrictEqual(serialize(typed, { format: "xdr" }), bytes);
  for (const format of ["binary", "xdr", "ascii"] as const) {
    for (const version of [2, 3] as const) {
      assert.deepStrictEqual(unserialize(serialize(typed, { format, version })), expected);
    }
  }
  // With persistentReference, as R's unserialize(bytes, refhook = f): called at each one.
  const calls: (string | null)[][] = [];
  const environment = frameEnvironment();
  const pointer: RValue = { type: "externalptr", protected: R_NULL, tag: R_NULL };
  const restored = unserialize(bytes, {
    persistentReference: (names) => {
      calls.push(names);
      return names[0] === "session-7" ? environment : pointer;
    },
  });
  assert.deepStrictEqual(calls, [["session-7"], ["ptr", "2"], ["session-7"]]);
  assert.ok(restored.type === "list");
  assert.equal(restored.data[0], environment);
  assert.equal(restored.data[1], pointer);
  assert.equal(restored.data[2], environment);
  assert.deepStrictEqual(restored.data.slice(3), expected.data.slice(3));
  // persistentName, as R's serialize(x, NULL, refhook = f): asked at every occurrence.
  const asked: RValue[] = [];
  const written = serialize(restored, {
    format: "xdr",
    persistentName: (value) => {
      asked.push(value);
      return value === environment ? ["session-7"] : value === pointer ? ["ptr", "2"] : undefined;
    },
  });
  assert.deepStrictEqual(written, bytes);
  assert.deepStrictEqual(asked, [environment, pointer, environment]);
  assert.throws(
    () => unserialize(bytes, { persistentReference: () => "x" as unknown as RValue }),
    /persistentReference\(\["session-7"\]\) returned x; expected a typed R value/,
  );
  assert.throws(
    () => serialize(restored, { persistentName: () => [] }),
    /persistentName returned \[\] for a value of type "environment"; expected one or more/,
  );
  assert.throws(
    () => serialize(restored, { persistentName: () => [1] as unknown as string[] }),
    /persistent reference's names are \[1\]; expected an array of strings \(null for NA\)/,
  );
});

Deno.test("serialize: a persistent reference read without names is written back without", () => {
  // A PERSISTSXP of no strings: R's unserialize(bytes, refhook = f) reads it, calling f with
  // character(0); R's serialize() never writes one (its refhook must give a string).
  const bytes = Uint8Array.from([...xdrHeaderV2(), ...be32(19, 1, 247, 0, 0)]);
  const value = unserialize(bytes);
  assert.deepStrictEqual(value, { type: "list", data: [{ type: "persistent", names: [] }] });
  assert.deepStrictEqual(serialize(value, { format: "xdr", version: 2 }), bytes);
  const given: (string | null)[][] = [];
  unserialize(bytes, { persistentReference: (names) => (given.push(names), R_NULL) });
  assert.deepStrictEqual(given, [[]]);
});

Deno.test("unserialize: a persistent reference keeps NA and marked names as R wrote them", () => {
  // serialize(list(e, 1L), NULL, refhook = function(x) c(NA, latin1 "café", "b", "été"))
  const expected = {
    type: "list",
    data: [
      {
        type: "persistent",
        names: [null, "café", "b", "été"],
        encodings: ["UTF-8", "latin1", "UTF-8", "UTF-8"],
      },
      int(1),
    ],
  };
  for (const [name, options] of [["", { format: "xdr" }], [".native", {}]] as const) {
    const bytes = fixture(`objects/persistent_names${name}.bin`);
    const value = unserialize(bytes);
    assert.deepStrictEqual(value, expected, name);
    assert.deepStrictEqual(serialize(value, options), bytes, name);
    // The hook gets NA as null and the latin1 name as its text, as R's refhook gets them.
    const given: (string | null)[][] = [];
    unserialize(bytes, { persistentReference: (names) => (given.push(names), R_NULL) });
    assert.deepStrictEqual(given, [[null, "café", "b", "été"]]);
  }
  // persistentName's null is NA_character_; its strings are written unmarked-as-UTF-8.
  const environment = frameEnvironment();
  const written = unserialize(serialize(environment, { persistentName: () => [null, "été"] }));
  assert.deepStrictEqual(written, { type: "persistent", names: [null, "été"] });
});

Deno.test("unserialize: a persistent byte-code constant keeps the type R wrote before it", () => {
  // compiler::cmpfun(function() { <external pointer>; <environment> }), both claimed by the
  // refhook: the constant pool has each one's type (22, 4), then its PERSISTSXP.
  const bytes = fixture("objects/persistent_bytecode.bin");
  const closure = unserialize(bytes);
  assert.ok(closure.type === "closure" && closure.body.type === "bytecode");
  assert.deepStrictEqual(closure.body.constants.slice(1, 3), [
    { type: "persistent", names: ["ptr", "2"], claimedType: "externalptr" },
    { type: "persistent", names: ["session-7"], claimedType: "environment" },
  ]);
  assert.deepStrictEqual(serialize(closure, { format: "xdr" }), bytes);
  // A weak reference's code (23) in the same place, as R would write one, is kept too.
  const weak = bytes.slice();
  const at = 226; // the pointer's 22
  assert.deepStrictEqual([...weak.subarray(at, at + 8)], [0, 0, 0, 22, 0, 0, 0, 247]);
  weak[at + 3] = 23;
  const read = unserialize(weak);
  assert.ok(read.type === "closure" && read.body.type === "bytecode");
  assert.deepStrictEqual(read.body.constants[1], {
    type: "persistent",
    names: ["ptr", "2"],
    claimedType: "weakref",
  });
  assert.deepStrictEqual(serialize(read, { format: "xdr" }), weak);
  // With a persistentReference hook the hook's value stands there, untouched.
  const restored = unserialize(bytes, { persistentReference: () => R_NULL });
  assert.ok(restored.type === "closure" && restored.body.type === "bytecode");
  assert.deepStrictEqual(restored.body.constants.slice(1, 3), [R_NULL, R_NULL]);
});

Deno.test("unserialize: what the persistentReference hook throws reaches the caller", async () => {
  const bytes = fixture("objects/persistent_refhook.bin");
  // A RangeError, as a lookup by index throws: the hook's own, not blamed on the data.
  const unknown = new RangeError("no session named session-7");
  const persistentReference = () => {
    throw unknown;
  };
  assert.throws(() => unserialize(bytes, { persistentReference }), (error) => error === unknown);
  await assert.rejects(readRds(bytes, { persistentReference }), (error) => error === unknown);
  // Any other error too.
  const other = new Error("sessions are closed");
  assert.throws(
    () =>
      unserialize(bytes, {
        persistentReference: () => {
          throw other;
        },
      }),
    (error) => error === other,
  );
});

Deno.test("serialize: a persistent reference R refers back to is written back as a reference", () => {
  // What R's serialize(list(e, e), NULL, version = 2, refhook = h) writes when h names e "E"
  // the first time and then declines: R registered e with that PERSISTSXP and refers to it.
  const header = [0x58, 0x0a, 0, 0, 0, 2, 0, 4, 2, 2, 0, 2, 3, 0];
  const bytes = Uint8Array.from([
    ...header,
    ...be32(19, 2, 247, 0, 1, 0x40009, 1),
    0x45,
    ...be32(0x1ff),
  ]);
  const value = unserialize(bytes);
  assert.ok(value.type === "list" && value.data[0]?.type === "persistent");
  assert.equal(value.data[1], value.data[0]);
  assert.deepStrictEqual(serialize(value, { format: "xdr", version: 2 }), bytes);
  // The same from persistentName: what it named once is registered, as R's HashAdd does.
  const environment = frameEnvironment();
  let asked = 0;
  const written = serialize({ type: "list", data: [environment, environment] }, {
    format: "xdr",
    version: 2,
    persistentName: () => ++asked === 1 ? ["E"] : undefined,
  });
  assert.deepStrictEqual(written, bytes);
  assert.equal(asked, 2);
});

Deno.test("unserialize: attributes on pairlist and call cells after the first are kept", () => {
  // Written by hand (R code cannot reach such a cell) and read back by R to the same bytes.
  const note = { note: chr("kept") };
  const expected = {
    type: "list",
    data: [
      {
        type: "pairlist",
        data: [{ tag: "a", value: dbl(1) }, { tag: "b", value: dbl(2), attributes: note }],
      },
      {
        type: "language",
        data: [
          { value: { type: "symbol", name: "f" } },
          { value: { type: "symbol", name: "x" }, attributes: note },
          { value: dbl(3) },
        ],
      },
    ],
  };
  for (const name of ["pairlist_cell_attributes.bin", "pairlist_cell_attributes.native.bin"]) {
    const bytes = fixture(`objects/${name}`);
    const value = unserialize(bytes);
    assert.deepStrictEqual(value, expected, name);
    const format = name.includes("native") ? "binary" : "xdr";
    assert.deepStrictEqual(serialize(value, { format }), bytes, name);
  }
  // A cell's own class sets its object bit, as R's does; one that disagrees is kept.
  const classed = {
    type: "pairlist",
    data: [{ value: dbl(1) }, { value: dbl(2), attributes: { class: chr("tagged") } }, {
      value: dbl(3),
      object: true,
    }],
  } as RValue;
  const xdr = serialize(classed, { format: "xdr" });
  assert.deepStrictEqual(unserialize(xdr), classed);
  // Byte code writes such a cell as ATTRLISTSXP/ATTRLANGSXP; it comes back on that cell.
  const call = {
    type: "language",
    data: [
      { value: { type: "symbol", name: "g" } },
      { value: dbl(1), attributes: { srcref: int(1, 2) } },
      { value: dbl(2), cellType: "language", attributes: { srcref: int(3, 4) } },
    ],
  } as RValue;
  const closure = {
    type: "closure",
    formals: R_NULL,
    body: { type: "bytecode", code: int(12, 1), constants: [call] },
    environment: { type: "environment", name: "global" },
  } as RValue;
  for (const format of ["binary", "xdr", "ascii"] as const) {
    assert.deepStrictEqual(unserialize(serialize(closure, { format })), closure, format);
  }
});

Deno.test("unserialize: class and generic references are refused as R refuses them", () => {
  const header = [0x58, 0x0a, 0, 0, 0, 2, 0, 4, 2, 2, 0, 2, 3, 0];
  for (
    const [type, what, r] of [
      [246, "class reference \\(CLASSREFSXP, SEXP type 246\\)", "cannot read class references"],
      [
        245,
        "generic-function reference \\(GENERICREFSXP, SEXP type 245\\)",
        "cannot read generic function",
      ],
    ] as const
  ) {
    const bytes = Uint8Array.from([...header, ...be32(19, 1, type)]);
    assert.throws(() => unserialize(bytes), (error: unknown) => {
      assert.ok(error instanceof SerializationError);
      assert.match(error.message, new RegExp(`a ${what}, which R itself refuses to read`));
      assert.match(error.message, new RegExp(r));
      assert.equal(error.offset, header.length + 12); // just after the type
      return true;
    });
  }
});

Deno.test("unserialize: a byte-code call that refers back into itself is refused", () => {
  // What R code can make: one call object several times in a compiled body. Its cells are
  // shared (one JS object), and the function comes back as R's bytes (see the objects test).
  const shared = unserialize(fixture("objects/bytecode_shared_calls.bin"));
  assert.ok(shared.type === "closure" && shared.body.type === "bytecode");
  const body = shared.body.constants[0];
  assert.ok(body?.type === "language" && body.data.length === 4);
  const call = body.data[1]!.value;
  assert.equal(body.data[2]!.value, call);
  assert.ok(call.type === "language");
  assert.equal(call.data[1]!.value, body.data[3]!.value);
  const header = [0x58, 0x0a, 0, 0, 0, 2, 0, 4, 2, 2, 0, 2, 3, 0];
  const f = [1, 0x40009, 1]; // SYMSXP, CHARSXP "f" (the byte follows)
  // f(<the call from its second cell on>, 5): the second cell's value is a reference to that
  // very cell, whose chain (and the 5 after it) is still being read. R code cannot build it.
  const intoItself = [
    ...header,
    ...be32(21, 1, 13, 1, 12, 1, 6, 254, 0, ...f),
    0x66,
    ...be32(244, 0, 2, 254, 243, 0, 2, 254, 0, 14, 1),
    ...[0x40, 0x14, 0, 0, 0, 0, 0, 0],
    ...be32(0, 254),
  ];
  // f(a) whose tail is the call itself.
  const tailItself = [
    ...header,
    ...be32(21, 1, 13, 1, 12, 1, 244, 0, 6, 254, 0, ...f),
    0x66,
    ...be32(243, 0),
  ];
  for (const stream of [intoItself, tailItself]) {
    assert.throws(
      () => unserialize(Uint8Array.from(stream)),
      /byte-code cell #0 refers back into the call that holds it \(a cyclic call\)/,
    );
  }
});

Deno.test("readRds: gzip written in pieces is read whole, and only its first object", async () => {
  const { gzipSync } = await import("node:zlib");
  const value = { type: "list", data: [dbl(1.5), chr("x"), int(1, 2, 3)] } as RValue;
  const bytes = serialize(value, { format: "xdr" });
  // One stream in two gzip members, as gzcon() or gzfile(open = "ab") write it.
  const pieces = Uint8Array.from([
    ...gzipSync(bytes.subarray(0, 20)),
    ...gzipSync(bytes.subarray(20)),
  ]);
  assert.deepStrictEqual(await readRds(pieces), value);
  // Two saveRDS() files one after the other: R's readRDS() gives the first, and so does this.
  const second = serialize(chr("second") as RValue, { format: "xdr" });
  const files = Uint8Array.from([...gzipSync(bytes), ...gzipSync(second)]);
  assert.deepStrictEqual(await readRds(files), value);
  assert.deepStrictEqual(await readRds(Uint8Array.from([...bytes, ...second])), value);
  // unserialize() alone still refuses what follows the object.
  assert.throws(() => unserialize(Uint8Array.from([...bytes, ...second])), /bytes after the end/);
  // The bound holds for all members together: two of 600 kB each pass a 1 MB limit.
  const big = gzipSync(serialize({ type: "raw", data: new Uint8Array(600_000) }));
  assert.equal((await readRds(big, { maxDecompressedBytes: 1_000_000 })).type, "raw");
  await assert.rejects(
    () => readRds(Uint8Array.from([...big, ...big]), { maxDecompressedBytes: 1_000_000 }),
    /inflates past maxDecompressedBytes \(1000000\)/,
  );
});

Deno.test("serialize: strings past one byte a character grow the buffer as they come", () => {
  // The buffer is reserved for ASCII; each longer string reserves its own worst case.
  const data = [
    "a",
    "\u00e9".repeat(40_000),
    null,
    "\u4e2d".repeat(30_000),
    ...Array.from({ length: 5000 }, (_, i) => `s${i}`),
    "\u{1F600}".repeat(20_000),
  ];
  for (const format of ["binary", "xdr"] as const) {
    const value = unserialize(serialize({ type: "character", data }, { format }));
    assert.ok(value.type === "character");
    assert.deepStrictEqual(value.data, data, format);
  }
});

Deno.test("writeRds: saveRDS()'s bytes, gzip at R's level 6, read back by readRds", async () => {
  const values = fixtureFiles().map(({ xdr }) => unserialize(fixture(xdr)));
  values.push(toR({ x: Float64Array.from({ length: 50_000 }, (_, i) => i % 97), s: "\u00e9" }));
  for (const value of values) {
    const serialized = serialize(value, { format: "xdr" });
    const bytes = await writeRds(value);
    assert.deepStrictEqual([bytes[0], bytes[1], bytes[2]], [0x1f, 0x8b, 8]); // gzip, deflate
    assert.deepStrictEqual(new Uint8Array(gunzipSync(bytes)), serialized);
    assert.deepStrictEqual(await readRds(bytes), value);
    assert.deepStrictEqual(await writeRds(value, { compress: false }), serialized);
    const v2 = await writeRds(value, { version: 2, compress: false });
    assert.deepStrictEqual(v2, serialize(value, { format: "xdr", version: 2 }));
  }
  // Level 6 unless asked: a compressible value shrinks further at 9 and less at 1.
  const big = values.at(-1)!;
  const sizes = await Promise.all(
    [1, 6, 9].map(async (level) => (await writeRds(big, { compressionLevel: level })).length),
  );
  assert.equal((await writeRds(big)).length, sizes[1]);
  assert.ok(sizes[0]! > sizes[1]! && sizes[1]! >= sizes[2]!, `sizes at 1, 6, 9: ${sizes}`);
  for (const compressionLevel of [-1, 10, 2.5]) {
    await assert.rejects(() => writeRds(1, { compressionLevel }), RangeError);
  }
});

Deno.test("serialize: borrowBuffer gives the same bytes in one recycled buffer", () => {
  const values = fixtureFiles().map(({ xdr }) => unserialize(fixture(xdr)));
  values.push(toR(Float64Array.from({ length: 300_000 }, (_, i) => i / 7))); // past 1 MiB
  for (const value of values) {
    for (const format of ["binary", "xdr", "ascii"] as const) {
      const own = serialize(value, { format });
      const borrowed = serialize(value, { format, borrowBuffer: true });
      assert.deepStrictEqual(borrowed, own, format);
    }
  }
  // Each call without it has memory of its own; borrowing calls write over one buffer.
  const big = values.at(-1)!;
  assert.notEqual(serialize(big).buffer, serialize(big).buffer);
  const first = serialize(big, { format: "xdr", borrowBuffer: true });
  const copy = first.slice();
  const second = serialize(1, { borrowBuffer: true });
  assert.equal(second.buffer, first.buffer);
  assert.deepStrictEqual(first.subarray(0, second.length), second); // written over
  assert.deepStrictEqual(serialize(big, { format: "xdr", borrowBuffer: true }), copy);
});

Deno.test("serialize: byte code written again after an edit shares the cells it shares now", () => {
  const sd = unserialize(fixture("objects/stats_sd.bin"));
  assert.ok(sd.type === "closure" && sd.body.type === "bytecode");
  const body = sd.body;
  const written = serialize(sd);
  assert.deepStrictEqual(serialize(sd), written); // written twice, the same bytes
  // A call whose cells another constant reaches too: R defines them once and refers back.
  const call = body.constants.find((c) => c.type === "language" && c.data.length > 1);
  assert.ok(call?.type === "language");
  body.constants.push({ type: "language", data: call.data });
  const edited = serialize(sd);
  assert.notDeepStrictEqual(edited, written);
  assert.deepStrictEqual(edited, serialize(structuredClone(sd))); // as if never written
  assert.deepStrictEqual(serialize(unserialize(edited)), edited);
  // And undone: the cells are no longer shared.
  body.constants.pop();
  assert.deepStrictEqual(serialize(sd), written);
});
