/**
 * A session whose evaluation awaits a promise nothing can settle, with no time limit, while the
 * garbage collector runs: `deno run --v8-flags=--expose-gc … _eval_panic_child.ts MODE` (MODE
 * `in-process` or `worker`) writes `alive` and exits 0 if the process survived.
 */
import { createSession } from "../../eval/mod.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
const session = await createSession({ worker: Deno.args[0] === "worker" });
await session.evaluate("let before = 1");
// The timer collects inside the session's own isolate (the worker's, in worker mode) while the
// await is pending; never settles, so not awaited here.
void session.evaluate("setTimeout(() => { gc(); gc(); }, 20); await new Promise(() => {})");
for (let i = 0; i < 5; i++) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  gc();
}
// Not console.log: in-process, the pending evaluation captures the console.
Deno.stdout.writeSync(new TextEncoder().encode("alive\n"));
Deno.exit(0);
