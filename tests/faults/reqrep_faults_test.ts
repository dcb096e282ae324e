/**
 * Fault injection against the REQ/REP doors: requests that are not what they look like, peers
 * that never read, peers that are not there. Each case checks the door with a healthy client
 * afterwards.
 */
import assert from "node:assert/strict";
import { request, serialize, serve, socket } from "../../reqrep/mod.ts";
import { freePort, interopTest, waitFor, withTimeout } from "../_peers.ts";
import { rsock, type TestProcess, WORKER_READ } from "../_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `rsock serve --rep tcp://…` as a subprocess, ready to answer. */
async function serveRep(): Promise<{ child: TestProcess; url: string }> {
  const port = freePort();
  const url = `tcp://127.0.0.1:${port}`;
  const child = rsock([`--allow-net=127.0.0.1:${port}`, "--allow-sys", WORKER_READ], [
    "serve",
    "--rep",
    url,
  ]);
  await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
  return { child, url };
}

Deno.test("serve --rep: 100 requests that only look like R serialization end no loop", async () => {
  await withTimeout(60_000, async () => {
    const { child, url } = await serveRep();
    await using _child = child;
    await using req = await socket("req", { dial: url });
    const truncated = serialize("1 + 1").subarray(0, 20);
    const bodies: [Uint8Array, string | Uint8Array | undefined][] = [
      // Starts with "A" and is longer than 12 bytes: the R decoder's first guess.
      [encoder.encode("Array.from([1,2,3]).length"), "3"],
      [encoder.encode("Boolean(1) && 'B starts me'"), '"B starts me"'],
      [encoder.encode("X\n= 'not XDR at all, still text'"), '"not XDR at all, still text"'],
      // 0x07 (nanonext's header byte), then text: valid UTF-8, so it is code (a SyntaxError).
      [Uint8Array.of(0x07, ...encoder.encode("not a nanonext header")), undefined],
      // A broken R stream and bytes that are not UTF-8: the error reply.
      [
        Uint8Array.of(0x42, 0x0a, 0xff, 0xfe, 0xfd, 0, 0, 0, 0xc3, 0x28, 0, 0, 0, 9),
        Uint8Array.of(0),
      ],
      [truncated, undefined],
    ];
    for (let i = 0; i < 100; i++) {
      const [body, expected] = bodies[i % bodies.length]!;
      const answer = await request(req, body, {
        sendMode: "raw",
        recvMode: "raw",
        timeout: 10_000,
      }) as Uint8Array;
      if (expected instanceof Uint8Array) assert.deepEqual(answer, expected, `request ${i}`);
      else if (expected !== undefined) assert.equal(decoder.decode(answer), expected);
      else assert.ok(answer.length > 0, `request ${i} answered`);
    }
    // A healthy nanonext-style request is still answered, R-serialized.
    assert.equal(await request(req, "20 + 22", { timeout: 10_000 }), 42);
  });
});

interopTest("serve --rep: nngcat sends Array.from([1,2,3]).length 8 times, all answered", [
  "nngcat",
], async () => {
  await withTimeout(60_000, async () => {
    const { child, url } = await serveRep();
    await using _child = child;
    // Each of these (over 12 bytes, starting with "A") must be answered; none may end one of
    // the 4 serving loops.
    for (let i = 0; i < 8; i++) {
      const { stdout, success } = await new Deno.Command("/usr/bin/nngcat", {
        args: ["--req", "--dial", url, "--data", "Array.from([1,2,3]).length", "--ascii"],
        stdout: "piped",
        stderr: "null",
        signal: AbortSignal.timeout(10_000),
      }).output();
      assert.ok(success, `nngcat request ${i}`);
      assert.equal(decoder.decode(stdout).trim(), "3");
    }
  });
});

/**
 * A REQ peer made by hand: connects (tcp://, or ws:// with the upgrade request), sends
 * requests, and never reads a byte.
 */
class NonReader {
  readonly conn: Deno.TcpConn;
  readonly #ws: boolean;
  #nextId = 1;

  private constructor(conn: Deno.TcpConn, ws: boolean) {
    this.conn = conn;
    this.#ws = ws;
  }

  static async connect(url: string): Promise<NonReader> {
    const where = new URL(url.replace(/^(tcp|ws):/, "http:"));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(where.port) });
    const ws = url.startsWith("ws:");
    const peer = new NonReader(conn, ws);
    await peer.#write(
      ws
        ? encoder.encode(
          `GET ${where.pathname} HTTP/1.1\r\nHost: ${where.host}\r\nUpgrade: websocket\r\n` +
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n\r\n",
        )
        : Uint8Array.of(0x00, 0x53, 0x50, 0x00, 0x00, 0x30, 0x00, 0x00),
    );
    return peer;
  }

  /** Sends `count` requests of `body` in one write. */
  async send(count: number, body: Uint8Array): Promise<void> {
    // TCP: u64 length; WebSocket: a masked binary frame (mask key 0) of under 126 bytes.
    const prefix = this.#ws ? 6 : 8;
    const size = prefix + 4 + body.length;
    const frames = new Uint8Array(size * count);
    const view = new DataView(frames.buffer);
    for (let i = 0; i < count; i++) {
      if (this.#ws) {
        frames[i * size] = 0x82;
        frames[i * size + 1] = 0x80 | (4 + body.length);
      } else {
        view.setBigUint64(i * size, BigInt(4 + body.length));
      }
      view.setUint32(i * size + prefix, (0x80000000 | this.#nextId++) >>> 0);
      frames.set(body, i * size + prefix + 4);
    }
    await this.#write(frames);
  }

  async #write(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length;) {
      offset += await this.conn.write(bytes.subarray(offset));
    }
  }

  close(): void {
    this.conn.close();
  }
}

/** Bytes waiting unread in the receive queue of the local TCP socket `port` ↔ `peerPort`. */
function receiveQueue(port: number, peerPort: number): number | undefined {
  const { stdout } = new Deno.Command("cat", { args: ["/proc/net/tcp"] }).outputSync();
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
  for (const line of decoder.decode(stdout).split("\n").slice(1)) {
    const [, local, remote, , queues] = line.trim().split(/\s+/);
    if (local?.endsWith(`:${hex(port)}`) && remote?.endsWith(`:${hex(peerPort)}`)) {
      return parseInt(queues!.split(":")[1]!, 16);
    }
  }
  return undefined;
}

Deno.test("serve(): a REQ peer that never reads costs at most maxPendingBytes and stalls no one", async (t) => {
  for (const listen of ["tcp://127.0.0.1:0", "ws://127.0.0.1:0/sp"]) {
    await t.step(listen.split(":")[0]!, () =>
      withTimeout(30_000, async () => {
        const errors: Error[] = [];
        await using rep = await socket("rep", {
          listen,
          maxPendingBytes: 1024 * 1024,
          onError: (error) => errors.push(error),
        });
        const controller = new AbortController();
        let executed = 0;
        const serving = serve(rep, () => (executed++, new Uint8Array(1024 * 1024)), {
          recvMode: "raw",
          sendMode: "raw",
          signal: controller.signal,
        });
        // 200 replies of 1 MiB for a peer that reads none: far past what kernel buffers hold.
        const stuck = await NonReader.connect(rep.urls[0]!);
        try {
          await stuck.send(200, encoder.encode("big"));
          // No context may wait on a send to the stuck peer (16 of them would stop after ~16
          // requests, silently): the full queue is reported, and requests keep running.
          await waitFor("the full queue reported", () => errors.length > 0);
          // TCP reads the whole batch and runs it; a WebSocket drops what arrives once the
          // peer's replies are over the bound (the WebSocket API cannot pause reading).
          if (listen.startsWith("tcp")) await waitFor("200 run", () => executed === 200);
          assert.match(errors[0]!.message, /is not reading its replies: \d+ bytes wait for it/);
          assert.equal(errors.length, 1, "one report per pipe, not one per dropped reply");
          await using req = await socket("req", { dial: rep.urls[0]! });
          const started = performance.now();
          const answer = await request(req, "small", {
            sendMode: "raw",
            recvMode: "raw",
            timeout: 5_000,
          }) as Uint8Array;
          assert.equal(answer.length, 1024 * 1024);
          assert.ok(performance.now() - started < 5_000);
          if (listen.startsWith("tcp")) {
            // Its pipe was waiting in a read: the next batch is read and run (201 + 200)...
            await stuck.send(200, encoder.encode("big"));
            await waitFor("the second batch run", () => executed === 401);
            // ...but with its replies still unread, no more of its requests are read or run:
            // the third batch stays in the server's kernel receive queue.
            await stuck.send(200, encoder.encode("big"));
            const server = Number(rep.urls[0]!.split(":")[2]);
            const client = stuck.conn.localAddr.port;
            await waitFor(
              "the third batch left unread",
              () => receiveQueue(server, client) === 200 * (8 + 4 + 3),
            );
            assert.equal(
              (await request(req, "small", {
                sendMode: "raw",
                recvMode: "raw",
                timeout: 5_000,
              }) as Uint8Array).length,
              1024 * 1024,
            );
            assert.equal(executed, 402);
          }
        } finally {
          stuck.close();
          controller.abort();
          await serving;
        }
      }));
  }
});

/** Resident memory of a process in bytes, from /proc (read by `cat`: Deno asks --allow-all). */
function residentBytes(pid: number): number {
  const { stdout } = new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).outputSync();
  const status = decoder.decode(stdout);
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (kib === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib[1]) * 1024;
}

Deno.test("serve --rep: a peer sending 250 requests for 4 MB replies and never reading stalls no one; memory stays bounded", async () => {
  await withTimeout(60_000, async () => {
    const { child, url } = await serveRep();
    await using _child = child;
    await using req = await socket("req", { dial: url });
    assert.equal(await request(req, "1 + 1", { timeout: 10_000 }), 2);
    const before = residentBytes(child.child.pid);
    // 250 replies of 4 MB each (R-serialized requests get whole values back, not printed
    // text): 1 GB if every reply were kept for the peer. What the server does keep is
    // 16 MiB; the rest of its growth is garbage V8 has not collected yet (measured
    // 170–270 MB for 100 or 200 such replies alike).
    const stuck = await NonReader.connect(url);
    try {
      await stuck.send(250, serialize("new Uint8Array(4_000_000)"));
      await child.waitForOutput(/rep: pipe \d+ .* is not reading its replies/);
      // Queued behind the flood: answered once the flood is evaluated, not when it is read
      // (250 evaluations of 4 MB: the bound leaves room for a busy machine).
      assert.equal(await request(req, "'a' + 'b'", { timeout: 40_000 }), "ab");
      const grown = residentBytes(child.child.pid) - before;
      assert.ok(grown < 512 * 1024 * 1024, `the server grew ${grown} bytes`);
    } finally {
      stuck.close();
    }
    assert.equal(await request(req, "'still' + ' here'", { timeout: 10_000 }), "still here");
  });
});

Deno.test("REP: a peer that resets mid-handshake is reported as a reset, not as a 10 s timeout", async () => {
  await withTimeout(15_000, async () => {
    const errors: Error[] = [];
    await using rep = await socket("rep", {
      listen: "tcp://127.0.0.1:0",
      onError: (error) => errors.push(error),
    });
    const port = Number(rep.urls[0]!.split(":")[2]);
    // Half an SP header, then RST (SO_LINGER 0), after the server's own header has arrived.
    const script = [
      "import socket, struct, time",
      `s = socket.create_connection(("127.0.0.1", ${port}))`,
      "s.sendall(b'\\x00SP\\x00')",
      "s.recv(8, socket.MSG_PEEK)",
      "s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))",
      "s.close()",
    ].join("\n");
    const started = performance.now();
    const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", script] }).output();
    assert.ok(out.success);
    await waitFor("the drop reported", () => errors.length > 0);
    assert.ok(performance.now() - started < 5_000);
    assert.match(errors[0]!.message, /dropped: peer's connection failed after 4 of 8 header bytes/);
    assert.doesNotMatch(errors[0]!.message, /within \d+ ms/);
  });
});
