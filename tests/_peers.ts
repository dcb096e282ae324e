/**
 * Real peers for interop tests. A test that needs a missing peer is ignored with a printed
 * reason on a developer machine, and fails under CI (`CI=true`), where `deno task test` must
 * have installed it.
 *
 * @module
 */

/** The peer programs the interop tests use, and how to tell one is installed. */
export const PEERS = {
  Rscript: { check: ["/usr/bin/Rscript", "--version"], install: "r-base-core" },
  nngcat: { check: ["/usr/bin/nngcat", "--version"], install: "nng-utils" },
  "python3-websockets": {
    check: ["/usr/bin/python3", "-c", "import websockets"],
    install: "python3-websockets",
  },
  chromium: { check: ["/usr/bin/chromium", "--version"], install: "chromium" },
  "libnng-dev": { check: ["/usr/bin/test", "-f", "/usr/include/nng/nng.h"], install: "libnng-dev" },
} as const;

/** A peer name from {@linkcode PEERS}. */
export type PeerName = keyof typeof PEERS;

const cache = new Map<PeerName, boolean>();

/** True when `peer` is installed and runs. */
export function hasPeer(peer: PeerName): boolean {
  let found = cache.get(peer);
  if (found === undefined) {
    const [command, ...args] = PEERS[peer].check;
    try {
      found = new Deno.Command(command, { args, stdout: "null", stderr: "null" }).outputSync()
        .success;
    } catch {
      found = false;
    }
    cache.set(peer, found);
  }
  return found;
}

/** True under CI, where a missing peer is a failure. */
export const IN_CI: boolean = (Deno.env.get("CI") ?? "") !== "" && Deno.env.get("CI") !== "false";

/**
 * Registers an interop test: ignored with a printed reason when a peer is missing locally,
 * failing under CI.
 */
export function interopTest(
  name: string,
  peers: PeerName[],
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  const missing = peers.filter((peer) => !hasPeer(peer));
  if (missing.length > 0 && !IN_CI) {
    // deno-lint-ignore no-console
    console.warn(
      `ignored "${name}": missing ${missing.join(", ")} (apt-get install ${
        missing.map((peer) => PEERS[peer].install).join(" ")
      }, or run deno task test as root)`,
    );
  }
  Deno.test({
    name,
    ignore: missing.length > 0 && !IN_CI,
    async fn(t) {
      if (missing.length > 0) {
        throw new Error(
          `peer missing under CI: ${missing.join(", ")}; scripts/install_peers.sh should have ` +
            `installed ${missing.map((peer) => PEERS[peer].install).join(" ")}`,
        );
      }
      await fn(t);
    },
  });
}

/** Runs `fn` with a signal that aborts after `ms`, so a hang fails the test instead of CI. */
export async function withTimeout<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`test body did not finish within ${ms} ms`)),
    ms,
  );
  try {
    return await Promise.race([
      fn(controller.signal),
      new Promise<never>((_, reject) => {
        controller.signal.addEventListener("abort", () => reject(controller.signal.reason), {
          once: true,
        });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** Waits until `probe` resolves true, polling every 20 ms, up to `ms`. */
export async function waitFor(
  what: string,
  probe: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Ports `freePort` gave out in this process: each is given once. */
const portsGiven = new Set<number>();

/** The first port the kernel picks for `port: 0` and outgoing connections (Linux's default). */
let ephemeralLow: number | undefined;

function readEphemeralLow(): number {
  try {
    const range = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
    const low = Number(range.split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * A free TCP port on 127.0.0.1 (for peers that must be told a port up front), below the
 * kernel's ephemeral range: between this check and the peer's bind, no `port: 0` listener and
 * no outgoing connection of any process can take it, as they could an ephemeral one. Each port
 * is given once per process, so ports asked for together differ.
 */
export function freePort(): number {
  const low = Math.min(ephemeralLow ??= readEphemeralLow(), 65536);
  const from = 10_000;
  for (let attempt = 0; attempt < 1000 && low > from; attempt++) {
    const port = from + Math.floor(Math.random() * (low - from));
    if (portsGiven.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) continue;
      throw error;
    }
    portsGiven.add(port);
    return port;
  }
  throw new Error(`no free port found on 127.0.0.1 between ${from} and ${low}`);
}

/** How the browser tests start Debian's chromium: headless, and quiet on a closed network. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];
