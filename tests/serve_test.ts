/**
 * `rsock serve` as a real subprocess on free ports: one session behind every endpoint,
 * permission gating with the exact flags, and a clean stop on SIGTERM.
 */
import assert from "node:assert/strict";
import { connectEvalServer, evalServer } from "../eval/mod.ts";
import { connect } from "../socket/mod.ts";
import { CONSOLE_PROTOCOL, websocket } from "../ws/mod.ts";
import { isNulByte, request, socket } from "../reqrep/mod.ts";
import { socket as nngSocket } from "../nng/mod.ts";
import { main } from "../cli.ts";
import { freePort, withTimeout } from "./_peers.ts";
import { rsock, WORKER_READ } from "./_process.ts";

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
    await using child = rsock(
      [`--allow-net=127.0.0.1:${evalPort}`, "--allow-sys", WORKER_READ],
      args,
    );
    assert.equal((await child.finished()).code, 2);
    assert.match(
      child.stderr,
      new RegExp(`run again with --allow-net=127\\.0\\.0\\.1:${socketPort} `),
    );
    assert.doesNotMatch(child.stderr, /rsock serve: one session/, "nothing was started");
    assert.ok(portIsFree(evalPort));
  });
});

Deno.test("serve: eval clients, the console's websocket, REQ requests and the message socket share one session; SIGTERM frees every port", async () => {
  await withTimeout(30_000, async () => {
    const evalPort = freePort();
    const wsPort = freePort();
    const socketPort = freePort();
    const repPort = freePort();
    const repUrl = `tcp://127.0.0.1:${repPort}`;
    await using child = rsock(
      [
        `--allow-net=127.0.0.1:${evalPort},127.0.0.1:${wsPort},127.0.0.1:${socketPort},127.0.0.1:${repPort}`,
        "--allow-sys",
        WORKER_READ,
      ],
      [
        "serve",
        "--eval",
        String(evalPort),
        "--ws",
        String(wsPort),
        "--rep",
        repUrl,
        "--socket",
        String(socketPort),
      ],
    );
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    assert.match(child.stderr, new RegExp(`eval +tcp://127\\.0\\.0\\.1:${evalPort}`));
    assert.match(child.stderr, new RegExp(`console +http://127\\.0\\.0\\.1:${wsPort}/`));
    {
      await using first = await connectEvalServer({ port: evalPort });
      await evalServer(first, "x", 1);
      await using second = await connectEvalServer({ port: evalPort });
      assert.equal(await evalServer(second, "x + 1"), 2);
    }
    {
      // An R-serialized string is code; the answer is the value, R-serialized (nanonext's way).
      await using req = await socket("req", { dial: repUrl });
      assert.equal(await request(req, "x + 1", { timeout: 10_000 }), 2);
      assert.deepEqual(await request(req, "({ n: x, tags: ['a', 'b'] })", { timeout: 10_000 }), {
        n: 1,
        tags: ["a", "b"],
      });
      assert.ok(isNulByte(await request(req, "throw new Error('no')", { timeout: 10_000 })));
    }
    const page = await fetch(`http://127.0.0.1:${wsPort}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/);
    {
      await using socket = await websocket(`ws://127.0.0.1:${wsPort}/ws`, {
        protocols: [CONSOLE_PROTOCOL],
      });
      await socket.write(JSON.stringify({ type: "eval", id: 1, code: "x * 40 + 2" }));
      for await (const message of socket) {
        assert.deepEqual(JSON.parse(String(message.data)), {
          type: "result",
          id: 1,
          text: "42",
          error: false,
        });
        break;
      }
    }
    {
      await using conn = await connect({ hostname: "127.0.0.1", port: socketPort });
      await conn.writeLine("relayed into the log");
    }
    await child.waitForOutput(/socket \[1\] relayed into the log\n/);
    child.child.kill("SIGTERM");
    const status = await child.finished();
    assert.equal(status.code, 143, child.stderr); // 128 + SIGTERM, as shells expect
    assert.match(child.stderr, /rsock serve: stopped/);
    for (const port of [evalPort, wsPort, socketPort, repPort]) {
      assert.ok(portIsFree(port), `${port} freed`);
    }
  });
});

Deno.test("serve: a token guards the eval endpoint; a non-loopback bind without one is refused", async () => {
  await withTimeout(30_000, async () => {
    const quiet = { write() {}, error() {}, isTerminal: false };
    assert.equal(await main(["serve", "--hostname", "0.0.0.0", "--eval", "0"], quiet), 2);
    const evalPort = freePort();
    await using child = rsock([`--allow-net=127.0.0.1:${evalPort}`, "--allow-sys", WORKER_READ], [
      "serve",
      "--eval",
      String(evalPort),
      "--token",
      "s3cret",
    ]);
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    {
      await using client = await connectEvalServer({ port: evalPort, token: "s3cret" });
      assert.equal(await evalServer(client, "6 * 7"), 42);
    }
    await assert.rejects(async () => {
      await using client = await connectEvalServer({ port: evalPort, token: "wrong" });
      await evalServer(client, "6 * 7");
    });
    child.child.kill("SIGTERM");
    assert.equal((await child.finished()).code, 143);
  });
});

Deno.test("serve: with a token, a tcp:// or ws:// REP door is refused before anything starts", async () => {
  await withTimeout(30_000, async () => {
    for (const repUrl of [`tcp://127.0.0.1:${freePort()}`, `ws://127.0.0.1:${freePort()}/sp`]) {
      const port = Number(new URL(repUrl.replace(/^\w+:/, "http:")).port);
      await using child = rsock([`--allow-net=127.0.0.1:${port}`, "--allow-sys"], [
        "serve",
        "--rep",
        repUrl,
        "--token",
        "s3cret",
      ]);
      assert.equal((await child.finished()).code, 2, child.stderr);
      assert.match(
        child.stderr,
        /with a token, the REP endpoint listens on ipc:\/\/ only .* use e\.g\. --rep ipc:\/\//,
      );
      assert.doesNotMatch(child.stderr, /rsock serve: one session/, "nothing was started");
      assert.ok(portIsFree(port));
    }
  });
});

Deno.test("serve: with a token, --pub on tcp:// is refused before anything starts", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using child = rsock([`--allow-net=127.0.0.1:${port}`, "--allow-sys"], [
      "serve",
      "--pub",
      `tcp://127.0.0.1:${port}`,
      "--token",
      "s3cret",
    ]);
    assert.equal((await child.finished()).code, 2, child.stderr);
    assert.match(child.stderr, /with a token, the session's output is published on ipc:\/\/ only/);
    assert.doesNotMatch(child.stderr, /rsock serve: one session/, "nothing was started");
    assert.ok(portIsFree(port));
  });
});

Deno.test("serve: with a token, the ipc:// REP and pub doors' socket files are owner-only (0600)", async () => {
  await withTimeout(30_000, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/rsock.ipc`;
      const pubPath = `${dir}/rsock-pub.ipc`;
      const evalPort = freePort();
      Deno.env.set("RSOCK_TEST_TOKEN", "s3cret");
      await using child = rsock(
        [
          `--allow-net=127.0.0.1:${evalPort},unix:${path},unix:${pubPath}`,
          "--allow-sys",
          "--allow-env=RSOCK_TEST_TOKEN",
          `--allow-read=${path},${pubPath}`,
          `--allow-write=${path},${pubPath}`,
          WORKER_READ,
        ],
        [
          "serve",
          "--eval",
          String(evalPort),
          "--rep",
          `ipc://${path}`,
          "--pub",
          `ipc://${pubPath}`,
          "--token-env",
          "RSOCK_TEST_TOKEN",
        ],
      );
      await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
      for (const file of [path, pubPath]) {
        const info = await Deno.stat(file);
        assert.ok(info.isSocket);
        assert.equal((info.mode! & 0o777).toString(8), "600", file);
      }
      // This user (the file's owner) is served, and sees the session's output.
      await using monitor = await nngSocket("sub", { dial: `ipc://${pubPath}`, subscribe: "" });
      await monitor.waitForPipes();
      await using req = await socket("req", { dial: `ipc://${path}` });
      assert.equal(await request(req, "6 * 7", { timeout: 10_000 }), 42);
      assert.equal(await monitor.recv({ mode: "string", timeout: 10_000 }), "eval 42");
      child.child.kill("SIGTERM");
      assert.equal((await child.finished()).code, 143, child.stderr);
    } finally {
      Deno.env.delete("RSOCK_TEST_TOKEN");
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("serve --pub: evaluations that print nothing publish nothing", async () => {
  await withTimeout(30_000, async () => {
    await using child = rsock(
      ["--allow-net=127.0.0.1", "--allow-sys", WORKER_READ],
      ["serve", "--eval", "0", "--pub", "tcp://127.0.0.1:0"],
    );
    const banner = await child.waitForOutput(
      /pub +(tcp:\/\/127\.0\.0\.1:\d+)[\s\S]*eval +tcp:\/\/127\.0\.0\.1:(\d+)/,
    );
    const [, pubUrl, evalPort] = banner;
    await using monitor = await nngSocket("sub", { dial: pubUrl!, subscribe: "" });
    await monitor.waitForPipes();
    // A client's set-up lines, a declaration and a void expression print nothing; then one
    // result. Messages keep their order on the one pipe, so the first one shows what leaked.
    await using client = await connectEvalServer({ port: Number(evalPort) });
    assert.equal(await client.send("let quiet = 41"), "");
    assert.equal(await client.send("void quiet"), "");
    await using cli = rsock([`--allow-net=127.0.0.1:${evalPort}`], [
      "eval",
      "--port",
      evalPort!,
      "quiet + 1",
    ]);
    assert.equal((await cli.finished()).code, 0, cli.stderr);
    assert.equal(cli.stdout, "42\n");
    assert.equal(await monitor.recv({ mode: "string", timeout: 10_000 }), "eval 42");
    child.child.kill("SIGTERM");
    assert.equal((await child.finished()).code, 143, child.stderr);
  });
});

Deno.test("serve --rep: a failed request keeps the error byte on the wire, and serve prints why", async () => {
  await withTimeout(30_000, async () => {
    await using child = rsock(
      ["--allow-net=127.0.0.1", "--allow-sys", WORKER_READ],
      ["serve", "--rep", "tcp://127.0.0.1:0"],
    );
    const url = (await child.waitForOutput(/rep +(tcp:\/\/127\.0\.0\.1:\d+)/))[1]!;
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    await using req = await socket("req", { dial: url });
    // nanonext's convention: an R-serialized request that fails gets the error value.
    const reply = await request(req, "nope + 1", { timeout: 10_000 });
    assert.ok(isNulByte(reply), `the error value, got ${String(reply)}`);
    await child.waitForOutput(
      /rsock serve: rep: rep pipe \d+ \(127\.0\.0\.1:\d+\): Uncaught ReferenceError: nope is not defined \(in: nope \+ 1\); replied with the error value/,
    );
    assert.ok(isNulByte(await request(req, 42, { timeout: 10_000 })));
    await child.waitForOutput(/R serialization of a numeric \(42\), not a character string/);
    // Bounded as accept faults are: 10 lines a window, the rest counted and summed up.
    for (let i = 0; i < 12; i++) {
      assert.ok(isNulByte(await request(req, `flood${i}`, { timeout: 10_000 })));
    }
    child.child.kill("SIGTERM");
    assert.equal((await child.finished()).code, 143, child.stderr);
    const printed = child.stderr.split("\n").filter((line) =>
      line.startsWith("rsock serve: rep: ")
    );
    assert.equal(printed.length, 11, child.stderr);
    assert.match(printed.at(-1)!, /rsock serve: rep: 4 more reports not shown .*flood11/);
  });
});
