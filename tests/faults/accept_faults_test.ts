/**
 * Faults at accept time, on every listening door: clients that reset before they are accepted
 * (RST with `SO_LINGER 0`, which only Python can set here) and a process out of file
 * descriptors (`ulimit -n 120`, 150 connections held). After each, a fresh client must be
 * served, and the door's error callback must have been told once per kind of fault.
 */
import assert from "node:assert/strict";
import { startEvalServer } from "../../eval/mod.ts";
import { request, serve, socket } from "../../reqrep/mod.ts";
import { listen } from "../../socket/mod.ts";
import { createServer } from "../../ws/mod.ts";
import { hasPeer, withTimeout } from "../_peers.ts";
import { TestProcess } from "../_process.ts";

const PYTHON = "/usr/bin/python3";
const NNGCAT = "/usr/bin/nngcat";
const DOOR = new URL("./_door.ts", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Target = { port: number } | { path: string };

/**
 * Connects and closes `count` times with SO_LINGER (1, 0): the kernel sends RST, not FIN. Run
 * synchronously, so this process's event loop cannot accept any of them before the reset: each
 * is then still in the backlog, and its accept fails with `NotConnected` (os error 107).
 */
function resetConnections(target: Target, count: number): void {
  const address = "port" in target
    ? `socket.AF_INET, ("127.0.0.1", ${target.port})`
    : `socket.AF_UNIX, ${JSON.stringify(target.path)}`;
  const script = [
    "import socket, struct",
    `family, address = ${address}`,
    `for _ in range(${count}):`,
    "    s = socket.socket(family)",
    "    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))",
    "    s.connect(address)",
    "    s.close()",
  ].join("\n");
  const out = new Deno.Command(PYTHON, { args: ["-c", script], stderr: "piped" }).outputSync();
  assert.ok(out.success, decoder.decode(out.stderr));
}

function connectTo(target: Target): Promise<Deno.Conn> {
  return "port" in target
    ? Deno.connect({ hostname: "127.0.0.1", port: target.port })
    : Deno.connect({ transport: "unix", path: target.path });
}

/** Sends `line` and reads until the reply matches `expected`; throws if the peer closes. */
async function lineExchange(target: Target, line: string, expected: RegExp): Promise<string> {
  const conn = await connectTo(target);
  try {
    await conn.write(encoder.encode(line + "\n"));
    const buffer = new Uint8Array(4096);
    let received = "";
    while (!expected.test(received)) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error(`connection closed after ${JSON.stringify(received)}`);
      received += decoder.decode(buffer.subarray(0, n));
    }
    return received;
  } finally {
    conn.close();
  }
}

/** A WebSocket round trip: sends `text`, resolves with the first message back. */
async function wsExchange(url: string, text: string, protocol?: string): Promise<unknown> {
  const ws = protocol === undefined ? new WebSocket(url) : new WebSocket(url, protocol);
  ws.binaryType = "arraybuffer";
  const closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
  try {
    return await new Promise((resolve, reject) => {
      ws.addEventListener("open", () => ws.send(text), { once: true });
      ws.addEventListener("message", (event) => resolve(event.data), { once: true });
      ws.addEventListener("error", () => reject(new Error(`WebSocket to ${url} failed`)), {
        once: true,
      });
    });
  } finally {
    ws.close();
    await closed;
  }
}

/** Retries `attempt` while it fails (a door that is restarting refuses for a moment). */
async function eventually<T>(what: string, attempt: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`${what} still failing after ${ms} ms`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function nngcatRequest(url: string, data: string): Promise<string> {
  await using cat = new TestProcess(NNGCAT, [
    "--req",
    "--dial",
    url,
    "--data",
    data,
    "--ascii",
    "--recv-timeout",
    "5",
  ]);
  const status = await cat.finished();
  assert.equal(status.code, 0, cat.stderr);
  return cat.stdout;
}

async function rsockRequest(url: string, data: string): Promise<string> {
  await using req = await socket("req", { dial: url });
  const answer = await request(req, encoder.encode(data), {
    sendMode: "raw",
    recvMode: "string",
    timeout: 5000,
  });
  return answer as string;
}

const RESETS = 5;
const STEP_MS = 15_000;
const resetReports = (errors: Error[]) =>
  errors.filter((error) => /reset its connection before it was accepted/.test(error.message));

/** A step bounded in time: a door that stopped accepting fails it instead of hanging. */
function step(t: Deno.TestContext, name: string, ms: number, fn: () => Promise<void>) {
  return t.step(name, () => withTimeout(ms, fn));
}

Deno.test("accept faults: clients that reset before accept end no listener", async (t) => {
  {
    await step(t, "eval server", STEP_MS, async () => {
      const errors: Error[] = [];
      await using server = await startEvalServer({ port: 0, onError: (e) => errors.push(e) });
      resetConnections({ port: server.port }, RESETS);
      assert.match(await lineExchange({ port: server.port }, "1+1", /\n/), /^2\r\n/);
      assert.equal(resetReports(errors).length, 1, errors.map((e) => e.message).join("\n"));
      assert.equal(errors.length, 1);
      assert.ok(errors[0]!.cause instanceof Deno.errors.NotConnected);
    });

    for (const transport of ["tcp", "ipc"] as const) {
      await step(t, `reqrep REP over ${transport}`, STEP_MS, async () => {
        const errors: Error[] = [];
        const path = `/tmp/rsock-faults-${Deno.pid}.ipc`;
        await using rep = await socket("rep", {
          listen: transport === "tcp" ? "tcp://127.0.0.1:0" : `ipc://${path}`,
          onError: (e) => errors.push(e),
        });
        const serving = serve(rep, (x) => x, { recvMode: "raw", sendMode: "raw" });
        const url = rep.urls[0]!;
        const target = transport === "tcp" ? { port: Number(new URL(url).port) } : { path };
        resetConnections(target, RESETS);
        assert.equal(await rsockRequest(url, "ping"), "ping");
        if (hasPeer("nngcat")) assert.equal(await nngcatRequest(url, "1+1"), "1+1");
        // Unix sockets have no RST: the reset peer is accepted and reads as closed.
        assert.equal(resetReports(errors).length, transport === "tcp" ? 1 : 0);
        await rep.close();
        await serving;
      });
    }

    for (const transport of ["tcp", "unix"] as const) {
      await step(t, `socket server over ${transport}`, STEP_MS, async () => {
        const errors: Error[] = [];
        const path = `/tmp/rsock-faults-${Deno.pid}.sock`;
        await using server = listen({
          ...(transport === "tcp" ? { port: 0, hostname: "127.0.0.1" } : { path }),
          framing: "line",
          onError: (e) => errors.push(e),
        });
        const target = transport === "tcp" ? { port: server.port } : { path };
        resetConnections(target, RESETS);
        await using client = await connectTo(target);
        await client.write(encoder.encode("hello after resets\n"));
        for await (const message of server) {
          if (message.text === "hello after resets") break;
        }
        assert.equal(resetReports(errors).length, transport === "tcp" ? 1 : 0);
      });
    }

    await step(t, "WebSocket server (Deno.serve) and SP over ws", STEP_MS, async () => {
      const errors: Error[] = [];
      await using server = createServer({
        port: 0,
        receive: (data, client) => client.write(`echo:${data}`),
        onAcceptError: (e) => errors.push(e),
      });
      await using rep = await socket("rep", {
        listen: "ws://127.0.0.1:0/sp",
        onError: (e) => errors.push(e),
      });
      const serving = serve(rep, (x) => x, { recvMode: "raw", sendMode: "raw" });
      resetConnections({ port: server.port }, RESETS);
      resetConnections({ port: Number(new URL(rep.urls[0]!).port) }, RESETS);
      assert.equal(await wsExchange(server.url, "hi"), "echo:hi");
      assert.equal(await rsockRequest(rep.urls[0]!, "ping"), "ping");
      assert.deepEqual(errors, []);
      await rep.close();
      await serving;
    });
  }
});

/**
 * Runs `door` under `ulimit -n 120`, holds 150 connections to it, lets them go and returns the
 * door's process (still running) with its address; the caller then checks a fresh client.
 */
async function starve(
  args: string[],
  target: (address: string) => Target,
): Promise<{ door: TestProcess; address: string }> {
  const door = new TestProcess("/bin/sh", [
    "-c",
    `ulimit -n 120; DENO_NO_UPDATE_CHECK=1 exec "${Deno.execPath()}" run -A ${DOOR} "$@"`,
    "door",
    ...args,
  ], { stdin: "piped" });
  try {
    const address = (await door.waitForOutput(/READY (\S+)/))[1]!;
    const held: Deno.Conn[] = [];
    for (let i = 0; i < 150; i++) {
      try {
        held.push(await connectTo(target(address)));
      } catch {
        // refused: a Deno.serve door refuses while it is out of descriptors
      }
    }
    // The door must tell of its shortage: without that report, it was never starved and the
    // fresh client the caller sends proves nothing.
    await door.waitForOutput(/ERROR .*(file descriptors|Too many open files)/, 10_000);
    for (const conn of held) conn.close();
    return { door, address };
  } catch (error) {
    await door[Symbol.asyncDispose]();
    throw error;
  }
}

async function stop(door: TestProcess): Promise<void> {
  await door.child.stdin.close();
  const status = await door.finished();
  assert.equal(status.code, 0, door.stderr);
  assert.match(door.stdout, /STOPPED/);
}

/** The `ERROR` lines a door printed about running out of descriptors. */
function shortageReports(door: TestProcess): string[] {
  return door.stdout.split("\n").filter((line) =>
    /^ERROR .*(file descriptors|Too many open files)/.test(line)
  );
}

const tcp = (address: string): Target => ({
  port: Number(/^\d+$/.test(address) ? address : new URL(address).port),
});

Deno.test("accept faults: a door out of file descriptors serves again once they are back", async (t) => {
  {
    await step(t, "eval server", STEP_MS, async () => {
      const { door, address } = await starve(["eval"], tcp);
      await using _ = door;
      const reply = await eventually("eval", () => lineExchange(tcp(address), "1+1", /\n/));
      assert.match(reply, /^2\r\n/);
      assert.equal(shortageReports(door).length, 1, door.stdout);
      await stop(door);
    });

    for (const transport of ["tcp", "ipc", "ws"] as const) {
      await step(t, `reqrep REP over ${transport}`, STEP_MS, async () => {
        const path = `/tmp/rsock-starve-${Deno.pid}.ipc`;
        const url = transport === "tcp"
          ? "tcp://127.0.0.1:0"
          : transport === "ipc"
          ? `ipc://${path}`
          : "ws://127.0.0.1:0/sp";
        const { door, address } = await starve(
          ["rep", url],
          (bound) => transport === "ipc" ? { path } : tcp(bound),
        );
        await using _ = door;
        assert.equal(await eventually("rsock REQ", () => rsockRequest(address, "ping")), "ping");
        if (hasPeer("nngcat")) assert.equal(await nngcatRequest(address, "1+1"), "1+1");
        assert.ok(shortageReports(door).length >= 1, door.stdout);
        assert.ok(shortageReports(door).length <= 2, door.stdout); // accept, and restart (ws)
        await stop(door);
      });
    }

    for (const transport of ["tcp", "unix"] as const) {
      await step(t, `socket server over ${transport}`, STEP_MS, async () => {
        const path = `/tmp/rsock-starve-${Deno.pid}.sock`;
        const { door, address } = await starve(
          transport === "tcp" ? ["socket-tcp"] : ["socket-unix", path],
          (bound) => transport === "tcp" ? tcp(bound) : { path },
        );
        await using _ = door;
        const target = transport === "tcp" ? tcp(address) : { path };
        const reply = await eventually("socket", () => lineExchange(target, "hello", /got:hello/));
        assert.match(reply, /got:hello\n/);
        assert.equal(shortageReports(door).length, 1, door.stdout);
        await stop(door);
      });
    }

    await step(t, "WebSocket server (Deno.serve)", STEP_MS, async () => {
      const { door, address } = await starve(["ws"], tcp);
      await using _ = door;
      const url = `ws://127.0.0.1:${address}/`;
      assert.equal(await eventually("ws", () => wsExchange(url, "hi")), "echo:hi");
      assert.ok(shortageReports(door).length >= 1, door.stdout);
      await stop(door);
    });
  }
});

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/** `rsock ARGS` under `ulimit -n 120`. */
function starvedCli(args: string[]): TestProcess {
  return new TestProcess("/bin/sh", [
    "-c",
    `ulimit -n 120; DENO_NO_UPDATE_CHECK=1 exec "${Deno.execPath()}" run -A ${CLI} "$@"`,
    "rsock",
    ...args,
  ]);
}

/** Opens up to `count` connections to each port at once, then closes them all. */
async function flood(ports: number[], count: number): Promise<void> {
  const held: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) {
    for (const port of ports) {
      try {
        held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      } catch {
        // refused: the door is out of descriptors too
      }
    }
  }
  for (const conn of held) conn.close();
}

Deno.test("accept faults: rsock serve and rsock listen print them and keep serving", async (t) => {
  await step(t, "rsock serve --eval --rep --socket", 30_000, async () => {
    await using serve = starvedCli([
      "serve",
      "--eval",
      "0",
      "--rep",
      "tcp://127.0.0.1:0",
      "--socket",
      "0",
    ]);
    const evalPort = Number((await serve.waitForOutput(/eval +tcp:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const repUrl = (await serve.waitForOutput(/rep +(tcp:\/\/127\.0\.0\.1:\d+)/))[1]!;
    const socketPort = Number((await serve.waitForOutput(/socket +127\.0\.0\.1:(\d+)/))[1]);
    // One door at a time, each alone past the descriptor limit: every door must run out,
    // whatever order the three accept loops run in.
    for (const port of [evalPort, Number(new URL(repUrl).port), socketPort]) {
      await flood([port], 150);
    }
    const reply = await eventually("eval", () => lineExchange({ port: evalPort }, "1+1", /\n/));
    assert.match(reply, /^2\r\n/);
    if (hasPeer("nngcat")) {
      assert.equal(await eventually("nngcat", () => nngcatRequest(repUrl, "1+1")), "2");
    }
    await eventually("socket", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: socketPort });
      await conn.write(encoder.encode("hello after the flood\n"));
      conn.close();
      await serve.waitForOutput(/hello after the flood/, 1000);
    });
    for (const door of ["eval", "rep", "socket"]) {
      const reports = serve.stderr.split("\n").filter((line) =>
        line.startsWith(`rsock serve: ${door}: `) && /out of file descriptors/.test(line)
      );
      assert.equal(reports.length, 1, `${door}:\n${serve.stderr}`);
    }
    serve.child.kill("SIGTERM");
    assert.equal((await serve.finished()).code, 143, serve.stderr);
  });

  await step(t, "rsock listen", 30_000, async () => {
    await using listener = starvedCli(["listen", "--port", "0", "--lines"]);
    const port = Number((await listener.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/))[1]);
    await flood([port], 150);
    await eventually("listen", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(encoder.encode("hello after the flood\n"));
      conn.close();
      await listener.waitForOutput(/hello after the flood/, 1000);
    });
    const reports = listener.stderr.split("\n").filter((line) =>
      /^rsock: .*out of file descriptors/.test(line)
    );
    assert.equal(reports.length, 1, listener.stderr);
    listener.child.kill("SIGTERM");
    assert.equal((await listener.finished()).code, 143, listener.stderr);
  });
});
