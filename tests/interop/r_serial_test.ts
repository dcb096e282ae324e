/**
 * The codec against R 4.2 itself: R writes objects (XDR, native, version 2, ascii) that rsock
 * decodes, and rsock writes values that R reads back and compares with identical().
 * Two Rscript runs in all, since R takes ~0.3 s to start.
 */
import assert from "node:assert/strict";
import {
  isNA,
  NA_INTEGER,
  type RValue,
  SerializationError,
  serialize,
  type SerializeOptions,
  simplify,
  toR,
  unserialize,
} from "../../serial/mod.ts";
import { interopTest, withTimeout } from "../_peers.ts";
import { TestProcess } from "../_process.ts";

/** The objects, as R code; both R scripts source this. */
const CASES_R = `
cases <- list(
  int_seq = 1:10,
  int_rev = 10:1,
  dbl_special = c(1.5, NA, -Inf, NaN),
  int_na = NA_integer_,
  lgl_na = c(TRUE, NA, FALSE),
  chr_na_utf8 = c("a", NA, "\\u00e9"),
  chr_latin1 = iconv("caf\\u00e9", "UTF-8", "latin1"),
  deferred = as.character(c(1.5, 1e5, 123456, 1e-20, NA)),
  null = NULL,
  nested = list(a = 1L, b = list(c = "x", d = c(TRUE, FALSE)), list(2.5)),
  factor = factor(c("lo", "hi", "lo", NA)),
  data_frame = data.frame(x = 1:3, y = c("a", "b", "c")),
  matrix = matrix(c(1.5, 2, 3, 4), 2, dimnames = list(c("r1", "r2"), NULL)),
  named = c(a = 1, b = 2),
  raw = as.raw(c(0, 255, 16)),
  complex = c(1-2i, 3.5+0i),
  sorted = sort(c(3, 1, 2)),
  formula = y ~ x + 1,
  big = (0:999999) / 7,
  # 10^6 doubles R draws at test time (the 8 MB fixture this replaces held the same numbers)
  rnorm = local({ set.seed(1); rnorm(1e6) })
)
# Objects rsock refuses with a SerializationError (never a crash).
refused <- list(
  closure = function(x) x + 1,
  environment = new.env(),
  external_pointer = methods::new("externalptr")
)
`;

/** What rsock must decode each case to (via simplify, or a check on the typed value). */
const EXPECTED: Record<string, (value: RValue) => void> = {
  int_seq: (v) =>
    assert.deepStrictEqual(v, {
      type: "integer",
      data: Int32Array.from({ length: 10 }, (_, i) => i + 1),
    }),
  int_rev: (v) => assert.deepStrictEqual(simplify(v), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
  dbl_special: (v) => {
    assert.ok(v.type === "double");
    assert.deepStrictEqual(Array.from(v.data, isNA), [false, true, false, false]);
    assert.deepStrictEqual(simplify(v), [1.5, null, -Infinity, NaN]);
  },
  int_na: (v) => assert.deepStrictEqual(v, { type: "integer", data: new Int32Array([NA_INTEGER]) }),
  lgl_na: (v) => assert.deepStrictEqual(simplify(v), [true, null, false]),
  chr_na_utf8: (v) => assert.deepStrictEqual(v, { type: "character", data: ["a", null, "é"] }),
  chr_latin1: (v) =>
    assert.deepStrictEqual(v, { type: "character", data: ["café"], encodings: ["latin1"] }),
  deferred: (v) => assert.deepStrictEqual(simplify(v), ["1.5", "1e+05", "123456", "1e-20", null]),
  null: (v) => assert.deepStrictEqual(v, { type: "NULL" }),
  nested: (v) =>
    assert.deepStrictEqual(simplify(v), { a: 1, b: { c: "x", d: [true, false] }, 3: [2.5] }),
  factor: (v) => assert.deepStrictEqual(simplify(v), ["lo", "hi", "lo", null]),
  data_frame: (v) => {
    assert.deepStrictEqual(simplify(v), { x: [1, 2, 3], y: ["a", "b", "c"] });
    assert.deepStrictEqual(simplify(v, { dataFrame: "rows" }), [
      { x: 1, y: "a" },
      { x: 2, y: "b" },
      { x: 3, y: "c" },
    ]);
  },
  matrix: (v) => assert.deepStrictEqual(simplify(v), [[1.5, 3], [2, 4]]),
  named: (v) => assert.deepStrictEqual(simplify(v), { a: 1, b: 2 }),
  raw: (v) => assert.deepStrictEqual(simplify(v), new Uint8Array([0, 255, 16])),
  complex: (v) => assert.deepStrictEqual(simplify(v), [{ re: 1, im: -2 }, { re: 3.5, im: 0 }]),
  sorted: (v) => assert.deepStrictEqual(simplify(v), [1, 2, 3]),
  formula: (v) => assert.ok(v.type === "language" && v.data.length === 3),
  big: (v) => {
    assert.ok(v.type === "double" && v.data.length === 1_000_000);
    for (let i = 0; i < v.data.length; i += 9973) assert.equal(v.data[i], i / 7);
  },
  rnorm: (v) => {
    assert.ok(v.type === "double" && v.data.length === 1_000_000);
    assert.ok(Math.abs(v.data[0]! - -0.626453810742332) < 1e-14);
    assert.equal(v.data[999_999], 0.69375035060514145);
    let sum = 0;
    for (const x of v.data) sum += x;
    assert.ok(Math.abs(sum - 46.907759533364093) < 1e-9, `sum ${sum}`);
    assert.deepStrictEqual(unserialize(serialize(v, { format: "xdr" })), v);
  },
};

/** JS-built values R must find identical() to an R expression. */
const FROM_JS: [string, RValue | Parameters<typeof toR>[0], string][] = [
  ["seq", { type: "integer", data: Int32Array.from({ length: 10 }, (_, i) => i + 1) }, "1:10"],
  ["dbl", [1.5, null, -Infinity, NaN], "c(1.5, NA, -Inf, NaN)"],
  ["int_na", { type: "integer", data: new Int32Array([NA_INTEGER]) }, "NA_integer_"],
  ["lgl", [true, null, false], "c(TRUE, NA, FALSE)"],
  ["chr", ["a", null, "é"], 'c("a", NA, "\\u00e9")'],
  ["null", null, "NULL"],
  [
    "nested",
    { a: 1, b: { c: "x", d: [true, false] } },
    'list(a = 1, b = list(c = "x", d = c(TRUE, FALSE)))',
  ],
  ["unnamed", [1, "x", null], 'list(1, "x", NULL)'],
  ["scalar", 42, "42"],
  ["string", "hello", '"hello"'],
  [
    "factor",
    {
      type: "integer",
      data: new Int32Array([2, 1, 2]),
      attributes: {
        levels: { type: "character", data: ["hi", "lo"] },
        class: { type: "character", data: ["factor"] },
      },
    },
    'factor(c("lo", "hi", "lo"))',
  ],
  [
    "data_frame",
    {
      type: "list",
      data: [
        { type: "integer", data: new Int32Array([1, 2, 3]) },
        { type: "character", data: ["a", "b", "c"] },
      ],
      attributes: {
        names: { type: "character", data: ["x", "y"] },
        class: { type: "character", data: ["data.frame"] },
        "row.names": { type: "integer", data: new Int32Array([NA_INTEGER, -3]) },
      },
    },
    'data.frame(x = 1:3, y = c("a", "b", "c"))',
  ],
  [
    "matrix",
    {
      type: "double",
      data: new Float64Array([1.5, 2, 3, 4]),
      attributes: { dim: { type: "integer", data: new Int32Array([2, 2]) } },
    },
    "matrix(c(1.5, 2, 3, 4), 2)",
  ],
  [
    "named",
    {
      type: "double",
      data: new Float64Array([1, 2]),
      attributes: { names: { type: "character", data: ["a", "b"] } },
    },
    "c(a = 1, b = 2)",
  ],
  ["raw", new Uint8Array([0, 255, 16]), "as.raw(c(0, 255, 16))"],
  ["complex", { type: "complex", data: new Float64Array([1, -2, 3.5, 0]) }, "c(1-2i, 3.5+0i)"],
  [
    "latin1",
    { type: "character", data: ["café"], encodings: ["latin1"] },
    'iconv("caf\\u00e9", "UTF-8", "latin1")',
  ],
  ["big", Float64Array.from({ length: 1_000_000 }, (_, i) => i / 7), "(0:999999) / 7"],
];

const FORMATS: [string, SerializeOptions][] = [
  ["B3", {}],
  ["X3", { format: "xdr" }],
  ["X2", { format: "xdr", version: 2 }],
  ["A3", { format: "ascii" }],
];

async function runR(code: string): Promise<string> {
  await using r = new TestProcess("/usr/bin/Rscript", ["--vanilla", "-e", code]);
  const status = await r.finished();
  assert.equal(status.code, 0, r.stderr);
  return r.stdout;
}

interopTest(
  "R serialize() ↔ rsock serial, every format, both directions",
  ["Rscript"],
  async (t) => {
    await withTimeout(90_000, async () => {
      const dir = await Deno.makeTempDir({ prefix: "rsock_serial_" });
      try {
        await Deno.writeTextFile(`${dir}/cases.R`, CASES_R);
        await runR(`
        dir <- ${JSON.stringify(dir)}
        source(file.path(dir, "cases.R"), encoding = "UTF-8")
        for (n in names(cases)) {
          x <- cases[[n]]
          writeBin(serialize(x, NULL), file.path(dir, paste0(n, ".r.X3")))
          writeBin(serialize(x, NULL, xdr = FALSE), file.path(dir, paste0(n, ".r.B3")))
          writeBin(serialize(x, NULL, version = 2), file.path(dir, paste0(n, ".r.X2")))
          if (!n %in% c("big", "rnorm")) writeBin(serialize(x, NULL, ascii = TRUE), file.path(dir, paste0(n, ".r.A3")))
        }
        for (n in names(refused)) {
          writeBin(serialize(refused[[n]], NULL), file.path(dir, paste0(n, ".refused")))
        }
      `);
        const checks: string[] = [];
        await t.step("rsock decodes what R wrote", async () => {
          for (const [name, check] of Object.entries(EXPECTED)) {
            for (const [tag] of FORMATS) {
              if ((name === "big" || name === "rnorm") && tag === "A3") continue;
              const value = unserialize(await Deno.readFile(`${dir}/${name}.r.${tag}`));
              try {
                check(value);
              } catch (error) {
                throw new Error(`${name} (${tag}): ${String(error)}`, { cause: error });
              }
              // Decoded from R and written back in each format: R must see the same object.
              const [outTag, options] = FORMATS[checks.length % FORMATS.length]!;
              await Deno.writeFile(`${dir}/${name}.${tag}.js.${outTag}`, serialize(value, options));
              checks.push(`${name}.${tag}.js.${outTag}\tcases[["${name}"]]`);
            }
          }
        });
        await t.step(
          "closures, environments, external pointers are a SerializationError",
          async () => {
            for (const name of ["closure", "environment", "external_pointer"]) {
              const bytes = await Deno.readFile(`${dir}/${name}.refused`);
              assert.throws(() => unserialize(bytes), SerializationError, name);
            }
          },
        );
        for (const [name, value, expression] of FROM_JS) {
          for (const [tag, options] of FORMATS) {
            if (name === "big" && tag === "A3") continue;
            await Deno.writeFile(
              `${dir}/${name}.js.${tag}`,
              serialize(toR(value as never), options),
            );
            checks.push(`${name}.js.${tag}\t${expression}`);
          }
        }
        await Deno.writeTextFile(`${dir}/checks.tsv`, checks.join("\n") + "\n");
        await t.step("R reads what rsock wrote, identical() to the R expression", async () => {
          const out = await runR(`
          dir <- ${JSON.stringify(dir)}
          source(file.path(dir, "cases.R"), encoding = "UTF-8")
          checks <- read.delim(file.path(dir, "checks.tsv"), header = FALSE, quote = "",
                               stringsAsFactors = FALSE, encoding = "UTF-8")
          for (i in seq_len(nrow(checks))) {
            f <- checks[i, 1]
            got <- tryCatch(unserialize(readBin(file.path(dir, f), "raw", 1e8)),
                            error = function(e) conditionMessage(e))
            ok <- identical(got, eval(parse(text = checks[i, 2], encoding = "UTF-8")))
            cat(f, if (ok) "TRUE" else paste("FALSE", deparse(got)[1]), "\\n")
          }
        `);
          const lines = out.trim().split("\n");
          assert.equal(lines.length, checks.length, out);
          const failed = lines.filter((line) => !line.includes(" TRUE"));
          assert.deepStrictEqual(failed, [], `R disagreed on:\n${failed.join("\n")}`);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
