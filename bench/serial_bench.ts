/**
 * serial/ beside R's own `serialize()`/`unserialize()`: 10^6 doubles (8 MB) encoded and decoded
 * in native little-endian (`B\n`, what nanonext sends) and XDR (`X\n`, R's default), plus a
 * 10^5-string character vector, 10^5 one- and two-letter strings, a 10^4-row data.frame, a
 * 10^5-row data.frame of integer, double, character, logical and factor columns, and a `glm` fit
 * (closures, environments, byte code) (native only, as nanonext sends; doubles in XDR too). Then
 * a 50 MB `.rds` file (gzip, `saveRDS()`'s default): `readRds(path)` against `readRDS(path)`, and
 * `writeRds()` + write against `saveRDS()` (both gzip at zlib level 6). The ratio is rsock time /
 * R time (below 1 = rsock faster).
 *
 * Each case is timed in a fresh process on each side (an Rscript, a Deno), in `TRIALS` rounds
 * with the two sides interleaved: one case's garbage changes the next one's figures in a shared
 * process. Both sides of a round run on the same vCPU (`taskset`), the rounds going round the
 * vCPUs, and a case's ratio is the median of its rounds' ratios: on this VM one vCPU at a time
 * runs cache-missing code (a walk over many small objects, as a glm fit's is) up to 1.8× slower
 * for hours, while R's calls there are 5% slower, so only a ratio within one vCPU compares the
 * codecs.
 *
 * Both sides run with glibc's default heap thresholds, as a fresh process has them: results
 * over 128 KiB are mapped anew, and the heap top is given back to the system past 128 KiB free
 * (both thresholds rise once a large mapped block is freed). A process's allocator history then
 * decides whether a case's results are new memory, a page fault for each 4 KiB page (~12 µs on
 * this machine): V8 frees dead ArrayBuffers in batches at a later GC and glibc gives them back.
 * R's encode of the doubles pays 2,081 faults a call in every process, rsock's in some. The
 * page faults per call of both sides are printed. `BENCH_MALLOC=no-trim` runs both sides with
 * results up to 32 MiB from the heap and the heap never trimmed (`NO_TRIM`): no case faults
 * then, and each side pays for reusing memory instead (zeroing it, in JS).
 *
 * Encode is also timed with `borrowBuffer` (one recycled buffer, no new memory per call).
 *
 * `BENCH_CASES=glm_fit,doubles deno task bench serial` times only the cases named;
 * `BENCH_VERBOSE=1` prints each round's figures to stderr.
 *
 * Both sides are timed in CPU time (user + system, the whole process) as well as wall time: on
 * a shared machine the wall time of either side swings several-fold with the neighbours' load,
 * while the CPU time is the work done.
 *
 * @module
 */

import process from "node:process";
import { readRds, type RValue, serialize, unserialize, writeRds } from "../serial/mod.ts";

/** Rounds: each case runs in a fresh process of each side once per round. */
const TRIALS = 4;

/** glibc's heap thresholds for `BENCH_MALLOC=no-trim`: the mmap threshold at its maximum. */
const NO_TRIM = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296";

/** The environment both sides' processes run with. */
function childEnvironment(): Record<string, string> {
  return Deno.env.get("BENCH_MALLOC") === "no-trim" ? { GLIBC_TUNABLES: NO_TRIM } : {};
}

/** The vCPUs this process may run on, for pinning both sides of a round to one (`taskset`). */
async function vcpus(): Promise<number[] | undefined> {
  try {
    const output = await new Deno.Command("taskset", { args: ["-pc", String(Deno.pid)] }).output();
    // "pid 123's current affinity list: 0,1" or "0-3"
    const list = new TextDecoder().decode(output.stdout).split(":").at(-1)?.trim() ?? "";
    const cpus = list.split(",").flatMap((part) => {
      const [from, to] = part.split("-").map(Number) as [number, number | undefined];
      return Array.from({ length: (to ?? from) - from + 1 }, (_, i) => from + i);
    });
    return output.success && cpus.every(Number.isInteger) && cpus.length > 0 ? cpus : undefined;
  } catch {
    return undefined; // no taskset: the rounds run where the scheduler puts them
  }
}

/** Runs `command args…` as both sides' timing processes run: on `cpu` when one is given. */
function runPinned(
  cpu: number | undefined,
  command: string,
  args: string[],
): Promise<Deno.CommandOutput> {
  const [program, programArgs] = cpu === undefined
    ? [command, args]
    : ["taskset", ["-c", String(cpu), command, ...args]];
  return new Deno.Command(program, {
    args: programArgs,
    env: childEnvironment(),
    stdout: "piped",
    stderr: "inherit",
  }).output();
}
/** Timed batches per process (each ≥ 10 ms for rsock, ≥ 0.2 s for R's `system.time()`). */
const REPEATS = 15;
const R_BATCHES = 5;
/**
 * Both sides call `f` for this long before they calibrate and time it. A fresh process is still
 * compiling (V8) and growing its heaps onto new pages (both): a glm fit's decode takes ~0.8 ms
 * per call for its first hundred calls and 0.2 ms after, and after 0.2 s the 10^5-string encode
 * still faulted on ~680 new pages a call in some processes, none after 1 s.
 */
const WARM_UP_MS = 1000;

/** Single calls per process for the 50 MB file (a call takes seconds). */
const FILE_REPEATS = 3;

/** Writes every object, as R serializes it, into the directory given. */
const R_WRITE = `
set.seed(1)
dir <- commandArgs(TRUE)[1]
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
for (n in names(objs)) {
  writeBin(serialize(objs[[n]], NULL, xdr = FALSE), file.path(dir, paste0(n, ".bin")))
  if (n == "doubles") writeBin(serialize(objs[[n]], NULL), file.path(dir, paste0(n, ".xdr")))
}
n <- 4.5e6
big <- data.frame(x = rnorm(n), id = sample.int(n), b = rnorm(n) > 0,
                  s = sample(c("alpha", "beta", "gamma", "delta"), n, TRUE), stringsAsFactors = FALSE)
saveRDS(big, file.path(dir, "rds_50mb.rds"))
`;

/**
 * Times one case in this R process. Prints, for encode then decode: wall ms, CPU ms and minor
 * page faults, each per call.
 */
const R_TIME = `
args <- commandArgs(TRUE)
dir <- args[1]; name <- args[2]; format <- args[3]
faults <- function() as.numeric(strsplit(sub(".*\\\\) ", "", readLines("/proc/self/stat")), " ")[[1]][8])
per_call <- function(t, f, n) c(t[["elapsed"]] / n * 1000, (t[["user.self"]] + t[["sys.self"]]) / n * 1000, f / n)
# system.time() ticks in milliseconds, so a batch runs at least 0.2 s (and ${REPEATS} calls).
med <- function(f) {
  warm <- proc.time()[["elapsed"]]
  repeat { f(); if (proc.time()[["elapsed"]] - warm >= ${WARM_UP_MS / 1000}) break }
  n <- ${REPEATS}
  repeat {
    t <- system.time(for (i in seq_len(n)) f())
    if (t[["elapsed"]] >= 0.2) break
    n <- n * 2
  }
  runs <- replicate(${R_BATCHES}, {
    f0 <- faults()
    t <- system.time(for (i in seq_len(n)) f())
    per_call(t, faults() - f0, n)
  })
  apply(runs, 1, median)
}
once <- function(f) {
  f()
  runs <- replicate(${FILE_REPEATS}, {
    f0 <- faults()
    t <- system.time(f())
    per_call(t, faults() - f0, 1)
  })
  apply(runs, 1, median)
}
if (format == "gzip") {
  rds <- file.path(dir, "rds_50mb.rds")
  x <- readRDS(rds)
  out <- file.path(dir, "rds_50mb.r.rds")
  enc <- once(function() saveRDS(x, out))
  dec <- once(function() readRDS(rds))
} else {
  x <- unserialize(readBin(file.path(dir, paste0(name, ".", if (format == "xdr") "xdr" else "bin")), "raw", 1e9))
  xdr <- format == "xdr"
  b <- serialize(x, NULL, xdr = xdr)
  enc <- med(function() serialize(x, NULL, xdr = xdr))
  dec <- med(function() unserialize(b))
}
cat(enc, dec, "\\n")
`;

/** Per call: wall and CPU milliseconds, minor page faults. */
interface Timing {
  wall: number;
  cpu: number;
  faults: number;
}

/** One process's figures for one case. */
interface CaseTiming {
  encode: Timing;
  decode: Timing;
  borrowed?: Timing;
}

const CASES: [name: string, format: "binary" | "xdr" | "gzip"][] = [
  ["doubles", "binary"],
  ["doubles", "xdr"],
  ["strings", "binary"],
  ["short_strings", "binary"],
  ["data_frame", "binary"],
  ["mixed_100k", "binary"],
  ["glm_fit", "binary"],
  ["rds_50mb", "gzip"],
];

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function medianTiming(timings: Timing[]): Timing {
  return {
    wall: median(timings.map((t) => t.wall)),
    cpu: median(timings.map((t) => t.cpu)),
    faults: median(timings.map((t) => t.faults)),
  };
}

function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Minor page faults of this process so far (getrusage's `ru_minflt`). */
function faultsNow(): number {
  return process.resourceUsage().minorPageFault;
}

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
  const runs: Timing[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const startFaults = faultsNow();
    const start = performance.now();
    const startCpu = cpuNow();
    for (let c = 0; c < calls; c++) fn();
    const cpu = (cpuNow() - startCpu) / calls;
    const wall = (performance.now() - start) / calls;
    runs.push({ wall, cpu, faults: (faultsNow() - startFaults) / calls });
  }
  return medianTiming(runs);
}

/** Medians of `FILE_REPEATS` single calls of an async `fn`, after one untimed call. */
async function timeAsync(fn: () => Promise<unknown>): Promise<Timing> {
  await fn();
  const runs: Timing[] = [];
  for (let i = 0; i < FILE_REPEATS; i++) {
    const startFaults = faultsNow();
    const start = performance.now();
    const startCpu = cpuNow();
    await fn();
    const cpu = cpuNow() - startCpu;
    runs.push({ wall: performance.now() - start, cpu, faults: faultsNow() - startFaults });
  }
  return medianTiming(runs);
}

/** Times one case in this process (the child's side of `run`). */
async function timeCase(dir: string, name: string, format: string): Promise<CaseTiming> {
  if (format === "gzip") {
    const path = `${dir}/${name}.rds`;
    const value = await readRds(path);
    const decode = await timeAsync(() => readRds(path));
    const out = `${dir}/${name}.rsock.rds`;
    const encode = await timeAsync(async () => Deno.writeFile(out, await writeRds(value)));
    return { encode, decode };
  }
  const bytes = await Deno.readFile(`${dir}/${name}.${format === "xdr" ? "xdr" : "bin"}`);
  const serialFormat = format === "xdr" ? "xdr" : "binary";
  const value: RValue = unserialize(bytes);
  const decode = time(() => unserialize(bytes));
  const encode = time(() => serialize(value, { format: serialFormat }));
  const borrowed = time(() => serialize(value, { format: serialFormat, borrowBuffer: true }));
  return { encode, decode, borrowed };
}

async function rTiming(
  dir: string,
  name: string,
  format: string,
  cpu: number | undefined,
): Promise<CaseTiming> {
  const output = await runPinned(cpu, "/usr/bin/Rscript", [
    "--vanilla",
    "-e",
    R_TIME,
    dir,
    name,
    format,
  ]);
  if (!output.success) throw new Error(`Rscript failed timing ${name} ${format}`);
  const numbers = new TextDecoder().decode(output.stdout).trim().split(/\s+/).map(Number);
  if (numbers.length !== 6 || numbers.some((x) => !Number.isFinite(x))) {
    throw new Error(`Rscript printed ${numbers.length} figures for ${name} ${format}, expected 6`);
  }
  const [encWall, encCpu, encFaults, decWall, decCpu, decFaults] = numbers as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return {
    encode: { wall: encWall, cpu: encCpu, faults: encFaults },
    decode: { wall: decWall, cpu: decCpu, faults: decFaults },
  };
}

async function rsockTiming(
  dir: string,
  name: string,
  format: string,
  cpu: number | undefined,
): Promise<CaseTiming> {
  const output = await runPinned(cpu, Deno.execPath(), [
    "run",
    "--no-prompt",
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    "--allow-sys",
    "--allow-env",
    new URL(import.meta.url).pathname,
    "--case",
    dir,
    name,
    format,
  ]);
  if (!output.success) throw new Error(`the rsock process failed timing ${name} ${format}`);
  return JSON.parse(new TextDecoder().decode(output.stdout)) as CaseTiming;
}

const ms = (x: number) => x.toFixed(2).padStart(9);
const ratio = (x: number) => x.toFixed(2).padStart(5);
const range = (values: number[]) => {
  const sorted = values.toSorted((a, b) => a - b);
  return `${sorted[0]!.toFixed(2)}–${sorted.at(-1)!.toFixed(2)}`.padEnd(10);
};
const faults = (x: number) => x.toFixed(0).padStart(5);

/** Runs the benchmark and prints a table of milliseconds and ratios. */
export async function run(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rsock_serial_bench_" });
  try {
    const written = await new Deno.Command("/usr/bin/Rscript", {
      args: ["--vanilla", "-e", R_WRITE, dir],
      stderr: "inherit",
    }).output();
    if (!written.success) throw new Error("Rscript failed writing the objects");
    const only = Deno.env.get("BENCH_CASES")?.split(",");
    const cases = CASES.filter(([name]) => only === undefined || only.includes(name));
    const cpus = await vcpus();
    const ours = new Map<string, CaseTiming[]>();
    const theirs = new Map<string, CaseTiming[]>();
    for (let trial = 0; trial < TRIALS; trial++) {
      const cpu = cpus?.[trial % cpus.length];
      for (const [name, format] of cases) {
        const key = `${name} ${format}`;
        // Which side goes first alternates, so drift in the machine's load hits both.
        const sides = [
          async () =>
            ours.set(key, [...ours.get(key) ?? [], await rsockTiming(dir, name, format, cpu)]),
          async () =>
            theirs.set(key, [...theirs.get(key) ?? [], await rTiming(dir, name, format, cpu)]),
        ];
        if (trial % 2 === 1) sides.reverse();
        for (const side of sides) await side();
        if (Deno.env.get("BENCH_VERBOSE") !== undefined) {
          const [a, b] = [ours.get(key)!.at(-1)!, theirs.get(key)!.at(-1)!];
          const show = (t: Timing | undefined) =>
            t === undefined ? "-" : `${t.cpu.toFixed(3)} ms ${t.faults.toFixed(0)} faults`;
          // deno-lint-ignore no-console
          console.error(
            `round ${trial} vCPU ${cpu ?? "-"} ${key}: encode ${show(a.encode)} / R ${
              show(b.encode)
            }; decode ${show(a.decode)} / R ${show(b.decode)}; borrowed ${show(a.borrowed)}`,
          );
        }
      }
    }
    // deno-lint-ignore no-console
    console.log(
      "serial: CPU ms per call (user + system), median of %d rounds, each case in a fresh process " +
        "of each side per round, both on vCPU %s in turn (ratio = median of the rounds' " +
        "rsock / R, with their range; then minor page faults per call, rsock / R; the wall-time " +
        "ratios last); glibc heap thresholds: %s",
      TRIALS,
      cpus?.join(", ") ?? "(unpinned: no taskset)",
      childEnvironment().GLIBC_TUNABLES ?? "glibc's defaults",
    );
    // deno-lint-ignore no-console
    console.log(
      "%s",
      "case                 rsock enc     R enc ratio range      | rsock dec     R dec ratio " +
        "range      | faults enc  dec      | wall enc  dec",
    );
    const borrowed: string[] = [];
    for (const [name, format] of cases) {
      const key = `${name} ${format}`;
      const a = ours.get(key)!;
      const b = theirs.get(key)!;
      const enc = medianTiming(a.map((t) => t.encode));
      const dec = medianTiming(a.map((t) => t.decode));
      const rEnc = medianTiming(b.map((t) => t.encode));
      const rDec = medianTiming(b.map((t) => t.decode));
      // Each round's ratio compares the two sides on one vCPU.
      const rounds = (side: "encode" | "decode" | "borrowed", measure: "cpu" | "wall" = "cpu") =>
        a.map((t, i) => t[side]![measure] / b[i]![side === "borrowed" ? "encode" : side][measure]);
      // deno-lint-ignore no-console
      console.log(
        "%s",
        `${key.padEnd(20)} ${ms(enc.cpu)} ${ms(rEnc.cpu)} ${ratio(median(rounds("encode")))} ` +
          `${range(rounds("encode"))} | ${ms(dec.cpu)} ${ms(rDec.cpu)} ${
            ratio(median(rounds("decode")))
          } ` +
          `${range(rounds("decode"))} | ${faults(enc.faults)}/${faults(rEnc.faults)} ` +
          `${faults(dec.faults)}/${faults(rDec.faults)} | ${
            ratio(median(rounds("encode", "wall")))
          } ${ratio(median(rounds("decode", "wall")))}`,
      );
      if (a.every((t) => t.borrowed !== undefined)) {
        const lent = medianTiming(a.map((t) => t.borrowed!));
        borrowed.push(
          `${key.padEnd(20)} ${ms(lent.cpu)} ${ms(rEnc.cpu)} ${ratio(median(rounds("borrowed")))} ${
            range(rounds("borrowed"))
          } ${faults(lent.faults)}`,
        );
      }
    }
    // deno-lint-ignore no-console
    console.log(
      "%s",
      "encode with { borrowBuffer: true } (one recycled buffer: no new memory per call)\n" +
        "case                 rsock enc     R enc ratio range      faults\n" + borrowed.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--case") {
    const [, dir, name, format] = Deno.args as [string, string, string, string];
    // deno-lint-ignore no-console
    console.log(JSON.stringify(await timeCase(dir, name, format)));
  } else {
    await run();
  }
}
