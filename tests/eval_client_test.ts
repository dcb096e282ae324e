/**
 * The client against rsock's own server over TCP: send(), prompts, evalServer() both ways.
 */
import assert from "node:assert/strict";
import {
  connectEvalServer,
  evalServer,
  RemoteEvalError,
  startEvalServer,
  toRCode,
} from "../eval/mod.ts";
import { ConnectionError } from "../_internal/errors.ts";
import { waitFor, withTimeout } from "./_peers.ts";

Deno.test("eval client: send, console mode prompts, evalServer both ways", async (t) => {
  await withTimeout(20_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    await using conn = await connectEvalServer({ port: server.port, name: "tester" });
    await t.step("send returns the results, empty replies included", async () => {
      assert.equal(await conn.send("1 + 1"), "2");
      assert.equal(await conn.send("let c1 = 3"), "");
      assert.equal(await conn.send("console.log('x'); console.log('y'); c1"), "x\ny\n3");
      assert.equal(await conn.send("const c2 = [\n1, 2]\nc2.length"), "2", "newlines as <<<n>>>");
      assert.equal(await conn.send("throw new Error('no')"), "Uncaught Error: no");
      assert.equal(conn.prompt, "");
    });
    await t.step("console mode: echo and prompts", async () => {
      assert.equal(await conn.send("<<<e>>>if (true) {"), "");
      assert.equal(conn.prompt, ":+ ");
      assert.equal(await conn.send("'inside' }"), ":> if (true) {\n:+ 'inside' }\n\"inside\"");
      assert.equal(conn.prompt, ":> ");
      await conn.send("parSocket(<<<s>>>, { bare: true })");
      assert.equal(server.settings("tester").bare, true);
    });
    await t.step("evalServer returns values and assigns globals", async () => {
      assert.deepEqual(await evalServer(conn, "({ a: [1, 2], b: 'x' })"), { a: [1, 2], b: "x" });
      assert.equal(await evalServer(conn, "Promise.resolve(5)"), 5);
      assert.equal(await evalServer(conn, "undefined"), undefined);
      await evalServer(conn, "fromClient", { n: 41 });
      assert.equal(await evalServer(conn, "fromClient.n + 1"), 42);
      await assert.rejects(evalServer(conn, "nope.nope"), (error: unknown) => {
        assert.ok(error instanceof RemoteEvalError);
        assert.equal(error.message, "Uncaught ReferenceError: nope is not defined");
        return true;
      });
      delete (globalThis as Record<string, unknown>).fromClient;
    });
  });
});

Deno.test("eval client: errors name what went wrong", async () => {
  await withTimeout(10_000, async () => {
    const server = await startEvalServer({ port: 0 });
    const port = server.port;
    await server.close();
    await assert.rejects(connectEvalServer({ port }), (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.match(error.message, /^Cannot connect to "127\.0\.0\.1:\d+": connection refused$/);
      return true;
    });
    await assert.rejects(connectEvalServer({ port, name: "bad name" }), TypeError);
    await using again = await startEvalServer({ port: 0 });
    await using conn = await connectEvalServer({ port: again.port });
    const pending = conn.send(
      "<<<esc>>>stopSocketServer(); await new Promise((r) => setTimeout(r, 20))",
    );
    await assert.rejects(pending, ConnectionError);
  });
});

Deno.test("toRCode writes R literals for JSON-like values", () => {
  assert.equal(toRCode([1, 2.5]), "c(1, 2.5)");
  assert.equal(
    toRCode({ a: 'x"y', b: [true, false], c: null }),
    'list("a" = "x\\"y", "b" = c(TRUE, FALSE), "c" = NULL)',
  );
  assert.equal(toRCode([1, "a"]), 'list(1, "a")');
  assert.throws(() => toRCode(() => 1), TypeError);
});

async function selfSignedCertificate(): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "rsock_eval_tls_" });
  try {
    const { success, stderr } = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        // rustls refuses a CA certificate as the server's own.
        "basicConstraints=critical,CA:FALSE",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) throw new Error(new TextDecoder().decode(stderr));
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("eval client and server over TLS with a token", async () => {
  await withTimeout(20_000, async () => {
    const tls = await selfSignedCertificate();
    await using server = await startEvalServer({ port: 0, tls, token: "tok" });
    await using conn = await connectEvalServer({
      port: server.port,
      token: "tok",
      tls: { caCerts: [tls.cert] },
    });
    assert.equal(await evalServer(conn, "[1, 2].length"), 2);
    await using wrong = await connectEvalServer({
      port: server.port,
      token: "nope",
      tls: { caCerts: [tls.cert] },
    });
    await assert.rejects(
      wrong.send("1"),
      /closed the connection: Error: wrong token; the first line must be the server's token/,
    );
  });
});

Deno.test("eval client interrupt() stops a runaway on a worker-mode server", async () => {
  await withTimeout(20_000, async () => {
    await using server = await startEvalServer({ port: 0, worker: true });
    const spinning = Promise.withResolvers<void>();
    await using conn = await connectEvalServer({
      port: server.port,
      name: "runner",
      onPush: (text) => text === "spinning" && spinning.resolve(),
    });
    assert.equal(await conn.send("let before = 1; before"), "1");
    // The runaway says when it runs: an interrupt sent earlier has nothing to stop yet.
    const pending = conn.send("sendSocketClients('spinning', 'runner'); while (true) {}");
    await spinning.promise;
    await conn.interrupt();
    assert.match(await pending, /^Interrupted: evaluation aborted; .*state is lost$/);
    assert.equal(await conn.send("typeof before"), '"undefined"');
    // Server functions are forwarded from the worker to the host.
    // A host call is delivered before the reply that follows it.
    assert.equal(await conn.send("parSocket(<<<s>>>, { last: '' })"), "");
    assert.equal(server.settings("runner").last, "");
    await conn.send("sendSocketClients('pushed from the worker')");
  });
});

Deno.test("eval client onPush: pushes arrive apart from replies, while waiting or idle", async () => {
  await withTimeout(20_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    const pushes: string[] = [];
    await using watcher = await connectEvalServer({
      port: server.port,
      name: "watcher",
      onPush: (text) => pushes.push(text),
    });
    assert.equal(server.settings("watcher").framePushes, true);
    await using plain = await connectEvalServer({ port: server.port });
    // A push lands while the watcher waits for a slow reply: the reply stays its own.
    const pending = watcher.send(
      "await new Promise((r) => setTimeout(r, 200)); 'slow reply'",
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Evaluations run one at a time, so this push comes from the host, mid-evaluation.
    await server.push("line one\nline two", ["watcher"]);
    assert.equal(await pending, '"slow reply"');
    assert.deepEqual(pushes, ["line one\nline two"]);
    // While idle: delivered without any send. Without onPush a client gets svSocket's plain
    // text, which mixes into the reply it is waiting for (here its own).
    assert.equal(await plain.send("sendSocketClients('from code'); 'done'"), 'from code\n"done"');
    await waitFor("the idle push", () => pushes.length === 2);
    assert.equal(pushes[1], "from code");
    assert.equal(await watcher.send("1 + 1"), "2");
    assert.equal(await plain.send("2 + 2"), "4");
    await assert.rejects(
      connectEvalServer({ port: server.port, dialect: "r", onPush: () => {} }),
      /onPush needs an rsock server/,
    );
  });
});
