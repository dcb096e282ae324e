/**
 * A peer must not be able to abort the process through the inspector: `await new Promise(() =>
 * {})` leaves an evaluation's promise that nothing can settle; once the garbage collector takes
 * it (or its worker is terminated by the time limit), Deno 2.9.6 aborts the whole process
 * ("Invoke in DisallowJavascriptExecutionScope", "Cannot create a handle without a
 * HandleScope") if the inspector still waits on it, so it never may. Each case runs a server
 * or session in a child process with `--expose-gc`, collects garbage while the await is
 * pending and after it is given up on, and checks that the process lives and a fresh client
 * is answered.
 */
import assert from "node:assert/strict";
import { connectEvalServer } from "../../eval/mod.ts";
import { freePort, withTimeout } from "../_peers.ts";
import { rsock, TestProcess, WORKER_READ } from "../_process.ts";
import { evalServerChild } from "./_eval_children.ts";

/** Collects in the session's isolate 20 ms in, then waits on a promise nothing can settle. */
const NEVER = "setTimeout(() => { gc(); gc(); }, 20); await new Promise(() => {})";

/** Sends `code` from a fresh client and returns the reply. */
async function ask(port: number, code: string): Promise<string> {
  await using client = await connectEvalServer({ port });
  return await client.send(code);
}

Deno.test("eval panic: rsock serve (worker) outlives a never-settling await, its time limit and a GC", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using child = rsock(
      ["--v8-flags=--expose-gc", `--allow-net=127.0.0.1:${port}`, "--allow-sys", WORKER_READ],
      ["serve", "--eval", String(port), "--timeout", "500ms"],
    );
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    assert.match(await ask(port, NEVER), /Interrupted: evaluation ran past 500 ms/);
    assert.equal(await ask(port, "let after = 1 + 1; after"), "2");
    assert.equal(await ask(port, "await Promise.resolve(after * 2)"), "4");
    const exited = await Promise.race([child.status.then(() => true), Promise.resolve(false)]);
    assert.equal(exited, false, `the server ended:\n${child.stderr}`);
  });
});

Deno.test("eval panic: an in-process server outlives a never-settling await given up on, and GCs after", async () => {
  await withTimeout(30_000, async () => {
    const { child: server, port } = await evalServerChild({ worker: false, timeout: 300 }, [
      "--v8-flags=--expose-gc",
    ]);
    await using child = server;
    try {
      assert.match(await ask(port, NEVER), /Interrupted: evaluation ran past 300 ms/);
      assert.equal(await ask(port, "gc(); gc(); let after = 1 + 1; after"), "2");
      assert.equal(await ask(port, "await Promise.resolve(after * 2)"), "4");
    } finally {
      await child.child.stdin.close();
    }
  });
});

const CASES = [
  ["pending", "with no time limit outlives a GC during a never-settling await"],
  ["settled", "outlives a GC between an evaluation's end and the inspector's answer"],
] as const;
for (const [kind, what] of CASES) {
  for (const [mode, name] of [["in-process", "an in-process"], ["worker", "a worker"]] as const) {
    Deno.test(`eval panic: ${name} session ${what}`, async () => {
      await withTimeout(30_000, async () => {
        await using child = new TestProcess(Deno.execPath(), [
          "run",
          "--no-prompt",
          "--v8-flags=--expose-gc",
          "--allow-sys",
          WORKER_READ,
          new URL("./_eval_panic_child.ts", import.meta.url).pathname,
          kind,
          mode,
        ]);
        const status = await child.finished();
        assert.equal(child.stdout, "alive\n", child.stderr);
        assert.equal(status.code, 0, child.stderr);
      });
    });
  }
}
