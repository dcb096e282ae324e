/**
 * The SP-over-WebSocket listener (`rsock serve --rep ws://…`) and web pages: any page the user
 * opens can open a WebSocket to 127.0.0.1, and a request there is code to run. Browser origins
 * and unknown Host names are refused by default, as the console refuses them; NNG's own
 * clients (no Origin) still connect.
 */
import assert from "node:assert/strict";
import { request, serve, socket } from "../../reqrep/mod.ts";
import { CONSOLE_PROTOCOL, serveConsole } from "../../ws/mod.ts";
import { interopTest, withTimeout } from "../_peers.ts";
import { TestProcess } from "../_process.ts";
import { foreignPage } from "./_foreign_page.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends a WebSocket handshake by hand and returns the response's status code. */
function handshake(
  port: number,
  headers: Record<string, string>,
  where: { path: string; protocol: string } = { path: "/sp", protocol: "rep.sp.nanomsg.org" },
): Promise<number> {
  return rawStatus(port, [
    `GET ${where.path} HTTP/1.1`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    `Sec-WebSocket-Protocol: ${where.protocol}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ]);
}

Deno.test("SP over WebSocket refuses browser origins and unknown Host names", async (t) => {
  await withTimeout(20_000, async () => {
    const errors: Error[] = [];
    await using rep = await socket("rep", {
      listen: "ws://127.0.0.1:0/sp",
      allowedOrigins: ["https://app.example"],
      onError: (e) => errors.push(e),
    });
    const serving = serve(rep, (x) => x, { recvMode: "raw", sendMode: "raw" });
    const port = Number(new URL(rep.urls[0]!).port);
    const host = `127.0.0.1:${port}`;

    await t.step("a page on a foreign origin gets 403", async () => {
      assert.equal(await handshake(port, { Host: host, Origin: "https://evil.example" }), 403);
      assert.equal(await handshake(port, { Host: host, Origin: "null" }), 403);
      assert.equal(await handshake(port, { Host: host, Origin: "http://localhost:1234" }), 403);
    });

    await t.step("a Host name it does not know (DNS rebinding) gets 403", async () => {
      assert.equal(await handshake(port, { Host: `evil.example:${port}` }), 403);
      assert.equal(
        await handshake(port, {
          Host: `evil.example:${port}`,
          Origin: `http://evil.example:${port}`,
        }),
        403,
      );
      assert.equal(await handshake(port, {}), 403); // no Host at all
    });

    await t.step("no Origin (not a browser), or an allowed one, is accepted", async () => {
      assert.equal(await handshake(port, { Host: host }), 101);
      assert.equal(await handshake(port, { Host: `localhost:${port}` }), 101);
      assert.equal(await handshake(port, { Host: host, Origin: "https://app.example" }), 101);
    });

    await t.step("rsock's own REQ still gets its answer", async () => {
      await using req = await socket("req", { dial: rep.urls[0]! });
      const answer = await request(req, encoder.encode("ping"), {
        sendMode: "raw",
        recvMode: "string",
        timeout: 5000,
      });
      assert.equal(answer, "ping");
    });
    assert.deepEqual(errors.filter((e) => !/WebSocket closed/.test(e.message)), []);
    await rep.close();
    await serving;
  });
});

Deno.test("an opaque Origin (file://, data:, an extension's page) gets 403, not a 500 and a stack trace", async (t) => {
  await withTimeout(20_000, async () => {
    // Browsers send such origins as the text "null"; a hand-made or older client may send the
    // URL itself, which URL.origin turns into "null". Both are foreign pages.
    const opaque = ["file://", "data:text/html,x", "chrome-extension://abcdef", "null"];
    await t.step("SP over WebSocket", async () => {
      const errors: Error[] = [];
      await using rep = await socket("rep", {
        listen: "ws://127.0.0.1:0/sp",
        onError: (e) => errors.push(e),
      });
      const port = Number(new URL(rep.urls[0]!).port);
      for (const origin of opaque) {
        assert.equal(
          await handshake(port, { Host: `127.0.0.1:${port}`, Origin: origin }),
          403,
          origin,
        );
      }
      assert.deepEqual(errors, []);
    });
    await t.step("the console", async () => {
      const ran: string[] = [];
      await using page = serveConsole({
        port: 0,
        session: (code) => (ran.push(code), Promise.resolve({ text: "", error: false })),
      });
      const where = { path: "/ws", protocol: CONSOLE_PROTOCOL };
      for (const origin of opaque) {
        assert.equal(
          await handshake(page.port, { Host: `127.0.0.1:${page.port}`, Origin: origin }, where),
          403,
          origin,
        );
      }
      // The page's own origin still opens.
      const self = `http://127.0.0.1:${page.port}`;
      assert.equal(
        await handshake(page.port, { Host: `127.0.0.1:${page.port}`, Origin: self }, where),
        101,
      );
      assert.deepEqual(ran, []);
    });
  });
});

/** Sends one raw HTTP request and returns the response's status code. */
async function rawStatus(port: number, lines: string[]): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
    const buffer = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
    const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
    assert.ok(status !== null, `no HTTP status line in ${JSON.stringify(text)}`);
    return Number(status[1]);
  } finally {
    conn.close();
  }
}

Deno.test("a malformed WebSocket upgrade gets 400, not a 500 and a stack trace", async (t) => {
  await withTimeout(20_000, async () => {
    // Deno.upgradeWebSocket throws on these; uncaught, Deno.serve answered 500 and printed the
    // stack on stderr for every such request (a log flood from any local process).
    const malformed = (path: string, port: number, protocol: string) => [
      [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        `Sec-WebSocket-Protocol: ${protocol}`,
      ],
      [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        "Upgrade: websocket",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        `Sec-WebSocket-Protocol: ${protocol}`,
      ],
    ];
    await t.step("SP over WebSocket", async () => {
      await using rep = await socket("rep", { listen: "ws://127.0.0.1:0/sp" });
      const serving = serve(rep, (x) => x, { recvMode: "raw", sendMode: "raw" });
      const port = Number(new URL(rep.urls[0]!).port);
      for (const lines of malformed("/sp", port, "rep.sp.nanomsg.org")) {
        assert.equal(await rawStatus(port, lines), 400, lines.join(" | "));
      }
      await using req = await socket("req", { dial: rep.urls[0]! });
      assert.equal(
        await request(req, encoder.encode("ping"), {
          sendMode: "raw",
          recvMode: "string",
          timeout: 5000,
        }),
        "ping",
      );
      await rep.close();
      await serving;
    });
    await t.step("the WebSocket server (the console's)", async () => {
      await using page = serveConsole({
        port: 0,
        session: () => Promise.resolve({ text: "", error: false }),
      });
      for (const lines of malformed("/ws", page.port, CONSOLE_PROTOCOL)) {
        assert.equal(await rawStatus(page.port, lines), 400, lines.join(" | "));
      }
      const self = `http://127.0.0.1:${page.port}`;
      assert.equal(
        await handshake(page.port, { Host: `127.0.0.1:${page.port}`, Origin: self }, {
          path: "/ws",
          protocol: CONSOLE_PROTOCOL,
        }),
        101,
      );
    });
  });
});

interopTest(
  "nngcat --req over ws:// is still answered (it sends no Origin)",
  ["nngcat"],
  async () => {
    await withTimeout(20_000, async () => {
      await using rep = await socket("rep", { listen: "ws://127.0.0.1:0/sp" });
      const serving = serve(rep, (x) => x, { recvMode: "raw", sendMode: "raw" });
      await using cat = new TestProcess("/usr/bin/nngcat", [
        "--req",
        "--dial",
        rep.urls[0]!,
        "--data",
        "1+1",
        "--ascii",
        "--recv-timeout",
        "5",
      ]);
      assert.equal((await cat.finished()).code, 0, cat.stderr);
      assert.equal(cat.stdout, "1+1");
      await rep.close();
      await serving;
    });
  },
);

interopTest(
  "a page on a foreign origin in Chromium cannot reach a ws:// REP endpoint",
  ["chromium"],
  async () => {
    await withTimeout(60_000, async () => {
      const received: string[] = [];
      await using rep = await socket("rep", { listen: "ws://127.0.0.1:0/sp" });
      const serving = serve(rep, (x) => {
        received.push(decoder.decode(x as Uint8Array));
        return x;
      }, { recvMode: "raw", sendMode: "raw" });
      // The attacker's page: another origin (another port), which tries the REP endpoint by
      // its IP and by localhost, and sends code if a socket opens.
      {
        await using foreign = await foreignPage("127.0.0.1");
        const page = foreign.page;
        const port = Number(new URL(rep.urls[0]!).port);
        for (const host of ["127.0.0.1", "localhost"]) {
          const outcome = await page.evaluate(({ host, port }) =>
            new Promise<string>((resolve) => {
              const ws = new WebSocket(`ws://${host}:${port}/sp`, ["rep.sp.nanomsg.org"]);
              ws.binaryType = "arraybuffer";
              ws.onopen = () => {
                // An SP request over WebSocket: a 4-byte request id, then the body.
                ws.send(new Uint8Array([0x80, 0, 0, 1, ...new TextEncoder().encode("pwned")]));
                setTimeout(() => resolve("opened"), 300);
              };
              ws.onerror = () => resolve("refused");
            }), { host, port });
          assert.equal(outcome, "refused", `page reached ws://${host}:${port}/sp`);
        }
      }
      assert.deepEqual(received, []);
      await rep.close();
      await serving;
    });
  },
);
