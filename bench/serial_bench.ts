/**
 * serial/ beside R's own `serialize()`/`unserialize()`, in one run: 10^6 doubles (8 MB) encoded
 * and decoded in native little-endian (`B\n`, what nanonext sends) and XDR (`X\n`, R's default),
 * plus a 10^5-string character vector, 10^5 one- and two-letter strings, a 10^4-row data.frame,
 * a 10^5-row data.frame of integer, double, character, logical and factor columns, and a `glm`
 * fit (closures, environments, byte code) (native only, as nanonext sends; doubles in XDR too).
 * Then a 50 MB `.rds` file (gzip, `saveRDS()`'s default): `readRds()` against `readRDS()`, and
 * serialize + gzip + write against `saveRDS()`. R times itself with the same objects in one
 * Rscript run; the ratio is rsock time / R time (below 1 = rsock faster).
 *
 * @module
 */

import { readRds, type RValue, serialize, unserialize } from "../serial/mod.ts";

const REPEATS = 15;
const FILE_REPEATS = 5;

const R_CODE = `
set.seed(1)
objs <- list(
  doubles = rnorm(1e6),
  strings = paste0("s", seq_len(1e5)),
  short_strings = sample(c(letters, paste0(letters, LETTERS)), 1e5, TRUE),
  data_frame = data.frame(x = seq_len(1e4) + 0.5, y = paste0("r", seq_len(1e4)), z = seq_len(1e4) %% 2 == 0),
  mixed_100k = data.frame(id = sample.int(1e5), x = rnorm(1e5),
                          s = sample(c("alpha", "beta", "gamma", "delta"), 1e5, TRUE),
                          b = rnorm(1e5) > 0, f = factor(sample(letters, 1e5, TRUE)),
                          stringsAsFactors = FALSE),
  glm_fit = glm(am ~ wt + hp, data = mtcars, family = binomial())
)
# system.time() ticks in milliseconds: time batches of at least 0.2 s, so small cases are not
# rounded to a tick; ${REPEATS} is the least number of calls.
med <- function(f) {
  f(); n <- ${REPEATS}
  repeat {
    t <- system.time(for (i in seq_len(n)) f())[["elapsed"]]
    if (t >= 0.2) return(t / n * 1000)
    n <- n * 2
  }
}
for (n in names(objs)) {
  x <- objs[[n]]
  for (xdr in c(FALSE, TRUE)) {
    b <- serialize(x, NULL, xdr = xdr)
    enc <- med(function() serialize(x, NULL, xdr = xdr))
    dec <- med(function() unserialize(b))
    cat(n, if (xdr) "xdr" else "binary", enc, dec, "\\n")
    if (!xdr || n == "doubles") writeBin(b, file.path(commandArgs(TRUE)[1], paste0(n, if (xdr) ".xdr" else ".bin")))
  }
}
# A 50 MB .rds (gzip): a few calls take seconds, so the median of ${FILE_REPEATS} single calls.
n <- 4.5e6
big <- data.frame(x = rnorm(n), id = sample.int(n), b = rnorm(n) > 0,
                  s = sample(c("alpha", "beta", "gamma", "delta"), n, TRUE), stringsAsFactors = FALSE)
rds <- file.path(commandArgs(TRUE)[1], "rds_50mb.rds")
once <- function(f) system.time(f())[["elapsed"]] * 1000
enc <- median(replicate(${FILE_REPEATS}, once(function() saveRDS(big, rds))))
dec <- median(replicate(${FILE_REPEATS}, once(function() readRDS(rds))))
cat("rds_50mb gzip", enc, dec, "\\n")
`;

function median(times: number[]): number {
  const sorted = times.toSorted((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Median per-call time of `REPEATS` batches, each long enough (≥ 10 ms) to time well. */
function time(fn: () => unknown): number {
  for (let i = 0; i < 3; i++) fn(); // warm up the JIT
  let calls = 1;
  for (;;) {
    const start = performance.now();
    for (let i = 0; i < calls; i++) fn();
    if (performance.now() - start >= 10) break;
    calls *= 2;
  }
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const start = performance.now();
    for (let c = 0; c < calls; c++) fn();
    times.push((performance.now() - start) / calls);
  }
  return median(times);
}

/** Median time of `FILE_REPEATS` single calls of an async `fn` (each takes 100s of ms). */
async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < FILE_REPEATS; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Runs the benchmark and prints a table of milliseconds and ratios. */
export async function run(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rsock_serial_bench_" });
  try {
    const output = await new Deno.Command("/usr/bin/Rscript", {
      args: ["--vanilla", "-e", R_CODE, dir],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!output.success) throw new Error("Rscript failed");
    const rTimes = new Map<string, [number, number]>();
    for (const line of new TextDecoder().decode(output.stdout).trim().split("\n")) {
      const [name, format, enc, dec] = line.trim().split(/\s+/);
      rTimes.set(`${name} ${format}`, [Number(enc), Number(dec)]);
    }
    // deno-lint-ignore no-console
    console.log(
      "serial: ms per call, rsock median of %d batches / R mean of a 0.2 s batch " +
        "(ratio = rsock / R)",
      REPEATS,
    );
    // deno-lint-ignore no-console
    console.log("%s", "case                  rsock enc  R enc  ratio | rsock dec  R dec  ratio");
    for (const [key, [rEnc, rDec]] of rTimes) {
      const [name, format] = key.split(" ") as [string, "binary" | "xdr"];
      const fmt = (x: number) => x.toFixed(2).padStart(9);
      if (name === "rds_50mb") {
        const path = `${dir}/rds_50mb.rds`;
        const value = await readRds(await Deno.readFile(path));
        const dec = await timeAsync(async () => readRds(await Deno.readFile(path)));
        const out = `${dir}/rds_50mb.rsock.rds`;
        const enc = await timeAsync(async () =>
          Deno.writeFile(out, await gzip(serialize(value, { format: "xdr" })))
        );
        // deno-lint-ignore no-console
        console.log(
          "%s",
          `${key.padEnd(20)} ${fmt(enc)} ${fmt(rEnc)} ${(enc / rEnc).toFixed(2).padStart(6)} | ` +
            `${fmt(dec)} ${fmt(rDec)} ${(dec / rDec).toFixed(2).padStart(6)}`,
        );
        continue;
      }
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(`${dir}/${name}.${format === "xdr" ? "xdr" : "bin"}`);
      } catch {
        continue;
      }
      const value: RValue = unserialize(bytes);
      const dec = time(() => unserialize(bytes));
      const enc = time(() => serialize(value, { format }));
      // deno-lint-ignore no-console
      console.log(
        "%s",
        `${key.padEnd(20)} ${fmt(enc)} ${fmt(rEnc)} ${(enc / rEnc).toFixed(2).padStart(6)} | ` +
          `${fmt(dec)} ${fmt(rDec)} ${(dec / rDec).toFixed(2).padStart(6)}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await run();
