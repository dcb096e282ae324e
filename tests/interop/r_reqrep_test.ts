/**
 * R values through the NNG wire: R writes requests the way nanonext sends them (native `B\n`
 * serialization) and the way base R does (`X\n`), `nngcat` carries them to an rsock REP, and R
 * checks with `identical()` what rsock answered in serial mode. (nanonext itself is a CRAN
 * package that cannot be installed here; these are its bytes, sent by NNG's own tool.)
 */
import assert from "node:assert/strict";
import { reply, type RValue, serve, socket } from "../../reqrep/mod.ts";
import { freePort, interopTest, waitFor, withTimeout } from "../_peers.ts";
import { captured, rsock } from "../_process.ts";
import { main } from "../../cli.ts";

async function run(command: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
}

interopTest("R-serialized requests via nngcat: rsock REP answers values R reads back identical()", [
  "Rscript",
  "nngcat",
], async () => {
  await withTimeout(60_000, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rsock_r_reqrep_" });
    try {
      const made = await run("/usr/bin/Rscript", [
        "--vanilla",
        "-e",
        `setwd("${dir}")
         x <- list(n = 1:10, v = c(1.5, NA, -Inf), s = c("a", NA, "é"),
                   f = factor(c("lo", "hi", "lo")), flag = c(TRUE, NA))
         writeBin(serialize(x, NULL, xdr = FALSE), "native.bin")   # what nanonext sends
         writeBin(serialize(x, NULL), "xdr.bin")                   # what base R writes`,
      ]);
      assert.ok(made.success, new TextDecoder().decode(made.stderr));
      await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
      const url = rep.urls[0]!;
      for (const file of ["native.bin", "xdr.bin"]) {
        const serving = reply(rep, (x) => {
          const value = x as { n: number[]; v: (number | null)[]; s: (string | null)[] };
          return { echo: value.s, total: value.n.reduce((a, b) => a + b), first: value.v[0] };
        });
        const out = await run("/usr/bin/nngcat", [
          "--req",
          "--dial",
          url,
          "--file",
          `${dir}/${file}`,
          "--raw",
        ]);
        await serving;
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
        await Deno.writeFile(`${dir}/reply.bin`, out.stdout);
        assert.deepEqual(
          [...out.stdout.subarray(0, 2)],
          [0x42, 0x0a],
          "rsock answers B\\n, as nanonext",
        );
        const check = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `y <- unserialize(readBin("${dir}/reply.bin", "raw", 1e6))
           stopifnot(identical(y, list(echo = c("a", NA, "é"), total = 55, first = 1.5)))
           cat("identical\\n")`,
        ]);
        assert.equal(
          new TextDecoder().decode(check.stdout),
          "identical\n",
          new TextDecoder().decode(check.stderr),
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

/** The R objects of issue #12 that must come back identical() through `rsock rep`. */
const ROUND_TRIP_R = `
cases <- list(
  int_seq = 1:3,
  named = c(a = 1, b = 2),
  nested = list(a = list(b = 1:2)),
  factor = factor(c("lo", "hi", "lo", NA)),
  data_frame = data.frame(x = 1:3, y = c("a", "b", "c")),
  matrix = matrix(1:6, 2),
  matrix_dimnames = matrix(c(1.5, 2, 3, 4), 2, dimnames = list(c("r1", "r2"), c("a", "b"))),
  date = as.Date("2024-01-01") + 0:2,
  date_one = as.Date("2024-02-29"),
  posixct = as.POSIXct(c("2024-01-01 12:00:00", "2024-06-30 23:59:59"), tz = "UTC"),
  character0 = character(0),
  integer0 = integer(0),
  int42 = 42L,
  int_na = NA_integer_,
  complex_na = c(1+2i, NA, complex(real = 3, imaginary = NA)),
  special = c(1.5, NA, NaN, -Inf, -0),
  latin1 = iconv("caf\\u00e9", "UTF-8", "latin1"),
  empty_list = list(a = integer(0), b = list(), 3L),
  iris = iris,
  mtcars = mtcars,
  # What else nanonext users send (review of #12): none of these may change on the way.
  list_of_frames = list(a = data.frame(x = 1:2), b = data.frame(y = factor(c("p", "q")))),
  nested_null = list(a = NULL, b = list(c = NULL, d = 1L), e = list(NULL)),
  factor_unused_level = factor(c("a", NA, "b"), levels = c("a", "b", "c")),
  factor_na_level = addNA(factor(c("a", NA))),
  ordered = factor(c("lo", "hi", "mid"), levels = c("lo", "mid", "hi"), ordered = TRUE),
  named_matrix = structure(c(a = 1, b = 2, c = 3, d = 4), dim = c(2L, 2L)),
  matrix_chr = matrix(c("a", NA, "c", "d"), 2),
  matrix_lgl = matrix(c(TRUE, NA, FALSE, TRUE), 2),
  matrix_cplx = matrix(c(1+1i, 2, NA, 4i), 2),
  array_3d = array(1:24, c(2, 3, 4), dimnames = list(c("a", "b"), NULL, paste0("z", 1:4))),
  date_na = as.Date(c("2024-01-01", NA)),
  posixct_no_tzone = as.POSIXct(c(0, 86400), origin = "1970-01-01"),
  posixct_tzone = as.POSIXct(c(0, 86400), origin = "1970-01-01", tz = "America/New_York"),
  posixlt = as.POSIXlt(as.POSIXct(c(0, 86400.5), origin = "1970-01-01", tz = "UTC")),
  difftime = as.difftime(c(1, 2.5), units = "hours"),
  tibble_like = structure(list(x = 1:2, y = c("a", "b")),
    class = c("tbl_df", "tbl", "data.frame"), row.names = c(NA, -2L)),
  frame_list_column = local({ d <- data.frame(x = 1:2); d$l <- list(1:3, "a"); d }),
  frame_row_names = data.frame(x = 1:2, row.names = c("r1", "r2")),
  frame_zero_rows = data.frame(x = integer(0), y = character(0)),
  frame_zero_columns = data.frame(row.names = 1:3),
  frame_frame_column = local({ d <- data.frame(x = 1:2); d$inner <- data.frame(a = 3:4); d }),
  frame_repeated_names = data.frame(a = 1:2, a = c("x", "y"), check.names = FALSE),
  list_repeated_names = list(a = 1, a = "b"),
  encodings = c("\u65e5\u672c", iconv("na\u00efve", "UTF-8", "latin1"), NA),
  bytes = local({ x <- "\xff\xfe"; Encoding(x) <- "bytes"; x }),
  chr_na = NA_character_,
  nan_na_zero = c(NaN, NA, Inf, -Inf, -0),
  long_int = 1:1e5,
  comment_units = structure(c(1.5, 2), comment = "c", units = "m", class = "myunits"),
  table = table(c("a", "b", "a"))
)
frames <- list(iris = iris, mtcars = mtcars, small = data.frame(x = 1:3, f = factor(c("u", "v", "u"))))
`;

/** Runs `rsock rep URL --execute SRC --count N` in-process (the CLI, not the library). */
async function rsockRep(source: string, count: number) {
  const url = `tcp://127.0.0.1:${freePort()}`;
  const output = captured();
  const done = main(["rep", url, "--execute", source, "--count", String(count)], output);
  await waitFor("rsock rep to listen", () => output.err.includes("serving on"));
  return { url, done, output };
}

/** Sends the file to `url` with nngcat and returns the reply's bytes. */
async function nngcatRequest(url: string, file: string): Promise<Uint8Array> {
  const out = await run("/usr/bin/nngcat", ["--req", "--dial", url, "--file", file, "--raw"]);
  assert.ok(out.success, `nngcat: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

interopTest(
  "R values through rsock rep '(x) => x' come back identical(), native and XDR",
  ["Rscript", "nngcat"],
  async (t) => {
    await withTimeout(120_000, async () => {
      const dir = await Deno.makeTempDir({ prefix: "rsock_r_roundtrip_" });
      try {
        await Deno.writeTextFile(`${dir}/cases.R`, ROUND_TRIP_R);
        const made = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `setwd("${dir}"); source("cases.R", encoding = "UTF-8")
           for (n in names(cases)) {
             writeBin(serialize(cases[[n]], NULL, xdr = FALSE), paste0(n, ".B"))  # nanonext
             writeBin(serialize(cases[[n]], NULL), paste0(n, ".X"))                # base R
           }
           for (n in names(frames)) writeBin(serialize(frames[[n]], NULL, xdr = FALSE), paste0(n, ".frame"))
           cat(names(cases), "\\n"); cat(names(frames), "\\n")`,
        ]);
        assert.ok(made.success, new TextDecoder().decode(made.stderr));
        const [caseLine, frameLine] = new TextDecoder().decode(made.stdout).trim().split("\n");
        const names = caseLine!.trim().split(" ");
        const frames = frameLine!.trim().split(" ");
        assert.equal(names.length, 50);

        await t.step("(x) => x answers the same R object", async () => {
          const rep = await rsockRep("(x) => x", names.length * 2);
          for (const name of names) {
            for (const format of ["B", "X"]) {
              const answer = await nngcatRequest(rep.url, `${dir}/${name}.${format}`);
              await Deno.writeFile(`${dir}/${name}.${format}.reply`, answer);
            }
          }
          assert.equal(await rep.done, 0, rep.output.err);
        });

        await t.step("a function that adds a column keeps the data.frame", async () => {
          const rep = await rsockRep(
            "(df) => ({ ...df, row: Object.values(df)[0].map((_, i) => i + 1) })",
            frames.length,
          );
          for (const name of frames) {
            const answer = await nngcatRequest(rep.url, `${dir}/${name}.frame`);
            await Deno.writeFile(`${dir}/${name}.frame.reply`, answer);
          }
          assert.equal(await rep.done, 0, rep.output.err);
        });

        await t.step("R checks the replies", async () => {
          const check = await run("/usr/bin/Rscript", [
            "--vanilla",
            "-e",
            `setwd("${dir}"); source("cases.R", encoding = "UTF-8")
             got <- function(f) unserialize(readBin(f, "raw", file.size(f)))
             for (n in names(cases)) for (format in c("B", "X")) {
               y <- got(paste0(n, ".", format, ".reply"))
               cat(n, format, identical(y, cases[[n]]), "\\n")
             }
             for (n in names(frames)) {
               x <- frames[[n]]; y <- got(paste0(n, ".frame.reply"))
               ok <- identical(class(y), "data.frame") &&
                 identical(lapply(y[names(x)], class), lapply(x, class)) &&
                 identical(y[names(x)], x) && identical(rownames(y), rownames(x)) &&
                 identical(y$row, as.numeric(seq_len(nrow(x)))) &&
                 identical(names(y), c(names(x), "row"))
               cat(n, "frame", ok, "\\n")
             }`,
          ]);
          const out = new TextDecoder().decode(check.stdout);
          assert.ok(check.success, new TextDecoder().decode(check.stderr));
          const lines = out.trim().split("\n").map((line) => line.trim());
          assert.equal(lines.length, names.length * 2 + frames.length, out);
          const failed = lines.filter((line) => !line.endsWith("TRUE"));
          assert.deepStrictEqual(failed, [], `R found differences:\n${failed.join("\n")}`);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

/**
 * Requests `list(op, value)`: the library's `serve` edits `value` the ordinary JS way and R
 * checks what comes back against what the same edit means in R.
 */
const EDITS_R = `
tibble_like <- structure(list(x = 1:2, y = c("a", "b")),
  class = c("tbl_df", "tbl", "data.frame"), row.names = c(NA, -2L))
edits <- list(
  map_factor = list(op = "map", value = factor(c("a", NA, "b"), levels = c("a", "b", "c")),
    want = factor(c("a", NA, "b"), levels = c("a", "b", "c"))),
  map_date = list(op = "map", value = as.Date(c("2024-01-01", NA)),
    want = as.Date(c("2024-01-01", NA))),
  map_posixct = list(op = "map", value = as.POSIXct(c(0, 1), origin = "1970-01-01", tz = "UTC"),
    want = as.POSIXct(c(0, 1), origin = "1970-01-01", tz = "UTC")),
  map_ordered = list(op = "map", value = factor(c("lo", "hi"), c("lo", "hi"), ordered = TRUE),
    want = factor(c("lo", "hi"), c("lo", "hi"), ordered = TRUE)),
  push_factor = list(op = "push", value = factor(c("lo", "hi")), want = factor(c("lo", "hi", "hi"))),
  push_date = list(op = "push", value = as.Date("2024-01-01") + 0:1,
    want = as.Date("2024-01-01") + c(0, 1, 1)),
  push_integer = list(op = "push", value = 1:3, want = c(1:3, 3L)),
  set_list = list(op = "set", value = list(a = 1L, b = "x"), want = list(a = 5L, b = "x")),
  set_vector = list(op = "set", value = c(a = 1L, b = NA), want = c(a = 5L, b = NA)),
  add_column_tibble = list(op = "add_column", value = tibble_like,
    want = structure(list(x = 1:2, y = c("a", "b"), z = c(1, 1)),
      class = c("tbl_df", "tbl", "data.frame"), row.names = c(NA, -2L))),
  add_column_row_names = list(op = "add_column", value = data.frame(x = 1:2, row.names = c("r1", "r2")),
    want = data.frame(x = 1:2, z = c(1, 1), row.names = c("r1", "r2"))),
  add_column_zero_rows = list(op = "add_column", value = data.frame(x = integer(0)),
    want = data.frame(x = integer(0), z = numeric(0)))
)
`;

/** The JS edits, as a user would write them. */
const EDITS: Record<string, (x: never) => unknown> = {
  map: (x: unknown[]) => x.map((v) => v),
  push: (x: unknown[]) => [...x, x[x.length - 1]],
  set: (x: Record<string, unknown>) => ({ ...x, a: 5 }),
  add_column: (x: Record<string, unknown>) => ({ ...x, z: 1 }),
};

interopTest(
  "serve: values edited in JS come back to R as the same edit means in R",
  ["Rscript", "nngcat"],
  async () => {
    await withTimeout(60_000, async () => {
      const dir = await Deno.makeTempDir({ prefix: "rsock_r_edits_" });
      try {
        await Deno.writeTextFile(`${dir}/edits.R`, EDITS_R);
        const made = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `setwd("${dir}"); source("edits.R")
           for (n in names(edits)) {
             e <- edits[[n]]
             writeBin(serialize(list(op = e$op, value = e$value), NULL, xdr = FALSE), n)
           }
           cat(names(edits))`,
        ]);
        assert.ok(made.success, new TextDecoder().decode(made.stderr));
        const names = new TextDecoder().decode(made.stdout).trim().split(" ");
        await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
        const stop = new AbortController();
        const serving = serve(rep, (request) => {
          const { op, value } = request as { op: string; value: never };
          return { ...(request as object), value: EDITS[op]!(value) };
        }, { signal: stop.signal });
        try {
          for (const name of names) {
            const answer = await nngcatRequest(rep.urls[0]!, `${dir}/${name}`);
            await Deno.writeFile(`${dir}/${name}.reply`, answer);
          }
        } finally {
          stop.abort();
          await serving;
        }
        const check = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `setwd("${dir}"); source("edits.R")
           for (n in names(edits)) {
             f <- paste0(n, ".reply"); y <- unserialize(readBin(f, "raw", file.size(f)))$value
             cat(n, identical(y, edits[[n]]$want), "\\n")
             if (!identical(y, edits[[n]]$want)) str(y)
           }`,
        ]);
        const out = new TextDecoder().decode(check.stdout);
        assert.ok(check.success, new TextDecoder().decode(check.stderr));
        const lines = out.trim().split("\n").map((line) => line.trim());
        assert.equal(lines.filter((line) => line.endsWith("TRUE")).length, names.length, out);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

interopTest("rsock req --json: R receives the JSON as the list the help describes", [
  "Rscript",
  "nngcat",
], async () => {
  await withTimeout(30_000, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rsock_r_json_" });
    try {
      const url = `tcp://127.0.0.1:${freePort()}`;
      // nngcat plays the REP peer: it prints the request and answers with R's serialize(1).
      const answer = await run("/usr/bin/Rscript", [
        "--vanilla",
        "-e",
        `writeBin(serialize(1, NULL, xdr = FALSE), "${dir}/one.B")`,
      ]);
      assert.ok(answer.success);
      const peer = new Deno.Command("/usr/bin/nngcat", {
        args: ["--rep", "--listen", url, "--raw", "--count", "1", "--file", `${dir}/one.B`],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const json = '{"a": [1, 2, 3], "b": {"c": null, "d": "x"}, "e": [1, "x", null], ' +
        '"h": [true, null], "s": ["p", null], "n": 2.5, "z": []}';
      const output = captured();
      let code = 1;
      for (let tries = 0; tries < 50 && code !== 0; tries++) {
        // nngcat may not listen yet: try again shortly (the CLI reports a refused dial).
        code = await main(["req", url, "--json", json, "--recv-timeout", "2s"], output);
        if (code !== 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(code, 0, output.err);
      assert.equal(output.out.trim(), "1");
      const { stdout } = await peer.output();
      await Deno.writeFile(`${dir}/request.bin`, stdout);
      const check = await run("/usr/bin/Rscript", [
        "--vanilla",
        "-e",
        `x <- unserialize(readBin("${dir}/request.bin", "raw", 1e6))
         want <- list(a = c(1, 2, 3), b = list(c = NULL, d = "x"), e = list(1, "x", NULL),
                      h = c(TRUE, NA), s = c("p", NA), n = 2.5, z = list())
         cat(identical(x, want), "\\n"); str(x)`,
      ]);
      const out = new TextDecoder().decode(check.stdout);
      assert.ok(out.startsWith("TRUE"), out + new TextDecoder().decode(check.stderr));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

interopTest(
  "rsock rep: a reply built from scratch is the same R value whatever the request; one derived from it keeps its type",
  ["Rscript", "nngcat"],
  async () => {
    await withTimeout(90_000, async () => {
      const dir = await Deno.makeTempDir({ prefix: "rsock_r_like_" });
      try {
        const made = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `setwd("${dir}")
           requests <- list(doubles = c(1, 2, 3), int = 41L, chr = "a", half = 1.5)
           for (name in names(requests)) writeBin(serialize(requests[[name]], NULL), name)`,
        ]);
        assert.ok(made.success, new TextDecoder().decode(made.stderr));
        const ask = async (port: number, execute: string, names: string[], as: string) => {
          const url = `tcp://127.0.0.1:${port}`;
          await using rep = rsock([`--allow-net=127.0.0.1:${port}`], [
            "rep",
            url,
            "-e",
            execute,
            "--count",
            String(names.length),
          ]);
          await rep.waitForOutput(/serving on/);
          for (const name of names) {
            const out = await run("/usr/bin/nngcat", [
              "--req",
              "--dial",
              url,
              "--file",
              `${dir}/${name}`,
              "--raw",
            ]);
            assert.ok(out.success, new TextDecoder().decode(out.stderr));
            await Deno.writeFile(`${dir}/${name}.${as}`, out.stdout);
          }
          assert.equal((await rep.finished()).code, 0, rep.stderr);
        };
        // Built from scratch: examples/nng_compute.ts promises list(...), whatever was asked.
        await ask(
          freePort(),
          "(x) => ({ slope: 1, intercept: 2 })",
          ["doubles", "int", "chr"],
          "scratch",
        );
        // Derived from the request (a scalar for a scalar): the request's R type stays.
        await ask(freePort(), "(x) => x + 1", ["int", "half"], "derived");
        const check = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `setwd("${dir}")
           got <- function(name) unserialize(readBin(name, "raw", 1e6))
           for (name in c("doubles.scratch", "int.scratch", "chr.scratch")) {
             if (!identical(got(name), list(slope = 1, intercept = 2))) {
               cat(name, ":", deparse(got(name)), "\\n"); quit(status = 1)
             }
           }
           stopifnot(identical(got("int.derived"), 42L))
           stopifnot(identical(got("half.derived"), 2.5))
           cat("identical\\n")`,
        ]);
        assert.equal(
          new TextDecoder().decode(check.stdout),
          "identical\n",
          new TextDecoder().decode(check.stdout) + new TextDecoder().decode(check.stderr),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

interopTest(
  "rsock req prints the message of an R error a reply carries, and exits 1",
  ["Rscript", "nngcat"],
  async () => {
    await withTimeout(60_000, async () => {
      const dir = await Deno.makeTempDir({ prefix: "rsock_r_error_" });
      try {
        const made = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `setwd("${dir}")
           writeBin(serialize(tryCatch(stop("no such column: z"), error = identity), NULL), "condition")
           writeBin(serialize(try(stop("bad input"), silent = TRUE), NULL), "try")`,
        ]);
        assert.ok(made.success, new TextDecoder().decode(made.stderr));
        for (
          const [file, message] of [
            ["condition", /the server answered an R error: no such column: z$/m],
            [
              "try",
              /the server answered an R error: Error in try\(stop\("bad input"\).*bad input$/m,
            ],
          ] as const
        ) {
          const port = freePort();
          const url = `tcp://127.0.0.1:${port}`;
          // nngcat dials in the background (--async) until rsock req listens.
          const peer = new Deno.Command("/usr/bin/nngcat", {
            args: [
              "--rep",
              "--dial",
              url,
              "--async",
              "--raw",
              "--count",
              "1",
              "--file",
              `${dir}/${file}`,
            ],
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          const output = captured();
          const code = await main(["req", "--listen", url, "--data", "x"], output);
          await peer.output();
          assert.equal(code, 1, output.out);
          assert.match(output.err, message);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

interopTest(
  "serial refhooks: R's persistent reference is resolved by the REP, whose reply R reads with its refhook",
  ["Rscript", "nngcat"],
  async () => {
    await withTimeout(60_000, async () => {
      const dir = await Deno.makeTempDir({ prefix: "rsock_r_refhook_" });
      try {
        // R names its environment through serialize()'s refhook, as nanonext's serial_config
        // hooks do: only "session-7" travels, never the environment.
        const made = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `setwd("${dir}")
           e <- new.env(); assign("secret", 42, envir = e)
           name <- function(x) if (identical(x, e)) "session-7" else NULL
           writeBin(serialize(list(session = e, n = 1:3), NULL, xdr = FALSE, refhook = name),
                    "request.bin")`,
        ]);
        assert.ok(made.success, new TextDecoder().decode(made.stderr));
        const live: RValue = {
          type: "environment",
          name: "frame",
          locked: false,
          enclosure: { type: "environment", name: "global" },
          frame: { type: "NULL" },
          hashTable: { type: "NULL" },
        };
        const asked: (string | null)[][] = [];
        await using rep = await socket("rep", {
          listen: "tcp://127.0.0.1:0",
          serial: {
            unserialize: {
              persistentReference: (names) => {
                asked.push(names);
                return live;
              },
            },
            serialize: { persistentName: (value) => value === live ? ["session-7"] : undefined },
          },
        });
        let seen: unknown;
        const serving = reply(rep, (x) => {
          const { session, n } = x as { session: unknown; n: number[] };
          seen = session;
          return { session, total: n.reduce((a, b) => a + b) };
        });
        await Deno.writeFile(
          `${dir}/reply.bin`,
          await nngcatRequest(rep.urls[0]!, `${dir}/request.bin`),
        );
        await serving;
        assert.deepEqual(asked, [["session-7"]]);
        assert.equal(seen, live, "the executor got what persistentReference returned");
        const check = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `bytes <- readBin("${dir}/reply.bin", "raw", 1e6)
           sessions <- list("session-7" = new.env())
           calls <- 0
           y <- unserialize(bytes, refhook = function(names) {
             calls <<- calls + 1
             sessions[[names]]
           })
           stopifnot(calls == 1, identical(y$session, sessions[["session-7"]]), identical(y$total, 6))
           # Without a refhook R cannot read it: the environment went out as a reference.
           failed <- tryCatch({ unserialize(bytes); FALSE }, error = function(e) TRUE)
           stopifnot(failed)
           cat("resolved\\n")`,
        ]);
        assert.equal(
          new TextDecoder().decode(check.stdout),
          "resolved\n",
          new TextDecoder().decode(check.stderr),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
