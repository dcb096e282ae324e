/**
 * `deno task bench`: every side-by-side benchmark in one run, each printing its ratios.
 *
 * @module
 */

const benches: [string, () => Promise<void>][] = [
  ["socket", async () => (await import("./socket_bench.ts")).run()],
  ["eval", async () => (await import("./eval_bench.ts")).run()],
  ["serial", async () => (await import("./serial_bench.ts")).run()],
  ["ws", async () => (await import("./ws_bench.ts")).run()],
  ["reqrep", async () => (await import("./reqrep_bench.ts")).run()],
  ["nng", async () => (await import("./nng_bench.ts")).run()],
];

const only = Deno.args[0];
for (const [name, run] of benches) {
  if (only !== undefined && only !== name) continue;
  await run();
}
