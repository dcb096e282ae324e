/**
 * The eval door and the console under attack: token guessing, clients that never read, buffers
 * that would grow without bound. Each case checks the door with a fresh healthy client after.
 */
import assert from "node:assert/strict";
import { connectEvalServer, startEvalServer } from "../../eval/mod.ts";
import { withTimeout } from "../_peers.ts";

const encoder = new TextEncoder();

/** Writes all of `bytes`, stopping quietly when the server closes or resets the connection. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  try {
    let offset = 0;
    while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
  } catch {
    // closed by the server: what some cases expect
  }
}

/** Everything the server sends until it closes the connection (or resets it). */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(65_536);
  let text = "";
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n), { stream: true });
    }
  } catch {
    // reset: what was read so far is the answer
  }
  return text;
}

Deno.test("eval faults: one token guess per connection; the rest of the write is never run", async () => {
  await withTimeout(20_000, async () => {
    await using server = await startEvalServer({ port: 0, token: "right-token" });
    const key = `rsockGuessed${Date.now()}`;
    const guesses = Array.from({ length: 4_999 }, (_, i) => `wrong-${i}`).join("\n");
    const attack = `${guesses}\nright-token\nglobalThis.${key} = "ran"\n`;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    let received: string;
    try {
      [, received] = await Promise.all([writeAll(conn, encoder.encode(attack)), readToEnd(conn)]);
    } finally {
      conn.close();
    }
    // A healthy client with the token: the door answers, and the attacker's code never ran.
    await using good = await connectEvalServer({ port: server.port, token: "right-token" });
    assert.equal(await good.send(`typeof globalThis.${key}`), '"undefined"', "the code ran");
    assert.equal(await good.send("1 + 1"), "2");
    assert.equal(
      received,
      "Error: wrong token; the first line must be the server's token\r\n",
      "one error line, then the connection is closed",
    );
  });
});
