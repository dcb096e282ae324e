/**
 * Debian's python3-websockets (10.4) against rsock's ws server and client.
 */
import assert from "node:assert/strict";
import { createServer, websocket, type WsData } from "../../ws/mod.ts";
import { interopTest, withTimeout } from "../_peers.ts";

const PYTHON = "/usr/bin/python3";

// A python client: sends text, binary, then an oversize message, and reports each answer and
// the close code as JSON lines.
const CLIENT_SCRIPT = `
import asyncio, json, sys, websockets
async def main(url):
    async with websockets.connect(url, subprotocols=["rsock.v1", "chat"]) as ws:
        print(json.dumps({"protocol": ws.subprotocol}), flush=True)
        await ws.send("héllo")
        print(json.dumps({"text": await ws.recv()}), flush=True)
        await ws.send(bytes([0, 1, 2, 255]))
        reply = await ws.recv()
        print(json.dumps({"binary": list(reply), "type": type(reply).__name__}), flush=True)
        await ws.send(b"x" * 2048)
        try:
            await ws.recv()
            print(json.dumps({"unexpected": "reply"}), flush=True)
        except websockets.ConnectionClosed as e:
            print(json.dumps({"code": e.code, "reason": e.reason}), flush=True)
asyncio.run(main(sys.argv[1]))
`;

// A python echo server on a free port; prints the port, echoes, reports the close code.
const SERVER_SCRIPT = `
import asyncio, json, websockets
async def handler(ws, path=None):
    print(json.dumps({"protocol": ws.subprotocol}), flush=True)
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    print(json.dumps({"closed": ws.close_code, "reason": ws.close_reason}), flush=True)
async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["chat"]) as server:
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        await asyncio.Future()
asyncio.run(main())
`;

// A python client over a Unix socket: one echo.
const UNIX_SCRIPT = `
import asyncio, sys, websockets
async def main(path):
    async with websockets.unix_connect(path, "ws://localhost/") as ws:
        await ws.send("over unix")
        print(await ws.recv(), flush=True)
asyncio.run(main(sys.argv[1]))
`;

async function* jsonLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
  }
}

interopTest("python3-websockets client against the rsock server", [
  "python3-websockets",
], async () => {
  await withTimeout(30_000, async () => {
    const received: string[] = [];
    await using server = createServer({
      port: 0,
      protocols: ["chat"],
      maxMessageSize: 1024,
      receive(data, client, header) {
        received.push(`${header.binary ? "binary" : "text"} ${header.length} ${client.protocol}`);
        client.write(data);
      },
    });
    const child = new Deno.Command(PYTHON, {
      args: ["-c", CLIENT_SCRIPT, server.url],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const lines: unknown[] = [];
      for await (const line of jsonLines(child.stdout)) lines.push(line);
      assert.deepEqual(lines, [
        { protocol: "chat" },
        { text: "héllo" },
        { binary: [0, 1, 2, 255], type: "bytes" },
        { code: 1009, reason: "message of 2048 bytes exceeds the 1024-byte limit" },
      ]);
      assert.deepEqual(received, ["text 6 chat", "binary 4 chat"]);
      assert.equal((await child.status).code, 0);
    } finally {
      try {
        child.kill();
      } catch {
        // already exited
      }
      await child.status;
    }
  });
});

interopTest("rsock client against a python3-websockets server", [
  "python3-websockets",
], async () => {
  await withTimeout(30_000, async () => {
    const child = new Deno.Command(PYTHON, {
      args: ["-c", SERVER_SCRIPT],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = jsonLines(child.stdout);
    try {
      const { port } = (await lines.next()).value as { port: number };
      const got: WsData[] = [];
      const client = await websocket(`ws://127.0.0.1:${port}/`, {
        protocols: ["other", "chat"],
        receive: (data) => got.push(data),
      });
      assert.equal(client.protocol, "chat");
      assert.deepEqual((await lines.next()).value, { protocol: "chat" });
      await client.write("ünïcode");
      await client.write(new Uint8Array([9, 8, 7]));
      await client.write("x".repeat(100_000));
      while (got.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(got.slice(0, 2), ["ünïcode", new Uint8Array([9, 8, 7])]);
      assert.equal(got[2], "x".repeat(100_000));
      client.close(4000, "done here");
      const info = await client.closed;
      assert.equal(info.code, 4000);
      assert.deepEqual((await lines.next()).value, { closed: 4000, reason: "done here" });
    } finally {
      child.kill();
      await child.status;
      await lines.return(undefined);
    }
  });
});

interopTest("python3-websockets client over the rsock server's Unix socket", [
  "python3-websockets",
], async () => {
  await withTimeout(30_000, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await using server = createServer({
        path: `${dir}/ws.sock`,
        receive: (data, client) => client.write(`echo: ${data}`),
      });
      const result = await new Deno.Command(PYTHON, {
        args: ["-c", UNIX_SCRIPT, server.path!],
        stdout: "piped",
        stderr: "inherit",
        signal: AbortSignal.timeout(20_000),
      }).output();
      assert.equal(new TextDecoder().decode(result.stdout), "echo: over unix\n");
      assert.ok(result.success);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
