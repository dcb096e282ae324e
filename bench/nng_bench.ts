/**
 * The NNG family beside NNG's own C library (`bench/nng_family.c`, compiled here against
 * Debian's libnng-dev with mbedtls), in one run: pub/sub fan-out of 64-byte messages to 10
 * subscribers, push/pull of 64 B and 1 MiB messages, and REQ/REP over tls+tcp:// (64 B round
 * trip, 1 MiB echo). Each side runs as its own processes (rsock's are `bench/_rsock_family.ts`),
 * rsock against rsock and NNG C against NNG C, in rounds that alternate which goes first; the
 * ratio printed is the median of the rounds' rsock/NNG C ratios (above 1: rsock is faster).
 * Both sides queue to the same depths (NNG C is given rsock's defaults: pub 1024 per pipe, sub
 * and pull 1024, push 16), receivers count only what was delivered, first to last message, and
 * REQ/REP both warm up on a tenth of the run. NNG C's publisher runs unpaced on its own thread;
 * rsock's yields to the event loop every 64 messages, so the delivered share differs.
 * Targets (issue 14): every ratio ≥ 1.0.
 *
 * @module
 */

import { readLines } from "../_internal/lines.ts";
import { makeCertificates, type TestCertificates } from "../tests/_tls.ts";

const SOURCE = new URL("./nng_family.c", import.meta.url).pathname;
const RSOCK = new URL("./_rsock_family.ts", import.meta.url).pathname;
const ROUNDS = 3;
type Side = "nng" | "rsock";

interface Figures {
  readonly messages: number;
  readonly seconds: number;
}

interface Case {
  readonly name: string;
  /** What is compared: higher is better for both. */
  readonly unit: string;
  run(side: Side): Promise<Result>;
}

interface Result {
  readonly value: number;
  /** Share of the messages sent that arrived (pub/sub drops for slow subscribers). */
  readonly delivered?: number;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** One role in its own process; its stdout lines come through `lines`. */
class Peer implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: AsyncGenerator<string>;

  constructor(command: string, args: string[], env: Record<string, string>) {
    this.child = new Deno.Command(command, {
      args,
      env,
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    this.lines = readLines(this.child.stdout);
  }

  async line(): Promise<string> {
    const next = await this.lines.next();
    if (next.done) throw new Error("a bench peer ended without its line");
    return next.value;
  }

  async figures(): Promise<Figures> {
    return JSON.parse(await this.line()) as Figures;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // ended
    }
    await this.child.status;
    await this.lines.return(undefined);
  }
}

function makePeer(side: Side, binary: string, certs: TestCertificates) {
  const env = side === "nng"
    ? { NNG_TLS_CERT_KEY: certs.path("server.pem"), NNG_TLS_CA: certs.path("ca.crt") }
    : {
      NNG_TLS_CERT: certs.path("server.crt"),
      NNG_TLS_KEY: certs.path("server.key"),
      NNG_TLS_CA: certs.path("ca.crt"),
    };
  return (args: string[], dialer = false): Peer => {
    // A dialer gets only the CA, a listener only its certificate.
    const own: Record<string, string> = Object.fromEntries(
      Object.entries(env).filter(([key]) => dialer ? key === "NNG_TLS_CA" : key !== "NNG_TLS_CA"),
    );
    return side === "nng"
      ? new Peer(binary, args, own)
      : new Peer(Deno.execPath(), ["run", "-A", RSOCK, ...args], own);
  };
}

function cases(binary: string, certs: TestCertificates): Case[] {
  return [
    {
      name: "pub/sub fan-out, 64 B to 10 subscribers (tcp)",
      unit: "msg/s delivered",
      async run(side) {
        const peer = makePeer(side, binary, certs);
        const url = `tcp://127.0.0.1:${freePort()}`;
        await using pub = peer(["pub", url, "64", "200000", "10"]);
        await pub.line();
        const subs = Array.from({ length: 10 }, () => peer(["sub", url], true));
        try {
          const figures = await Promise.all(subs.map((sub) => sub.figures()));
          return {
            value: figures.reduce(
              (sum, f) => sum + (f.seconds > 0 ? f.messages / f.seconds : 0),
              0,
            ),
            delivered: figures.reduce((sum, f) => sum + f.messages, 0) / (10 * 200_000),
          };
        } finally {
          await Promise.all(subs.map((sub) => sub[Symbol.asyncDispose]()));
        }
      },
    },
    ...[[64, 100_000, "msg/s"], [1024 * 1024, 300, "MB/s"]].map(([size, count, unit]) => ({
      name: `push/pull ${size === 64 ? "64 B" : "1 MiB"} (tcp)`,
      unit: unit as string,
      async run(side: Side) {
        const peer = makePeer(side, binary, certs);
        const url = `tcp://127.0.0.1:${freePort()}`;
        await using pull = peer(["pull", url, String(count)]);
        await pull.line();
        await using _push = peer(["push", url, String(size), String(count)], true);
        const f = await pull.figures();
        const perSecond = f.messages / f.seconds;
        return { value: unit === "MB/s" ? perSecond * (size as number) / 1e6 : perSecond };
      },
    })),
    ...[[64, 3000, "round trips/s"], [1024 * 1024, 100, "MB/s"]].map(([size, count, unit]) => ({
      name: `REQ/REP ${size === 64 ? "64 B round trip" : "1 MiB echo"} (tls+tcp)`,
      unit: unit as string,
      async run(side: Side) {
        const peer = makePeer(side, binary, certs);
        const port = freePort();
        await using rep = peer(["rep", `tls+tcp://127.0.0.1:${port}`]);
        await rep.line();
        // NNG's mbedtls checks the name: localhost is in the certificate, 127.0.0.1 is not.
        await using req = peer(
          ["req", `tls+tcp://localhost:${port}`, String(size), String(count)],
          true,
        );
        const f = await req.figures();
        const perSecond = f.messages / f.seconds;
        return { value: unit === "MB/s" ? perSecond * (size as number) / 1e6 : perSecond };
      },
    })),
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs every case (or those whose name contains `only`), prints figures and median ratios. */
export async function run(only?: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rsock_nng_bench_" });
  const certs = await makeCertificates();
  try {
    const binary = `${dir}/nng_family`;
    const built = await new Deno.Command("cc", {
      args: ["-O2", "-o", binary, SOURCE, "-lnng"],
      stderr: "piped",
    }).output();
    if (!built.success) {
      throw new Error(
        `cc failed (is libnng-dev installed?):\n${new TextDecoder().decode(built.stderr)}`,
      );
    }
    await Deno.writeTextFile(
      certs.path("server.pem"),
      certs.serverCert + certs.serverKey,
    );
    const out = (line: string) => Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
    out(`nng family: rsock vs NNG C (${ROUNDS} rounds, median of per-round ratios)`);
    for (const c of cases(binary, certs)) {
      if (only !== undefined && !c.name.includes(only)) continue;
      const ratios: number[] = [];
      const figures: Record<Side, number[]> = { nng: [], rsock: [] };
      const delivered: Record<Side, number[]> = { nng: [], rsock: [] };
      for (let round = 0; round < ROUNDS; round++) {
        const order: Side[] = round % 2 === 0 ? ["nng", "rsock"] : ["rsock", "nng"];
        const got: Partial<Record<Side, Result>> = {};
        for (const side of order) got[side] = await c.run(side);
        for (const side of order) {
          figures[side].push(got[side]!.value);
          if (got[side]!.delivered !== undefined) delivered[side].push(got[side]!.delivered!);
        }
        ratios.push(got.rsock!.value / got.nng!.value);
      }
      const show = (values: number[]) => values.map((v) => v.toFixed(v >= 100 ? 0 : 1)).join(", ");
      out(
        `  ${c.name.padEnd(48)} ${c.unit}: NNG C ${show(figures.nng)} | rsock ${
          show(figures.rsock)
        } | ratio ${median(ratios).toFixed(2)}x`,
      );
      if (delivered.nng.length > 0) {
        const share = (values: number[]) =>
          values.map((v) => `${(v * 100).toFixed(0)}%`).join(", ");
        out(`    delivered: NNG C ${share(delivered.nng)} | rsock ${share(delivered.rsock)}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(certs.dir, { recursive: true });
  }
}

if (import.meta.main) await run(Deno.args[0]);
