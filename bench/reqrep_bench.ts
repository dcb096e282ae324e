/**
 * reqrep/ beside NNG's own C REQ/REP (`bench/nng_rr.c`, compiled here against Debian's
 * libnng-dev), in one run: the round trip of a 64-byte request and the throughput of 64 KiB and
 * 1 MiB echoes, for every pairing of rsock and NNG C on each side.
 * Targets (issue 4): rsock's median round trip ≤ 1.25× NNG C's; 1 MiB throughput ≥ NNG C's.
 *
 * @module
 */

import { request, socket } from "../reqrep/mod.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const SOURCE = new URL("./nng_rr.c", import.meta.url).pathname;
const CASES = [
  { name: "64 B round trip", size: 64, count: 5000 },
  { name: "64 KiB echo", size: 64 * 1024, count: 1000 },
  { name: "1 MiB echo", size: 1024 * 1024, count: 150 },
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
async function startRep(
  kind: "nng" | "rsock",
  binary: string,
  url: string,
): Promise<Deno.ChildProcess> {
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
  await using probe = await socket("req", { dial: url, reconnectMinimum: 20 });
  await request(probe, new Uint8Array(1), { sendMode: "raw", recvMode: "raw", timeout: 20_000 });
  return child;
}

async function rsockReq(url: string, size: number, count: number): Promise<Figures> {
  await using req = await socket("req", { dial: url });
  const payload = new Uint8Array(size).fill(7);
  const ctx = req.context();
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const answer = await request(ctx, payload, {
      sendMode: "raw",
      recvMode: "raw",
      borrowBuffers: true,
    }) as Uint8Array;
    times.push(performance.now() - t0);
    if (answer.length !== size) throw new Error(`reply of ${answer.length} bytes`);
  }
  const total = performance.now() - start;
  times.sort((a, b) => a - b);
  return { median_us: times[count >> 1]! * 1000, mb_per_s: size * count / (total * 1000) };
}

async function nngReq(binary: string, url: string, size: number, count: number): Promise<Figures> {
  const out = await new Deno.Command(binary, { args: ["req", url, String(size), String(count)] })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Runs the reqrep benchmark and prints figures and ratios. */
export async function run(): Promise<void> {
  const binary = await compile();
  const urls = { nng: `tcp://127.0.0.1:${freePort()}`, rsock: `tcp://127.0.0.1:${freePort()}` };
  const servers = [
    await startRep("nng", binary, urls.nng),
    await startRep("rsock", binary, urls.rsock),
  ];
  const pairs = [
    ["NNG C → NNG C", "nng", "nng"],
    ["rsock → rsock", "rsock", "rsock"],
    ["rsock → NNG C", "rsock", "nng"],
    ["NNG C → rsock", "nng", "rsock"],
  ] as const;
  const results = new Map<string, Figures[]>();
  try {
    for (const { size, count } of CASES) {
      // Best of 3 interleaved rounds: the machine is shared, noise only ever slows a run down.
      for (let round = 0; round < 3; round++) {
        for (const [name, client, server] of pairs) {
          const figures = client === "rsock"
            ? await rsockReq(urls[server], size, count)
            : await nngReq(binary, urls[server], size, count);
          const key = `${name}|${size}`;
          const list = results.get(key) ?? [];
          list.push(figures);
          results.set(key, list);
        }
      }
    }
  } finally {
    for (const server of servers) {
      server.kill("SIGKILL");
      await server.status;
    }
    await Deno.remove(binary.replace(/\/nng_rr$/, ""), { recursive: true });
  }
  const best = (name: string, size: number) => {
    const list = results.get(`${name}|${size}`)!;
    return {
      median_us: Math.min(...list.map((f) => f.median_us)),
      mb_per_s: Math.max(...list.map((f) => f.mb_per_s)),
    };
  };
  const lines = [
    "\nreqrep: REQ → REP echo over tcp on loopback, best of 3 interleaved rounds",
    `${"pair".padEnd(16)}${"64 B RTT µs".padStart(13)}${"64 KiB MB/s".padStart(13)}${
      "1 MiB MB/s".padStart(12)
    }`,
  ];
  for (const [name] of pairs) {
    lines.push(
      `${name.padEnd(16)}${best(name, 64).median_us.toFixed(1).padStart(13)}${
        best(name, 65536).mb_per_s.toFixed(0).padStart(13)
      }${best(name, 1048576).mb_per_s.toFixed(0).padStart(12)}`,
    );
  }
  const rtt = best("rsock → rsock", 64).median_us / best("NNG C → NNG C", 64).median_us;
  const mib = best("rsock → rsock", 1048576).mb_per_s / best("NNG C → NNG C", 1048576).mb_per_s;
  lines.push(
    `ratio rsock/NNG C: round trip ${rtt.toFixed(2)}× (target ≤ 1.25×), ` +
      `1 MiB throughput ${mib.toFixed(2)}× (target ≥ 1.00×)`,
  );
  // deno-lint-ignore no-console
  console.log(lines.join("\n"));
}

if (import.meta.main) await run();
