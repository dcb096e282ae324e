/**
 * Where `rsock eval` takes its code from: the arguments, standard input (`-`, or piped with no
 * argument) and `--file FILE`, as `Rscript` and `deno eval` users expect.
 */
import assert from "node:assert/strict";
import { connectEvalServer, startEvalServer } from "../eval/mod.ts";
import { withTimeout } from "./_peers.ts";
import { rsock } from "./_process.ts";

async function evalWithInput(flags: string[], args: string[], input: string) {
  const child = rsock(flags, ["eval", ...args], { stdin: "piped" });
  const writer = child.child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const status = await child.finished();
  await child[Symbol.asyncDispose]();
  return { code: status.code, stdout: child.stdout, stderr: child.stderr };
}

Deno.test("rsock eval reads code from standard input and from --file", async (t) => {
  await withTimeout(30_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    const port = String(server.port);
    const net = `--allow-net=127.0.0.1:${port}`;
    await t.step("echo 1+1 | rsock eval", async () => {
      const result = await evalWithInput([net], ["--port", port], "1+1\n");
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "2\n");
    });
    await t.step("rsock eval - (several lines, one transaction)", async () => {
      const result = await evalWithInput([net], ["--port", port, "-"], "let a = 6;\na * 7\n");
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "42\n");
    });
    const dir = await Deno.makeTempDir({ prefix: "rsock_eval_file_" });
    try {
      const script = `${dir}/script.ts`;
      await Deno.writeTextFile(script, "const b: number = 40;\nconsole.log('from file');\nb + 2\n");
      await t.step("rsock eval --file script.ts", async () => {
        const result = await evalWithInput(
          [net, `--allow-read=${script}`],
          ["--port", port, "--file", script],
          "",
        );
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout, "from file\n42\n");
      });
      await t.step("--file without read permission names the flag", async () => {
        const result = await evalWithInput([net], ["--port", port, "--file", script], "");
        assert.equal(result.code, 2);
        assert.match(result.stderr, new RegExp(`--allow-read=${script.replaceAll(".", "\\.")}`));
      });
      await t.step("empty standard input is a usage error", async () => {
        const result = await evalWithInput([net], ["--port", port], "");
        assert.equal(result.code, 2);
        assert.match(result.stderr, /standard input was empty/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("rsock eval stopped by Ctrl-C interrupts its runaway on the server", async () => {
  await withTimeout(30_000, async () => {
    // A worker session, as rsock serve has: the runaway can be stopped, and must be, or the
    // shared session stays busy for every other client.
    await using server = await startEvalServer({ port: 0, worker: true });
    const port = String(server.port);
    const spinning = Promise.withResolvers<void>();
    await using probe = await connectEvalServer({
      port: server.port,
      onPush: (text) => text === "spinning" && spinning.resolve(),
    });
    await using child = rsock([`--allow-net=127.0.0.1:${port}`], [
      "eval",
      "--port",
      port,
      "globalThis.spinning = true; sendSocketClients('spinning'); while (true) {}",
    ]);
    // The runaway says when it runs; a probe then waits behind it.
    await spinning.promise;
    const probed = probe.evaluate("globalThis.spinning === true");
    child.child.kill("SIGINT");
    assert.equal((await child.finished()).code, 130, child.stderr);
    const reply = await probed;
    assert.equal(reply.error, false, reply.text);
    assert.equal((await probe.evaluate("1 + 1")).text, "2");
  });
});
