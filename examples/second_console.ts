/**
 * A second console on a running program: this "program" keeps some state and a ticking
 * counter, and serves its global scope so another terminal can look inside and change it while
 * it runs — what svSocket gives an R session.
 *
 *   deno run --allow-net=127.0.0.1:8888 --allow-sys examples/second_console.ts
 *   # elsewhere:
 *   deno run --allow-net=127.0.0.1:8888 cli.ts console --port 8888
 *   :> ticks
 *   :> settings.step = 10
 */
// deno-lint-ignore-file no-console -- an example talks to its user
import { startEvalServer } from "../eval/mod.ts";

const port = Number(Deno.args[0] ?? 8888);
await using server = await startEvalServer({ port });

// The program's own state lives in the shared global scope, so consoles see and change it.
await server.session.evaluate("var ticks = 0; var settings = { step: 1 };");
const timer = setInterval(() => {
  server.session.evaluate("ticks += settings.step").catch(() => {});
}, 1000);

console.log(`program running; inspect it with: rsock console --port ${server.port}`);
const { promise, resolve } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGINT", () => resolve());
await promise;
clearInterval(timer);
