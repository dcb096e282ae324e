/**
 * serial/ beside R's own `serialize()`/`unserialize()`, in one run: 10^6 doubles (8 MB) encoded
 * and decoded in native little-endian (`B\n`, what nanonext sends) and XDR (`X\n`, R's default),
 * plus a 10^5-string character vector, 10^5 one- and two-letter strings, a 10^4-row data.frame,
 * a 10^5-row data.frame of integer, double, character, logical and factor columns, and a `glm`
 * fit (closures, environments, byte code) (native only, as nanonext sends; doubles in XDR too).
 * Then a 50 MB `.rds` file (gzip, `saveRDS()`'s default): `readRds()` against `readRDS()`, and
 * `writeRds()` + write against `saveRDS()` (both gzip at zlib level 6). R times itself with the
 * same objects in one Rscript run; the ratio is rsock time / R time (below 1 = rsock faster).
 *
 * Encode is timed twice: with new memory for every result, as R's `serialize()` returns, and
 * with `borrowBuffer` (one recycled buffer). New memory costs a page fault for each 4 KiB page
 * first written while V8 has not yet collected the earlier results (it frees ArrayBuffers at a
 * later GC, and glibc hands the freed heap back to the system): on this machine ~12 µs a page,
 * so the 8 MB rows swing between ~2 and ~25 ms from run to run. R frees a result at its next
 * gc and glibc gives the same pages back.
 *
 * Both sides are timed in CPU time (user + system, the whole process) as well as wall time: on
 * a shared machine the wall time of either side swings several-fold with the neighbours' load,
 * while the CPU time is the work done. The table shows CPU milliseconds and both ratios.
 *
 * @module
 */

import process from "node:process";
import { readRds, type RValue, serialize, unserialize, writeRds } from "../serial/mod.ts";

const REPEATS = 15;
const R_BATCHES = 5;
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
# Per call: c(wall, cpu) in ms, each the median of ${R_BATCHES} batches. system.time() ticks in
# milliseconds, so a batch runs at least 0.2 s (and ${REPEATS} calls).
per_call <- function(t, n) c(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]]) / n * 1000
med <- function(f) {
  f(); n <- ${REPEATS}
  repeat {
    t <- system.time(for (i in seq_len(n)) f())
    if (t[["elapsed"]] >= 0.2) break
    n <- n * 2
  }
  runs <- replicate(${R_BATCHES}, per_call(system.time(for (i in seq_len(n)) f()), n))
  apply(runs, 1, median)
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
# A 50 MB .rds (gzip): a call takes seconds, so the median of ${FILE_REPEATS} single calls.
n <- 4.5e6
big <- data.frame(x = rnorm(n), id = sample.int(n), b = rnorm(n) > 0,
                  s = sample(c("alpha", "beta", "gamma", "delta"), n, TRUE), stringsAsFactors = FALSE)
rds <- file.path(commandArgs(TRUE)[1], "rds_50mb.rds")
once <- function(f) apply(replicate(${FILE_REPEATS}, per_call(system.time(f()), 1)), 1, median)
enc <- once(function() saveRDS(big, rds))
dec <- once(function() readRDS(rds))
cat("rds_50mb gzip", enc, dec, "\\n")
`;

/** Milliseconds per call: wall and CPU. */
interface Timing {
  wall: number;
  cpu: number;
}

function median(times: number[]): number {
  const sorted = times.toSorted((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * R's calibration runs `f` for at least 0.2 s before it times (`med` in `R_CODE`); rsock's
 * calls warm up as long. After a few calls V8 is still compiling and its young generation still
 * growing onto fresh pages (a glm fit's decode: ~0.8 ms per call for the first hundred calls,
 * 0.2 ms after), which R's settled figures do not include.
 */
const WARM_UP_MS = 200;

/** Medians per call over `REPEATS` batches, each long enough (≥ 10 ms) to time well. */
function time(fn: () => unknown): Timing {
  const warmUp = performance.now();
  do fn(); while (performance.now() - warmUp < WARM_UP_MS);
  let calls = 1;
  for (;;) {
    const start = performance.now();
    for (let i = 0; i < calls; i++) fn();
    if (performance.now() - start >= 10) break;
    calls *= 2;
  }
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const start = performance.now();
    const startCpu = cpuNow();
    for (let c = 0; c < calls; c++) fn();
    cpu.push((cpuNow() - startCpu) / calls);
    wall.push((performance.now() - start) / calls);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

/** Medians of `FILE_REPEATS` single calls of an async `fn` (each takes seconds). */
async function timeAsync(fn: () => Promise<unknown>): Promise<Timing> {
  await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < FILE_REPEATS; i++) {
    const start = performance.now();
    const startCpu = cpuNow();
    await fn();
    cpu.push(cpuNow() - startCpu);
    wall.push(performance.now() - start);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

function row(key: string, enc: Timing, rEnc: Timing, dec: Timing, rDec: Timing): string {
  const ms = (x: number) => x.toFixed(2).padStart(9);
  const ratio = (a: number, b: number) => (a / b).toFixed(2).padStart(6);
  return `${key.padEnd(20)} ${ms(enc.cpu)} ${ms(rEnc.cpu)} ${ratio(enc.cpu, rEnc.cpu)} | ` +
    `${ms(dec.cpu)} ${ms(rDec.cpu)} ${ratio(dec.cpu, rDec.cpu)} | ` +
    `${ratio(enc.wall, rEnc.wall)} ${ratio(dec.wall, rDec.wall)}`;
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
    const rTimes = new Map<string, [Timing, Timing]>();
    const borrowed: string[] = [];
    for (const line of new TextDecoder().decode(output.stdout).trim().split("\n")) {
      const [name, format, ...numbers] = line.trim().split(/\s+/);
      const [encWall, encCpu, decWall, decCpu] = numbers.map(Number) as [
        number,
        number,
        number,
        number,
      ];
      rTimes.set(`${name} ${format}`, [{ wall: encWall, cpu: encCpu }, {
        wall: decWall,
        cpu: decCpu,
      }]);
    }
    // deno-lint-ignore no-console
    console.log(
      "serial: CPU ms per call (user + system), medians: rsock of %d batches, R of %d " +
        "(ratio = rsock / R; the wall-time ratios last)",
      REPEATS,
      R_BATCHES,
    );
    // deno-lint-ignore no-console
    console.log(
      "%s",
      "case                  rsock enc  R enc  ratio | rsock dec  R dec  ratio | wall enc/dec",
    );
    for (const [key, [rEnc, rDec]] of rTimes) {
      const [name, format] = key.split(" ") as [string, "binary" | "xdr"];
      if (name === "rds_50mb") {
        const path = `${dir}/rds_50mb.rds`;
        const value = await readRds(await Deno.readFile(path));
        const dec = await timeAsync(async () => readRds(await Deno.readFile(path)));
        const out = `${dir}/rds_50mb.rsock.rds`;
        const enc = await timeAsync(async () => Deno.writeFile(out, await writeRds(value)));
        // deno-lint-ignore no-console
        console.log("%s", row(key, enc, rEnc, dec, rDec));
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
      console.log("%s", row(key, enc, rEnc, dec, rDec));
      const lent = time(() => serialize(value, { format, borrowBuffer: true }));
      borrowed.push(
        `${key.padEnd(20)} ${lent.cpu.toFixed(2).padStart(9)} ${rEnc.cpu.toFixed(2).padStart(9)} ` +
          `${(lent.cpu / rEnc.cpu).toFixed(2).padStart(6)}`,
      );
    }
    // deno-lint-ignore no-console
    console.log(
      "%s",
      "encode with { borrowBuffer: true } (one recycled buffer: no page faults on new memory)\n" +
        "case                  rsock enc  R enc  ratio\n" + borrowed.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await run();
