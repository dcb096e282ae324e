import assert from "node:assert/strict";
import { ConnectionError, CONSOLE_PROTOCOL, serveConsole, websocket } from "../ws/mod.ts";
import { withTimeout } from "./_peers.ts";

Deno.test("ws console service: page, JSON protocol, pushes, token", async (t) => {
  await withTimeout(15_000, async () => {
    // A small real evaluator: the console only needs evaluate(code) -> { text, error }.
    const scope: Record<string, number> = {};
    await using service = serveConsole({
      port: 0,
      token: "s3cret",
      session: (code) => {
        const assignment = /^(\w+) = (\d+)$/.exec(code);
        if (assignment !== null) {
          scope[assignment[1]!] = Number(assignment[2]);
          return Promise.resolve({ text: assignment[2]!, error: false });
        }
        if (code === "boom") return Promise.reject(new Error("evaluator exploded"));
        if (code in scope) return Promise.resolve({ text: String(scope[code]), error: false });
        return Promise.resolve({ text: `ReferenceError: ${code} is not defined`, error: true });
      },
    });
    const base = `http://127.0.0.1:${service.port}`;
    const wsUrl = `ws://127.0.0.1:${service.port}/ws?token=s3cret`;

    await t.step("the page needs the token and loads nothing from elsewhere", async () => {
      const refused = await fetch(`${base}/`);
      assert.equal(refused.status, 403);
      await refused.body?.cancel();
      const page = await fetch(service.url);
      assert.equal(page.status, 200);
      const html = await page.text();
      assert.match(html, /<textarea id="input"/);
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
      assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
      const missing = await fetch(`${base}/other?token=s3cret`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    });

    await t.step("a websocket without the token is refused", async () => {
      await assert.rejects(
        websocket(`ws://127.0.0.1:${service.port}/ws`, { protocols: CONSOLE_PROTOCOL }),
        ConnectionError,
      );
    });

    await t.step(
      "unknown host names are refused (DNS rebinding), IP and localhost pass",
      async () => {
        // fetch cannot set Host, so speak HTTP by hand.
        const status = async (host: string, upgrade: boolean) => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: service.port });
          try {
            const lines = upgrade
              ? [
                "GET /ws?token=s3cret HTTP/1.1",
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                `Sec-WebSocket-Protocol: ${CONSOLE_PROTOCOL}`,
                `Origin: http://${host}`,
              ]
              : ["GET /?token=s3cret HTTP/1.1", "Connection: close"];
            const request = [...lines, `Host: ${host}`, "", ""].join("\r\n");
            await conn.write(new TextEncoder().encode(request));
            const buffer = new Uint8Array(64);
            const n = await conn.read(buffer);
            return new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split(" ")[1];
          } finally {
            conn.close();
          }
        };
        const port = service.port;
        assert.equal(await status(`rebind.example:${port}`, false), "403");
        assert.equal(await status(`rebind.example:${port}`, true), "403");
        assert.equal(await status(`localhost:${port}`, false), "200");
        assert.equal(await status(`127.0.0.1:${port}`, true), "101");
      },
    );

    await t.step("eval requests get results and errors by id; pushes reach the page", async () => {
      await using page = await websocket(wsUrl, { protocols: CONSOLE_PROTOCOL });
      assert.equal(page.protocol, CONSOLE_PROTOCOL);
      const replies: unknown[] = [];
      const next = async () => {
        for await (const message of page) return JSON.parse(String(message.data));
      };
      for (const [id, code] of [[1, "x = 40"], [2, "x"], [3, "y"], [4, "boom"]] as const) {
        await page.write(JSON.stringify({ type: "eval", id, code }));
        replies.push(await next());
      }
      assert.deepEqual(replies, [
        { type: "result", id: 1, text: "40", error: false },
        { type: "result", id: 2, text: "40", error: false },
        { type: "result", id: 3, text: "ReferenceError: y is not defined", error: true },
        { type: "result", id: 4, text: "evaluator exploded", error: true },
      ]);
      assert.equal(service.pages, 1);
      assert.equal(service.push("hello pages"), 1);
      assert.deepEqual(await next(), { type: "push", text: "hello pages" });
      await page.write("not json");
      assert.equal((await page.closed).code, 1008);
    });
  });
});
