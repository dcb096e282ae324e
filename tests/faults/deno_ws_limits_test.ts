/**
 * Pinned: how Deno 2.9's own WebSocket server (under `ws/`, the console and SP over ws) treats
 * frames RFC 6455 forbids. rsock cannot change this (the frames never reach JavaScript), so it
 * is written down in the README's known limits, and pinned here: when Deno changes, this test
 * fails and the README line must go.
 *
 * - An unmasked client frame is accepted and delivered (RFC 6455 §5.1: the server must close).
 * - A malformed frame (RSV bit without extension, reserved opcode, invalid UTF-8 text, control
 *   frame over 125 bytes, close frame with a 1-byte payload) drops the TCP connection without
 *   the close frame 1002 / 1007 the RFC asks for (§7.1.7, §8.1).
 * - A close code not allowed on the wire (999) is answered with close 1002, as it should be.
 */
import assert from "node:assert/strict";
import { createServer } from "../../ws/mod.ts";
import { withTimeout } from "../_peers.ts";

const encoder = new TextEncoder();

async function upgrade(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  const buffer = new Uint8Array(1024);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    assert.ok(n !== null, "closed during the handshake");
    head += new TextDecoder().decode(buffer.subarray(0, n));
  }
  assert.match(head, /^HTTP\/1\.1 101 /);
  return conn;
}

/** Reads until the server closes; returns every byte it sent. */
async function readToEnd(conn: Deno.Conn): Promise<number[]> {
  const bytes: number[] = [];
  const buffer = new Uint8Array(1024);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      bytes.push(...buffer.subarray(0, n));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  } finally {
    conn.close();
  }
  return bytes;
}

/** A client frame (FIN set), masked with a fixed key unless `masked` is false. */
function frame(first: number, payload: number[], masked = true): Uint8Array {
  assert.ok(payload.length < 126);
  if (!masked) return new Uint8Array([first, payload.length, ...payload]);
  const key = [0x11, 0x22, 0x33, 0x44];
  return new Uint8Array([
    first,
    0x80 | payload.length,
    ...key,
    ...payload.map((byte, i) => byte ^ key[i % 4]!),
  ]);
}

Deno.test("pinned Deno limits: its WebSocket server and frames RFC 6455 forbids", async (t) => {
  await withTimeout(20_000, async () => {
    await using server = createServer({
      port: 0,
      receive: (data, client) => client.write(data),
      idleTimeout: 0,
    });

    await t.step("an unmasked client frame is accepted and delivered", async () => {
      const conn = await upgrade(server.port);
      await conn.write(frame(0x81, [...encoder.encode("hello")], false));
      const echo = new Uint8Array(7);
      let got = 0;
      while (got < echo.length) {
        const n = await conn.read(echo.subarray(got));
        assert.ok(n !== null, "the server closed instead of delivering the unmasked frame");
        got += n;
      }
      // The server echoed it: the frame was delivered to JavaScript as "hello".
      assert.deepEqual([...echo], [0x81, 5, ...encoder.encode("hello")]);
      conn.close();
    });

    const malformed: [string, Uint8Array][] = [
      ["RSV1 set without an extension", frame(0x81 | 0x40, [0x68, 0x69])],
      ["a reserved opcode (0x3)", frame(0x83, [1, 2])],
      ["invalid UTF-8 in a text frame", frame(0x81, [0xff, 0xfe])],
      [
        "a ping over 125 bytes",
        (() => {
          const payload = new Array(126).fill(0);
          return new Uint8Array([0x89, 126, 0, 126, 0, 0, 0, 0, ...payload]);
        })(),
      ],
    ];
    for (const [what, bytes] of malformed) {
      await t.step(`${what}: the TCP connection drops with no close frame`, async () => {
        const conn = await upgrade(server.port);
        await conn.write(bytes);
        // RFC 6455 asks for close 1002 (1007 for bad UTF-8) first: 0x88 0x02 0x03 0xea / 0xef.
        assert.deepEqual(await readToEnd(conn), []);
      });
    }

    await t.step("a close frame with a 1-byte payload: also dropped without a close", async () => {
      const conn = await upgrade(server.port);
      await conn.write(frame(0x88, [0x03]));
      assert.deepEqual(await readToEnd(conn), []);
    });

    await t.step("a close code not allowed on the wire (999) is answered with 1002", async () => {
      const conn = await upgrade(server.port);
      await conn.write(frame(0x88, [0x03, 0xe7]));
      assert.deepEqual(await readToEnd(conn), [0x88, 2, 0x03, 0xea]);
    });
  });
});
