/**
 * eval/ beside Node's built-in `repl` served over a `net` socket, in one run: the round trip of
 * `1+1` in bare mode (median and p99, one client), and transactions per second with 10
 * clients. Each server runs in its own process; the client side is the same Deno code for
 * both. Targets (issue 3): rsock's median round trip ≤ Node's and ≤ 150 µs; ≥ 5,000
 * transactions/s with 10 clients. Then rsock's worker mode (the session in a worker, as
 * `rsock serve` runs it) beside its in-process mode: target (issue 11) worker ≤ 1.3× in-process.
 *
 * @module
 */

import { createSession } from "../eval/mod.ts";

/** A benchmark prints its figures: that is its output. */
// deno-lint-ignore no-console
const print = (line: string): void => console.log(line);

const ROUND_TRIPS = 3_000;
const WARMUP = 300;
const CLIENTS = 10;
const PER_CLIENT = 1_000;

const rsockServer = (worker: boolean) => `
import { startEvalServer } from ${JSON.stringify(new URL("../eval/mod.ts", import.meta.url).href)};
const server = await startEvalServer({ port: 0, worker: ${worker} });
console.log(server.port);
`;

// Node's REPL, one per connection, sharing the global scope: the closest Node analogue.
const NODE_SERVER = `
const net = require("node:net");
const repl = require("node:repl");
const server = net.createServer((socket) => {
  const r = repl.start({ input: socket, output: socket, prompt: "", terminal: false, useGlobal: true });
  r.on("exit", () => socket.end());
  socket.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

interface Peer {
  readonly name: string;
  readonly port: number;
  /** The exact reply to `1+1`. */
  readonly reply: string;
  stop(): Promise<void>;
}

async function startPeer(
  name: string,
  command: string,
  args: string[],
  reply: string,
): Promise<Peer> {
  const child = new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  })
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name} server exited before printing its port`);
    text += value;
  }
  reader.releaseLock();
  const port = Number(text.trim());
  return {
    name,
    port,
    reply,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

const encoder = new TextEncoder();

class LineClient {
  readonly #conn: Deno.Conn;
  readonly #buffer = new Uint8Array(4096);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  static async open(port: number): Promise<LineClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new LineClient(conn);
  }
  /** Sends `1+1` and waits for the whole expected reply. */
  async roundTrip(line: Uint8Array, replyBytes: number): Promise<void> {
    await this.#conn.write(line);
    let got = 0;
    while (got < replyBytes) {
      const n = await this.#conn.read(this.#buffer);
      if (n === null) throw new Error("server closed the connection");
      got += n;
    }
  }
  close(): void {
    this.#conn.close();
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function roundTrips(peer: Peer): Promise<{ median: number; p99: number }> {
  const client = await LineClient.open(peer.port);
  const line = encoder.encode("1+1\n");
  const replyBytes = encoder.encode(peer.reply).length;
  const times: number[] = [];
  try {
    for (let i = 0; i < WARMUP + ROUND_TRIPS; i++) {
      const start = performance.now();
      await client.roundTrip(line, replyBytes);
      if (i >= WARMUP) times.push((performance.now() - start) * 1000);
    }
  } finally {
    client.close();
  }
  times.sort((a, b) => a - b);
  return { median: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

async function throughput(peer: Peer): Promise<number> {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, () => LineClient.open(peer.port)),
  );
  const line = encoder.encode("1+1\n");
  const replyBytes = encoder.encode(peer.reply).length;
  try {
    const start = performance.now();
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < PER_CLIENT; i++) await client.roundTrip(line, replyBytes);
    }));
    return CLIENTS * PER_CLIENT / ((performance.now() - start) / 1000);
  } finally {
    for (const client of clients) client.close();
  }
}

async function inProcess(): Promise<number> {
  await using session = await createSession();
  const times: number[] = [];
  for (let i = 0; i < WARMUP + ROUND_TRIPS; i++) {
    const start = performance.now();
    await session.evaluate("1+1");
    if (i >= WARMUP) times.push((performance.now() - start) * 1000);
  }
  times.sort((a, b) => a - b);
  return quantile(times, 0.5);
}

/** Runs the eval benchmark and prints figures and ratios. */
export async function run(): Promise<void> {
  const denoArgs = ["eval", "--allow-net=127.0.0.1", "--allow-read", "--allow-env", "--allow-sys"];
  const rsock = await startPeer(
    "rsock eval",
    Deno.execPath(),
    [...denoArgs, rsockServer(false)],
    "2\r\n\r\n",
  );
  const node = await startPeer("node repl", "node", ["-e", NODE_SERVER], "2\n");
  try {
    print(`eval: round trip of "1+1" (bare mode), ${ROUND_TRIPS} sequential, one client`);
    const results = [];
    for (const peer of [rsock, node]) {
      const rt = await roundTrips(peer);
      const tps = await throughput(peer);
      results.push({ peer, rt, tps });
      print(
        `  ${peer.name.padEnd(11)} median ${rt.median.toFixed(0).padStart(4)} µs   p99 ${
          rt.p99.toFixed(0).padStart(5)
        } µs   ${CLIENTS} clients: ${tps.toFixed(0).padStart(6)} transactions/s`,
      );
    }
    const [ours, theirs] = results as [typeof results[0], typeof results[0]];
    print(
      `  ratio rsock/node: round trip ${(ours.rt.median / theirs.rt.median).toFixed(2)}× ` +
        `(target ≤ 1 and ≤ 150 µs), throughput ${(ours.tps / theirs.tps).toFixed(2)}× ` +
        `(target ≥ 5,000/s: ${ours.tps >= 5000 ? "met" : "missed"})`,
    );
    print(`  in-process session.evaluate("1+1") median ${(await inProcess()).toFixed(0)} µs`);
  } finally {
    await rsock.stop();
    await node.stop();
  }
  await compareWorker();
}

/** Paired rounds of the worker-mode comparison. */
const WORKER_ROUNDS = 15;

/** rsock's worker mode beside its in-process mode, each server in its own process. */
export async function compareWorker(): Promise<void> {
  const denoArgs = ["eval", "--allow-net=127.0.0.1", "--allow-read", "--allow-env", "--allow-sys"];
  const worker = await startPeer(
    "rsock worker",
    Deno.execPath(),
    [...denoArgs, rsockServer(true)],
    "2\r\n\r\n",
  );
  const inProcessPeer = await startPeer(
    "rsock in-process",
    Deno.execPath(),
    [...denoArgs, rsockServer(false)],
    "2\r\n\r\n",
  );
  try {
    print(`eval: worker mode (rsock serve's default) beside in-process, "1+1" round trip`);
    // Paired rounds in alternating order, each ratio taken within its round: this machine's
    // speed swings by 2× within seconds, which separate best-of runs cannot cancel.
    const ratios: number[] = [];
    const medians = { worker: [] as number[], inProcess: [] as number[] };
    for (let round = 0; round < WORKER_ROUNDS; round++) {
      let inWorker, inProcess;
      if (round % 2 === 0) {
        inWorker = await roundTrips(worker);
        inProcess = await roundTrips(inProcessPeer);
      } else {
        inProcess = await roundTrips(inProcessPeer);
        inWorker = await roundTrips(worker);
      }
      medians.worker.push(inWorker.median);
      medians.inProcess.push(inProcess.median);
      ratios.push(inWorker.median / inProcess.median);
    }
    const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
    const ratio = quantile(sorted(ratios), 0.5);
    const met = ratios.filter((value) => value <= 1.3).length;
    print(
      `  worker median ${quantile(sorted(medians.worker), 0.5).toFixed(0)} µs, in-process ${
        quantile(sorted(medians.inProcess), 0.5).toFixed(0)
      } µs; ratio ${ratio.toFixed(2)}× (median of ${WORKER_ROUNDS} paired rounds, middle half ${
        quantile(sorted(ratios), 0.25).toFixed(2)
      }–${quantile(sorted(ratios), 0.75).toFixed(2)}; target ≤ 1.3 met in ${met}/${WORKER_ROUNDS})`,
    );
  } finally {
    await worker.stop();
    await inProcessPeer.stop();
  }
}

if (import.meta.main) await run();
