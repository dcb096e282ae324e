/**
 * reqrep/ beside NNG's own C REQ/REP (`bench/nng_rr.c`, compiled here against Debian's
 * libnng-dev), in one run: the round trip of a 64-byte request and the throughput of 64 KiB and
 * 1 MiB echoes, for every pairing of rsock and NNG C on each side.
 * Targets (issue 4): rsock's median round trip ≤ 1.25× NNG C's; 1 MiB throughput ≥ NNG C's.
 *
 * Every client and server is its own long-lived process (rsock's client is
 * `bench/_rsock_req.ts`), warmed up before anything is timed. The speed of this shared machine
 * swings by up to 2× within seconds, so rsock is only compared with NNG C measured in the same
 * round, pairs in rotating order: the ratio printed is the median of the rounds' ratios.
 *
 * @module
 */

import { readLines } from "../_internal/lines.ts";
import { request, socket } from "../reqrep/mod.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const CLIENT = new URL("./_rsock_req.ts", import.meta.url).pathname;
const SOURCE = new URL("./nng_rr.c", import.meta.url).pathname;
const ROUNDS = 15;
// Seconds of traffic on every pair before the first timed round: a fresh Deno process runs
// slower for its first second or so (measured), a long-running client or server does not.
const WARMUP_SECONDS = 2;
// count timed requests after warmup untimed ones (JIT, buffer pools, TCP windows).
const CASES = [
  { size: 64, count: 2000, warmup: 200 },
  { size: 64 * 1024, count: 300, warmup: 30 },
  { size: 1024 * 1024, count: 80, warmup: 8 },
] as const;
type Case = (typeof CASES)[number];
type Side = "nng" | "rsock";
const PAIRS = [
  ["NNG C → NNG C", "nng", "nng"],
  ["rsock → rsock", "rsock", "rsock"],
  ["rsock → NNG C", "rsock", "nng"],
  ["NNG C → rsock", "nng", "rsock"],
] as const;

interface Figures {
  readonly median_us: number;
  readonly mb_per_s: number;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function compile(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rsock_bench_" });
  const binary = `${dir}/nng_rr`;
  const out = await new Deno.Command("cc", { args: ["-O2", "-o", binary, SOURCE, "-lnng"] })
    .output();
  if (!out.success) {
    throw new Error(
      `cc failed (is libnng-dev installed?):\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return binary;
}

/** Starts a REP echo server process and waits until it answers. */
async function startRep(kind: Side, binary: string, url: string): Promise<Deno.ChildProcess> {
  const command = kind === "nng"
    ? new Deno.Command(binary, { args: ["rep", url], stdout: "null", stderr: "inherit" })
    : new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-net=${url.slice("tcp://".length)}`,
        CLI,
        "rep",
        url,
        "--execute",
        "(x) => x",
        "--recv-mode",
        "raw",
        "--send-mode",
        "raw",
        "--borrow-buffers",
      ],
      stdout: "null",
      stderr: "null",
    });
  const child = command.spawn();
  await using probe = await socket("req", {
    dial: url,
    retryFirstDial: true,
    reconnectMinimum: 20,
  });
  await request(probe, new Uint8Array(1), { sendMode: "raw", recvMode: "raw", timeout: 20_000 });
  return child;
}

/** The rsock client process: one measurement per line written to it. */
class RsockClient {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;

  constructor(urls: readonly string[]) {
    const hosts = urls.map((url) => url.slice("tcp://".length)).join(",");
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", `--allow-net=${hosts}`, CLIENT],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = readLines(this.#child.stdout);
  }

  async measure(url: string, { size, count, warmup }: Case): Promise<Figures> {
    await this.#writer.write(new TextEncoder().encode(`${url} ${size} ${count} ${warmup}\n`));
    const line = await this.#lines.next();
    if (line.done === true) throw new Error("the rsock client process ended");
    return JSON.parse(line.value);
  }

  async close(): Promise<void> {
    await this.#writer.close();
    await this.#lines.return?.();
    await this.#child.status;
  }
}

async function nngClient(binary: string, url: string, testCase: Case): Promise<Figures> {
  const { size, count, warmup } = testCase;
  const out = await new Deno.Command(binary, {
    args: ["req", url, String(size), String(count), String(warmup)],
  }).output();
  if (!out.success) throw new Error(`nng_rr failed:\n${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Runs the reqrep benchmark and prints figures and ratios. */
export async function run(): Promise<void> {
  const binary = await compile();
  const urls = { nng: `tcp://127.0.0.1:${freePort()}`, rsock: `tcp://127.0.0.1:${freePort()}` };
  const servers = [
    await startRep("nng", binary, urls.nng),
    await startRep("rsock", binary, urls.rsock),
  ];
  const client = new RsockClient([urls.nng, urls.rsock]);
  const measure = (side: Side, url: string, testCase: Case) =>
    side === "rsock" ? client.measure(url, testCase) : nngClient(binary, url, testCase);
  const results = new Map<string, Figures[]>();
  try {
    const warm = performance.now() + WARMUP_SECONDS * 1000;
    while (performance.now() < warm) {
      for (const [, side, server] of PAIRS) await measure(side, urls[server], CASES[2]);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const testCase of CASES) {
        // Rotate the order each round so no pair always runs first or last.
        for (let i = 0; i < PAIRS.length; i++) {
          const [name, side, server] = PAIRS[(i + round) % PAIRS.length]!;
          const figures = await measure(side, urls[server], testCase);
          const key = `${name}|${testCase.size}`;
          results.set(key, [...results.get(key) ?? [], figures]);
        }
      }
    }
  } finally {
    await client.close();
    for (const server of servers) {
      server.kill("SIGKILL");
      await server.status;
    }
    await Deno.remove(binary.replace(/\/nng_rr$/, ""), { recursive: true });
  }
  const of = (name: string, size: number) => results.get(`${name}|${size}`)!;
  // The ratio of rsock → rsock to NNG C → NNG C within each round.
  const paired = (size: number, pick: (f: Figures) => number) => {
    const theirs = of("NNG C → NNG C", size).map(pick);
    return of("rsock → rsock", size).map(pick).map((value, i) => value / theirs[i]!);
  };
  const describe = (ratios: readonly number[], wins?: (ratio: number) => boolean) => {
    const sorted = [...ratios].sort((a, b) => a - b);
    const quarter = Math.floor(sorted.length / 4);
    const spread = `middle half ${sorted[quarter]!.toFixed(2)}–${
      sorted[sorted.length - 1 - quarter]!.toFixed(2)
    }`;
    const met = wins === undefined
      ? ""
      : `, target met in ${ratios.filter(wins).length}/${ratios.length} rounds`;
    return `${median(ratios).toFixed(2)}× (${spread}${met})`;
  };
  const lines = [
    `\nreqrep: REQ → REP echo over tcp on loopback; medians of ${ROUNDS} interleaved rounds`,
    `${"pair".padEnd(16)}${"64 B RTT µs".padStart(13)}${"64 KiB MB/s".padStart(13)}${
      "1 MiB MB/s".padStart(12)
    }`,
  ];
  for (const [name] of PAIRS) {
    lines.push(
      `${name.padEnd(16)}${median(of(name, 64).map((f) => f.median_us)).toFixed(1).padStart(13)}${
        median(of(name, 65536).map((f) => f.mb_per_s)).toFixed(0).padStart(13)
      }${median(of(name, 1048576).map((f) => f.mb_per_s)).toFixed(0).padStart(12)}`,
    );
  }
  lines.push(
    "rsock/NNG C, median of the rounds' ratios:",
    `  64 B round trip   ${describe(paired(64, (f) => f.median_us), (r) => r <= 1.25)}` +
      "; target ≤ 1.25×",
    `  64 KiB throughput ${describe(paired(65536, (f) => f.mb_per_s))}; no target`,
    `  1 MiB throughput  ${describe(paired(1048576, (f) => f.mb_per_s), (r) => r >= 1)}` +
      "; target ≥ 1.00×",
  );
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
}

if (import.meta.main) await run();
