/**
 * `rsock serve` as a real subprocess on free ports: one session behind every endpoint,
 * permission gating with the exact flags, and a clean stop on SIGTERM.
 */
import assert from "node:assert/strict";
import { connectEvalServer, evalServer } from "../eval/mod.ts";
import { connect } from "../socket/mod.ts";
import { freePort, withTimeout } from "./_peers.ts";
import { rsock } from "./_process.ts";

function portIsFree(port: number): boolean {
  try {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    listener.close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("serve: with less than the exact permissions it stops before listening", async () => {
  await withTimeout(30_000, async () => {
    const evalPort = freePort();
    const socketPort = freePort();
    const args = ["serve", "--eval", String(evalPort), "--socket", String(socketPort)];
    await using child = rsock([`--allow-net=127.0.0.1:${evalPort}`, "--allow-sys"], args);
    assert.equal((await child.finished()).code, 2);
    assert.match(
      child.stderr,
      new RegExp(`run again with --allow-net=127\\.0\\.0\\.1:${socketPort} `),
    );
    assert.doesNotMatch(child.stderr, /rsock serve: one session/, "nothing was started");
    assert.ok(portIsFree(evalPort));
  });
});

Deno.test("serve: eval clients and the message socket share one process; SIGTERM frees every port", async () => {
  await withTimeout(30_000, async () => {
    const evalPort = freePort();
    const socketPort = freePort();
    await using child = rsock(
      [`--allow-net=127.0.0.1:${evalPort},127.0.0.1:${socketPort}`, "--allow-sys"],
      ["serve", "--eval", String(evalPort), "--socket", String(socketPort)],
    );
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    assert.match(child.stderr, new RegExp(`eval +tcp://127\\.0\\.0\\.1:${evalPort}`));
    {
      await using first = await connectEvalServer({ port: evalPort });
      await evalServer(first, "x", 1);
      await using second = await connectEvalServer({ port: evalPort });
      assert.equal(await evalServer(second, "x + 1"), 2);
    }
    {
      await using conn = await connect({ hostname: "127.0.0.1", port: socketPort });
      await conn.writeLine("relayed into the log");
    }
    await child.waitForOutput(/socket \[1\] relayed into the log\n/);
    child.child.kill("SIGTERM");
    const status = await child.finished();
    assert.equal(status.code, 0, child.stderr);
    assert.match(child.stderr, /rsock serve: stopped/);
    assert.ok(portIsFree(evalPort), "eval port freed");
    assert.ok(portIsFree(socketPort), "socket port freed");
  });
});
