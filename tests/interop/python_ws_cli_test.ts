/**
 * `rsock ws` against Debian's python3-websockets, both ways: rsock's client on a python server,
 * python's client on `rsock ws --listen`.
 */
import assert from "node:assert/strict";
import { freePort, interopTest, withTimeout } from "../_peers.ts";
import { rsock, TestProcess } from "../_process.ts";

const PYTHON = "/usr/bin/python3";

// Echoes text as "echo: TEXT" and answers binary with "binary N [bytes]"; prints its port.
const SERVER_SCRIPT = `
import asyncio, json, websockets
async def handler(ws, path=None):
    async for message in ws:
        if isinstance(message, bytes):
            await ws.send("binary %d %s" % (len(message), list(message)))
        else:
            await ws.send("echo: " + message + " (" + str(ws.subprotocol) + ")")
async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["chat"]) as server:
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        await asyncio.Future()
asyncio.run(main())
`;

// Connects, sends one message, prints the first message it gets back, and leaves.
const CLIENT_SCRIPT = `
import asyncio, sys, websockets
async def main(url):
    async with websockets.connect(url, subprotocols=["chat"]) as ws:
        print("protocol", ws.subprotocol, flush=True)
        await ws.send("from python é")
        print("got", await ws.recv(), flush=True)
asyncio.run(main(sys.argv[1]))
`;

async function type(child: TestProcess, text: string): Promise<void> {
  const writer = child.child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  writer.releaseLock();
}

interopTest("rsock ws: client against a python server (text, binary, subprotocol)", [
  "python3-websockets",
], async () => {
  await withTimeout(30_000, async () => {
    await using server = new TestProcess(PYTHON, ["-c", SERVER_SCRIPT]);
    const [, port] = await server.waitForOutput(/"port": (\d+)/);
    const url = `ws://127.0.0.1:${port}/`;
    {
      await using client = rsock([`--allow-net=127.0.0.1:${port}`], [
        "ws",
        url,
        "--protocol",
        "chat",
      ], { stdin: "piped" });
      await client.waitForOutput(/connected to .* \(protocol chat\)/);
      await type(client, "hello\nhéllo\n");
      await client.waitForOutput(/echo: héllo/);
      await client.child.stdin.close();
      assert.equal((await client.finished()).code, 0, client.stderr);
      assert.equal(client.stdout, "echo: hello (chat)\necho: héllo (chat)\n");
    }
    {
      await using client = rsock([`--allow-net=127.0.0.1:${port}`], ["ws", url, "--binary"], {
        stdin: "piped",
      });
      await type(client, "ab\n");
      await client.waitForOutput(/binary/);
      await client.child.stdin.close();
      assert.equal((await client.finished()).code, 0, client.stderr);
      assert.equal(client.stdout, "binary 2 [97, 98]\n");
    }
  });
});

interopTest("rsock ws --listen: a python client's message printed, --broadcast reaches it", [
  "python3-websockets",
], async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using server = rsock([`--allow-net=127.0.0.1:${port}`], [
      "ws",
      "--listen",
      String(port),
      "--protocol",
      "chat",
      "--broadcast",
    ], { stdin: "piped" });
    await server.waitForOutput(/listening on ws:\/\/127\.0\.0\.1:\d+\//);
    await using client = new TestProcess(PYTHON, ["-c", CLIENT_SCRIPT, `ws://127.0.0.1:${port}/`]);
    await server.waitForOutput(/\[1\] from python é\n/);
    assert.match(server.stderr, /client 1 connected from 127\.0\.0\.1:\d+ \(protocol chat\)/);
    await type(server, "to everyone\n");
    assert.equal((await client.finished()).code, 0, client.stderr);
    assert.equal(client.stdout, "protocol chat\ngot to everyone\n");
    // End of input ends the broadcasts, not the server: that takes a signal.
    await server.child.stdin.close();
    server.child.kill("SIGTERM");
    assert.equal((await server.finished()).code, 143, server.stderr);
    assert.equal(server.stdout, "[1] from python é\n");
  });
});
