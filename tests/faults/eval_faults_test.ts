/**
 * The eval door and the console under attack: token guessing, clients that never read, buffers
 * that would grow without bound. Each case checks the door with a fresh healthy client after.
 */
import assert from "node:assert/strict";
import { connectEvalServer, startEvalServer } from "../../eval/mod.ts";
import { readLines } from "../../_internal/lines.ts";
import { CONSOLE_PROTOCOL, serveConsole, websocket } from "../../ws/mod.ts";
import { freePort, waitFor, withTimeout } from "../_peers.ts";
import { rsock, WORKER_READ } from "../_process.ts";
import { startRunaway } from "./_eval_children.ts";

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

/** Writes `chunks` until done or until no write progresses for `stallMs`; returns bytes written. */
async function writeUntilStalled(
  conn: Deno.Conn,
  chunks: Iterable<Uint8Array>,
  stallMs: number,
): Promise<number> {
  let written = 0;
  let progress = Date.now();
  const writing = (async () => {
    for (const chunk of chunks) {
      let offset = 0;
      while (offset < chunk.length) {
        offset += await conn.write(chunk.subarray(offset));
        progress = Date.now();
      }
      written += chunk.length;
    }
  })().catch(() => {});
  let done = false;
  writing.then(() => done = true);
  while (!done && Date.now() - progress < stallMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return written;
}

/** An eval server in a child process that reports its resident memory on request. */
class ServerProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stdout: AsyncIterator<string>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#stdout = readLines(child.stdout)[Symbol.asyncIterator]();
  }

  static async start(options: Record<string, unknown> = {}): Promise<[ServerProcess, number]> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        "--allow-sys",
        "--allow-read", // worker mode loads eval/_worker.ts
        new URL("./_eval_server_child.ts", import.meta.url).pathname,
        JSON.stringify(options),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const server = new ServerProcess(child);
    const banner = await server.#line();
    return [server, Number(/^port (\d+)$/.exec(banner)![1])];
  }

  async #line(): Promise<string> {
    const { value, done } = await this.#stdout.next();
    if (done) throw new Error("the server process ended");
    return value;
  }

  /** Its resident memory in bytes. */
  async rss(): Promise<number> {
    await this.#stdin.write(encoder.encode("rss\n"));
    return Number(/^rss (\d+)$/.exec(await this.#line())![1]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await this.#stdout.return?.();
    await this.#child.status;
  }
}

Deno.test("eval faults: a client that sends but never reads holds at most the backlog bound (server RSS)", async () => {
  await withTimeout(60_000, async () => {
    // Worker mode: the main thread, which reads and queues lines, stays free while the
    // session waits.
    const [server, port] = await ServerProcess.start({ worker: true });
    await using _server = server;
    {
      await using warm = await connectEvalServer({ port });
      assert.equal(await warm.send("1 + 1"), "2");
    }
    // The first line waits on a socket the test holds, so the lines after it queue up.
    const gate = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const gatePort = (gate.addr as Deno.NetAddr).port;
    const before = await server.rss();
    // 300 lines of 512 KiB behind it: the backlog is bounded in bytes, not lines (256 queued
    // lines of this size would be 128 MiB for one client).
    const line = encoder.encode(`"${"a".repeat(512 * 1024)}".length\n`);
    const waiting = encoder.encode(
      `await (await Deno.connect({ port: ${gatePort} })).read(new Uint8Array(1))\n`,
    );
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    let opened: Deno.Conn | undefined;
    try {
      const accepted = gate.accept().then((c) => opened = c);
      const written = await writeUntilStalled(conn, [waiting, ...Array(300).fill(line)], 1000);
      await accepted;
      const grown = await server.rss() - before;
      assert.ok(
        grown < 48 * 1048576,
        `server grew by ${(grown / 1048576).toFixed(1)} MiB after the client wrote ` +
          `${(written / 1048576).toFixed(1)} MiB it could not yet serve`,
      );
    } finally {
      conn.close();
      opened?.close(); // releases the waiting evaluation
      gate.close();
    }
    // The door still answers a fresh client.
    await using fresh = await connectEvalServer({ port });
    assert.equal(await fresh.send("2 + 2"), "4");
  });
});

Deno.test("eval faults: pushes to a client that never reads: cut off at maxUnsentBytes with a reason", async () => {
  await withTimeout(30_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await using pusher = await connectEvalServer({ port: server.port });
      // Name the stalled client, then push it 40 MiB it never reads.
      while (server.clients.length < 2) await new Promise((r) => setTimeout(r, 10));
      const target = server.clients[0]!; // the stalled one connected first
      assert.equal(
        await pusher.send(
          `const big = "p".repeat(1 << 20); ` +
            `for (let i = 0; i < 40; i++) sendSocketClients(big, "${target}"); "pushed"`,
        ),
        '"pushed"',
      );
      const received = await readToEnd(stalled);
      assert.ok(
        received.length < 24 * 1048576,
        `the stalled client got ${received.length} bytes: queued pushes should be dropped`,
      );
      assert.match(
        received.slice(-200),
        /Error: too slow: \d+ bytes not yet read by sock\d+, bound 8388608; closing\r\n$/,
      );
      assert.equal(await pusher.send("'still here'"), '"still here"');
    } finally {
      stalled.close();
    }
  });
});

Deno.test("eval faults: multi-line code counts against the line limit in total and is scanned in linear time", async (t) => {
  await withTimeout(120_000, async () => {
    await using server = await startEvalServer({ port: 0 });

    await t.step(
      "building code past maxLineBytes line by line: error reply and close",
      async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        try {
          const piece = `${"1,".repeat(32 * 1024)}\n`; // 64 KiB a line, 32 lines = 2 MiB
          const attack = `<<<e>>>[\n${piece.repeat(32)}`;
          const [, received] = await Promise.all([
            writeAll(conn, encoder.encode(attack)),
            readToEnd(conn),
          ]);
          assert.match(
            received,
            /Error: multi-line code longer than 1048576 bytes refused; send it in shorter pieces\r\n$/,
          );
        } finally {
          conn.close();
        }
      },
    );

    await t.step("50,000 short lines of one array: answered in seconds, not hours", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      try {
        const count = 50_000;
        const script = `<<<e>>>[\n${"1,\n".repeat(count)}].length\n<<<Q>>>\n`;
        // Linear scanning answers within the test's bound on any machine; a rescan per line
        // (quadratic) needs hours for this many lines.
        const [, received] = await Promise.all([
          writeAll(conn, encoder.encode(script)),
          readToEnd(conn),
        ]);
        assert.match(received, new RegExp(`\\r\\n${count}\\r\\n\\r\\n\\f:> \\r\\n$`));
      } finally {
        conn.close();
      }
    });

    await using fresh = await connectEvalServer({ port: server.port });
    assert.equal(await fresh.send("'ok'"), '"ok"');
  });
});

Deno.test("eval faults: settings kept per <<<id=NAME>>> are bounded (least recently used forgotten)", async () => {
  await withTimeout(60_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    await using keeper = await connectEvalServer({ port: server.port, name: "keeper" });
    await keeper.send("<<<h>>>parSocket(<<<s>>>, { prompt: 'K> ' })");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      // 5,000 names from one connection, each given its own prompt.
      let lines = "";
      for (let i = 0; i < 5_000; i++) {
        lines += `<<<id=n${i}>>><<<u>>>parSocket(<<<s>>>, { prompt: "p${i}" })\n`;
      }
      lines += "<<<Q>>>\n";
      await Promise.all([writeAll(conn, encoder.encode(lines)), readToEnd(conn)]);
    } finally {
      conn.close();
    }
    const prompt = (name: string) => keeper.send(`parSocket("${name}", ${server.port}).prompt`);
    assert.equal(await prompt("n4999"), '"p4999"', "recent names are kept");
    assert.equal(await prompt("n4100"), '"p4100"', "the last 1,000 or so are kept");
    assert.equal(await prompt("n0"), '":> "', "the oldest are forgotten");
    assert.equal(await prompt("keeper"), '"K> "', "a connected client's name is never forgotten");
  });
});

/** A console page over raw TCP that sends eval requests and reads nothing until told to. */
async function rawConsolePage(port: number): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(
    conn,
    encoder.encode(
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        `Sec-WebSocket-Protocol: ${CONSOLE_PROTOCOL}\r\n\r\n`,
    ),
  );
  // Read exactly the 101 response, nothing more.
  let head = "";
  const one = new Uint8Array(1);
  while (!head.endsWith("\r\n\r\n")) {
    if (await conn.read(one) === null) throw new Error(`upgrade refused: ${head}`);
    head += String.fromCharCode(one[0]!);
  }
  assert.match(head, /^HTTP\/1\.1 101/);
  return conn;
}

/** A masked (key 0) text frame, as a browser sends it. */
function textFrame(text: string): Uint8Array {
  const payload = encoder.encode(text);
  const header = payload.length < 126
    ? [0x81, 0x80 | payload.length]
    : payload.length < 65536
    ? [0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]
    : [
      0x81,
      0x80 | 127,
      0,
      0,
      0,
      0,
      ...new Uint8Array(new Uint32Array([payload.length]).buffer)
        .reverse(),
    ];
  const frame = new Uint8Array(header.length + 4 + payload.length);
  frame.set(header);
  frame.set(payload, header.length + 4); // the mask key stays 0: the payload as is
  return frame;
}

/**
 * Reads frames until the server's close frame (its code and reason) or the end of the
 * connection (undefined: Deno resets a connection it closes with unread input, and the reset
 * can overtake the close frame).
 */
async function untilClosed(
  conn: Deno.Conn,
): Promise<{ code: number; reason: string } | undefined> {
  let data = new Uint8Array(0);
  const buffer = new Uint8Array(1 << 20);
  while (true) {
    // Parse what is there.
    let offset = 0;
    while (data.length - offset >= 2) {
      const opcode = data[offset]! & 0x0f;
      let length = data[offset + 1]! & 0x7f;
      let start = offset + 2;
      if (length === 126) {
        if (data.length - offset < 4) break;
        length = (data[offset + 2]! << 8) | data[offset + 3]!;
        start = offset + 4;
      } else if (length === 127) {
        if (data.length - offset < 10) break;
        length = new DataView(data.buffer, data.byteOffset + offset + 2, 8).getUint32(4);
        start = offset + 10;
      }
      if (data.length < start + length) break;
      if (opcode === 0x8) {
        const body = data.subarray(start, start + length);
        return {
          code: (body[0]! << 8) | body[1]!,
          reason: new TextDecoder().decode(body.subarray(2)),
        };
      }
      offset = start + length;
    }
    data = data.slice(offset);
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch {
      return undefined; // reset
    }
    if (n === null) return undefined;
    const next = new Uint8Array(data.length + n);
    next.set(data);
    next.set(buffer.subarray(0, n), data.length);
    data = next;
  }
}

Deno.test("console faults: a page that never reads is closed at maxPendingBytes with 1008", async () => {
  await withTimeout(30_000, async () => {
    const result = "r".repeat(256 * 1024);
    await using service = serveConsole({
      port: 0,
      maxPendingBytes: 4 * 1048576,
      session: () => Promise.resolve({ text: result, error: false }),
    });
    const page = await rawConsolePage(service.port);
    try {
      // 400 results of 256 KiB (100 MiB) asked for, none read.
      const requests = Array.from(
        { length: 400 },
        (_, id) => textFrame(JSON.stringify({ type: "eval", id, code: "x" })),
      );
      await writeAll(page, concatFrames(requests));
      // The page must be closed: a server that keeps it open leaves this waiting for the
      // test's time limit.
      const close = await untilClosed(page);
      if (close !== undefined) {
        assert.equal(close.code, 1008);
        assert.match(
          close.reason,
          /^too slow: \d+ bytes of code and results pending, bound 4194304$/,
        );
      }
      await waitFor("the page to be gone", () => service.pages === 0);
    } finally {
      page.close();
    }
    // Another page is served as before.
    await using fresh = await websocket(`ws://127.0.0.1:${service.port}/ws`, {
      protocols: CONSOLE_PROTOCOL,
    });
    await fresh.write(JSON.stringify({ type: "eval", id: 1, code: "x" }));
    for await (const message of fresh) {
      assert.equal(JSON.parse(String(message.data)).text.length, result.length);
      break;
    }
  });
});

function concatFrames(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.length;
  }
  return out;
}

/** serve's worker module is read from the eval/ folder. */

Deno.test("serve faults: SIGTERM stops serve while code runs away (the session is in a worker by default)", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using serve = rsock(
      [`--allow-net=127.0.0.1:${port}`, "--allow-sys", WORKER_READ],
      ["serve", "--eval", String(port)],
    );
    await serve.waitForOutput(/Ctrl-C or SIGTERM stops/);
    assert.match(serve.stderr, /one session \(worker\)/);
    const { client: runaway, reply: pending } = await startRunaway(port);
    await using _runaway = runaway;
    await using other = await connectEvalServer({ port });
    const queued = other.send("'after'").catch((error) => error);
    const started = Date.now();
    serve.child.kill("SIGTERM");
    await serve.finished();
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds < 10, `serve took ${seconds} s to stop`);
    assert.match(serve.stderr, /rsock serve: stopped/);
    await pending.catch(() => {});
    await queued;
  });
});

Deno.test("serve faults: a lone <<<esc>>> from another client ends a runaway; the session answers again", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using serve = rsock(
      [`--allow-net=127.0.0.1:${port}`, "--allow-sys", WORKER_READ],
      ["serve", "--eval", String(port)],
    );
    await serve.waitForOutput(/Ctrl-C or SIGTERM stops/);
    const { client: runaway, reply: pending } = await startRunaway(port);
    await using _runaway = runaway;
    await using rescuer = await connectEvalServer({ port });
    await rescuer.interrupt(); // idle: sends "<<<esc>>>" as a line of its own
    assert.match(await pending, /^Interrupted: evaluation aborted; the worker was restarted/);
    assert.equal(await rescuer.send("1 + 1"), "2");
    assert.equal(await runaway.send("'back'"), '"back"');
  });
});
