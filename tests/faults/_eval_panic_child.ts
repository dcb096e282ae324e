/**
 * A session in the way of the garbage collector: `deno run --v8-flags=--expose-gc …
 * _eval_panic_child.ts CASE MODE` (MODE `in-process` or `worker`) writes `alive` and exits 0 if
 * the process survived. CASE:
 * - `pending`: an evaluation awaits a promise nothing can settle, with no time limit, while the
 *   collector runs (in the session's own isolate and in the host's);
 * - `settled`: each evaluation queues a collection as a microtask, which runs after the
 *   evaluation's promise settled and before the inspector has taken its result.
 */
import { createSession } from "../../eval/mod.ts";

const [kind, mode] = Deno.args;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
const session = await createSession({ worker: mode === "worker" });
if (kind === "settled") {
  for (let i = 0; i < 5; i++) {
    for (const code of [`let n = ${i}; queueMicrotask(() => gc()); n`, `let k = await ${i}; k`]) {
      const { value } = await session.evaluate(code);
      if (value !== i) throw new Error(`${code} gave ${value}`);
    }
  }
} else {
  await session.evaluate("let before = 1");
  // The timer collects inside the session's own isolate (the worker's, in worker mode) while
  // the await is pending; never settles, so not awaited here.
  void session.evaluate("setTimeout(() => { gc(); gc(); }, 20); await new Promise(() => {})");
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
  }
}
// Not console.log: in-process, a pending evaluation captures the console.
Deno.stdout.writeSync(new TextEncoder().encode("alive\n"));
Deno.exit(0);
