import assert from "node:assert/strict";
import { createServer, websocket, type WsClient } from "../ws/mod.ts";
import { waitFor, withTimeout } from "./_peers.ts";

/** A websocket client that completes the handshake and then never reads a byte. */
async function neverReadingClient(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ),
  );
  const buffer = new Uint8Array(1024);
  const n = await conn.read(buffer);
  assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1.1 101/);
  return conn;
}

Deno.test("ws backpressure: a client that never reads stays within the bound", async (t) => {
  await withTimeout(30_000, async () => {
    const bound = 1 << 20;
    const message = new Uint8Array(64 * 1024);

    await t.step("broadcast closes it with 1008 once the bound is reached", async () => {
      await using server = createServer({ port: 0, maxBufferedAmount: bound });
      const conn = await neverReadingClient(server.port);
      try {
        await waitFor("established", () => server.clients.length === 1);
        const slow = server.clients[0]!;
        let readerGot = 0;
        await using reader = await websocket(server.url, { receive: () => readerGot++ });
        let maxBuffered = 0;
        // 600 x 64 KiB = 37.5 MiB offered, paced by a reader that keeps up. The server holds
        // at most the bound plus one message for the slow client (the kernel's socket buffers,
        // a few MiB on loopback, take the first bytes before anything is held in the process).
        for (let i = 0; i < 600; i++) {
          server.broadcast(message);
          if (slow.open) maxBuffered = Math.max(maxBuffered, slow.bufferedAmount);
          if (i - readerGot > 8) await waitFor("the reader", () => i - readerGot <= 2);
        }
        await waitFor("the reader to get all", () => readerGot === 600);
        assert.equal(slow.open, false);
        assert.ok(maxBuffered > 0, "the slow client never had anything held");
        assert.ok(maxBuffered <= bound + message.length, `held ${maxBuffered} bytes`);
        // The reading client was unaffected and stays open.
        assert.equal(reader.open, true);
      } finally {
        conn.close();
      }
      await waitFor("slow client gone", () => server.clients.length === 1);
    });

    await t.step("write waits for room; an abort signal stops the wait", async () => {
      await using server = createServer({ port: 0, maxBufferedAmount: bound });
      const conn = await neverReadingClient(server.port);
      try {
        await waitFor("established", () => server.clients.length === 1);
        const slow = server.clients[0]!;
        const controller = new AbortController();
        let written = 0;
        const writing = (async () => {
          for (let i = 0; i < 3000; i++) {
            await server.write(message, slow, { signal: controller.signal });
            written++;
          }
        })();
        await waitFor("the writer to block", async () => {
          const before = written;
          await new Promise((resolve) => setTimeout(resolve, 100));
          return written === before && written > 0;
        });
        assert.ok(slow.bufferedAmount <= bound + message.length);
        controller.abort(new Error("gave up"));
        await assert.rejects(writing, /gave up/);
        assert.ok(written < 3000);
        // Graceful shutdown does not hang on a peer that cannot take the close frame.
        await server.close({ timeout: 200 });
      } finally {
        conn.close();
      }
    });
  });
});

Deno.test("ws broadcast: 500 clients receive every message once, in order", async () => {
  await withTimeout(60_000, async () => {
    await using server = createServer({ port: 0 });
    const clients: WsClient[] = [];
    const received: string[][] = [];
    try {
      for (let i = 0; i < 500; i++) {
        const got: string[] = [];
        received.push(got);
        clients.push(await websocket(server.url, { receive: (data) => got.push(String(data)) }));
      }
      await waitFor("500 established", () => server.clients.length === 500);
      const expected = Array.from({ length: 20 }, (_, i) => `message ${i}`);
      for (const text of expected) assert.equal(server.broadcast(text), 500);
      await waitFor("every delivery", () => received.every((got) => got.length >= 20));
      for (const got of received) assert.deepEqual(got, expected);
    } finally {
      await Promise.all(clients.map((client) => client[Symbol.asyncDispose]()));
    }
  });
});
