import assert from "node:assert/strict";
import {
  ConnectionError,
  createServer,
  websocket,
  type WsClient,
  type WsCloseInfo,
  type WsData,
} from "../ws/mod.ts";
import { waitFor, withTimeout } from "./_peers.ts";

/** How many timers `run` starts: each one a wake-up the event loop owes it. */
function timersStartedBy(run: () => void): number {
  const original = globalThis.setTimeout;
  let started = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    started++;
    return original(...args);
  }) as typeof setTimeout;
  try {
    run();
  } finally {
    globalThis.setTimeout = original;
  }
  return started;
}

/** Message `i` of a numbered run: 1 KiB, text for even `i`, binary for odd. */
function numbered(i: number): WsData {
  if (i % 2 === 0) return `${i}`.padEnd(1024, ".");
  const bytes = new Uint8Array(1024);
  new DataView(bytes.buffer).setUint32(0, i);
  return bytes;
}

/** The number a {@linkcode numbered} message carries, or -1 when it is not one. */
function numberOf(data: WsData): number {
  if (typeof data === "string") return data.length === 1024 ? Number.parseInt(data, 10) : -1;
  return data.length === 1024 ? new DataView(data.buffer, data.byteOffset).getUint32(0) : -1;
}

/** One websocket frame as a raw peer reads it: its opcode and (unmasked) payload. */
interface Frame {
  readonly opcode: number;
  readonly payload: Uint8Array;
}

/** Reads websocket frames from `conn` (after the handshake), one at a time, when asked. */
function frameReader(conn: Deno.Conn): () => Promise<Frame> {
  let buffered = new Uint8Array(0);
  const take = async (n: number): Promise<Uint8Array> => {
    while (buffered.length < n) {
      const chunk = new Uint8Array(64 * 1024);
      const read = await conn.read(chunk);
      if (read === null) throw new Error("the connection ended before a close frame");
      const joined = new Uint8Array(buffered.length + read);
      joined.set(buffered);
      joined.set(chunk.subarray(0, read), buffered.length);
      buffered = joined;
    }
    const out = buffered.slice(0, n);
    buffered = buffered.subarray(n);
    return out;
  };
  return async () => {
    const [first, second] = await take(2);
    let length = second! & 0x7f;
    if (length === 126) length = new DataView((await take(2)).buffer).getUint16(0);
    else if (length === 127) length = Number(new DataView((await take(8)).buffer).getBigUint64(0));
    const mask = (second! & 0x80) !== 0 ? await take(4) : undefined;
    const payload = await take(length);
    if (mask !== undefined) {
      for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    }
    return { opcode: first! & 0x0f, payload };
  };
}

/** The code of a close frame. */
function closeCodeOf(frame: Frame): number {
  return new DataView(frame.payload.buffer).getUint16(0);
}

/**
 * Reads websocket frames from `conn` (after the handshake) until a close frame and returns its
 * code: the peer's verdict, read once the test stops holding its reads back.
 */
async function closeCodeFrom(conn: Deno.Conn): Promise<number> {
  const next = frameReader(conn);
  while (true) {
    const frame = await next();
    if (frame.opcode === 8) return closeCodeOf(frame);
  }
}

/** A listener that answers one websocket upgrade and then never reads a byte. */
function neverReadingServer(): { url: string; accepted: Promise<Deno.Conn>; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(4096);
    let request = "";
    while (!request.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("the client left during its handshake");
      request += new TextDecoder().decode(buffer.subarray(0, n));
    }
    const key = /sec-websocket-key: *([^\r]+)/i.exec(request)?.[1];
    assert.ok(key !== undefined, "no Sec-WebSocket-Key in the handshake");
    const digest = await crypto.subtle.digest(
      "SHA-1",
      new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await conn.write(
      new TextEncoder().encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ),
    );
    return conn;
  })();
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: `ws://127.0.0.1:${port}/`,
    accepted,
    close: () => listener.close(),
  };
}

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

/** What a test reader got, by label, and a way to wait until it has `n` messages. */
function collector(): {
  readonly got: string[];
  readonly receive: (data: WsData) => void;
  readonly until: (n: number) => Promise<void>;
} {
  const got: string[] = [];
  let want = Infinity;
  let arrived = () => {};
  return {
    got,
    receive: (data) => {
      const n = numberOf(data);
      got.push(n === -1 ? String(data) : `#${n}`);
      if (got.length >= want) arrived();
    },
    until: (n) => {
      if (got.length >= n) return Promise.resolve();
      want = n;
      return new Promise((resolve) => arrived = resolve);
    },
  };
}

Deno.test("ws broadcast while a client's writes wait: the others get every message in order", async (t) => {
  await withTimeout(30_000, async () => {
    const bound = 256 * 1024;
    /**
     * The slow client's own writes: 100 KiB, numbered. Two go to its socket (200 KiB, under
     * the bound); the third would pass the bound, so it and the rest wait in its queue.
     */
    const own = (i: number): Uint8Array => {
      const bytes = new Uint8Array(100 * 1024);
      new DataView(bytes.buffer).setUint32(0, i);
      return bytes;
    };
    const ownNumber = (frame: Frame): number =>
      frame.opcode === 2 && frame.payload.length === 100 * 1024
        ? new DataView(frame.payload.buffer).getUint32(0)
        : -1;
    // Each reader's messages in call order: 100 broadcasts (1 KiB, text and binary) with a
    // direct write after every tenth, about 100 KiB in one burst, within the bound.
    const expected: string[] = [];
    for (let i = 0; i < 100; i++) {
      expected.push(`#${i}`);
      if (i % 10 === 0) expected.push(`direct ${i}`);
    }

    for (const policy of ["close", "drop"] as const) {
      await t.step(`slowClient "${policy}"`, async () => {
        await using server = createServer({
          port: 0,
          maxBufferedAmount: bound,
          slowClient: policy,
        });
        const conn = await neverReadingClient(server.port);
        const nextFrame = frameReader(conn);
        const readers = [collector(), collector(), collector()];
        const clients: WsClient[] = [];
        try {
          await waitFor("the slow client", () => server.clients.length === 1);
          const slow = server.clients[0]!;
          for (const reader of readers) {
            clients.push(await websocket(server.url, { receive: reader.receive }));
          }
          await waitFor("the readers", () => server.clients.length === 1 + readers.length);
          const readerSides = server.clients.filter((client) => client !== slow);
          // 16 writes not awaited for a peer that does not read: 2 go to its socket, 14 wait.
          const ownWrites = Array.from({ length: 16 }, (_, i) => server.write(own(i), slow));
          assert.equal(slow.bufferedAmount, 16 * 100 * 1024, "2 in its socket, 14 waiting");
          for (let i = 0; i < 100; i++) {
            assert.equal(server.broadcast(numbered(i)), readers.length, `broadcast ${i}`);
            if (i % 10 === 0) {
              for (const side of readerSides) server.write(`direct ${i}`, side);
            }
          }
          await Promise.all(readers.map((reader) => reader.until(expected.length)));
          for (const reader of readers) assert.deepEqual(reader.got, expected);
          for (const client of clients) assert.equal(client.open, true);
          if (policy === "close") {
            // Closed at the first broadcast: the writes already in its socket arrive, in order,
            // then the close frame; the ones still waiting fail.
            assert.equal(slow.open, false);
            const results = await Promise.allSettled(ownWrites);
            assert.deepEqual(
              results.map((result) => result.status),
              [...Array(2).fill("fulfilled"), ...Array(14).fill("rejected")],
            );
            for (const result of results.slice(2)) {
              assert.ok(result.status === "rejected" && result.reason instanceof ConnectionError);
            }
            for (let i = 0; i < 2; i++) assert.equal(ownNumber(await nextFrame()), i);
            const last = await nextFrame();
            assert.equal(last.opcode, 8, `frame of opcode ${last.opcode} after the writes`);
            assert.equal(closeCodeOf(last), 1008);
          } else {
            // Skipped by every broadcast, but not closed: all its own writes arrive, in order,
            // with no broadcast among them.
            assert.equal(slow.open, true);
            for (let i = 0; i < 16; i++) assert.equal(ownNumber(await nextFrame()), i);
            await Promise.all(ownWrites);
            // Read up, it is no longer slow: the next broadcast reaches it too.
            await waitFor("the slow client's socket to drain", () => slow.bufferedAmount === 0);
            assert.equal(server.broadcast("after"), readers.length + 1);
            const after = await nextFrame();
            assert.equal(after.opcode, 1);
            assert.equal(new TextDecoder().decode(after.payload), "after");
            await Promise.all(readers.map((reader) => reader.until(expected.length + 1)));
            for (const reader of readers) assert.deepEqual(reader.got, [...expected, "after"]);
          }
        } finally {
          conn.close();
          for (const client of clients) await client.close();
        }
        await waitFor("every client gone", () => server.clients.length === 0);
      });
    }
  });
});

Deno.test('ws broadcast that would wait past maxQueuedBytes: skipped on "drop", closes on "close"', async (t) => {
  await withTimeout(30_000, async () => {
    // A reader that keeps up, met by a burst: the second message must wait for the first, and
    // 32 KiB waiting is past maxQueuedBytes.
    const first = new Uint8Array(60 * 1024).fill(1);
    const second = new Uint8Array(32 * 1024).fill(2);
    for (const policy of ["drop", "close"] as const) {
      await t.step(`slowClient "${policy}"`, async () => {
        await using server = createServer({
          port: 0,
          maxBufferedAmount: 64 * 1024,
          maxQueuedBytes: 16 * 1024,
          slowClient: policy,
        });
        const got: number[] = [];
        let arrived = () => {};
        const third = new Promise<void>((resolve) => arrived = resolve);
        let closed: WsCloseInfo | undefined;
        await using _reader = await websocket(server.url, {
          receive: (data) => {
            got.push((data as Uint8Array).length);
            if ((data as Uint8Array)[0] === 3) arrived();
          },
          closed: (_client, info) => {
            closed = info;
            arrived();
          },
        });
        await waitFor("established", () => server.clients.length === 1);
        const side = server.clients[0]!;
        assert.equal(server.broadcast(first), 1);
        assert.equal(server.broadcast(second), 0, "not queued for the reader");
        if (policy === "drop") {
          assert.equal(side.open, true, "drop closes no one");
          await waitFor("the reader's socket to drain", () => side.bufferedAmount === 0);
          assert.equal(server.broadcast(new Uint8Array(8).fill(3)), 1);
          await third;
          assert.deepEqual(got, [first.length, 8]);
          assert.equal(closed, undefined);
        } else {
          assert.equal(side.open, false);
          await third;
          assert.equal(closed?.code, 1008);
          assert.deepEqual(got, [first.length]);
        }
      });
    }
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

Deno.test("ws writes not awaited: 20,000 arrive complete, in order, through one waiter", async (t) => {
  await withTimeout(60_000, async () => {
    const count = 20_000;
    // A small bound so that nearly every write waits in the queue.
    const bound = 64 * 1024;
    const serverGot: number[] = [];
    const clientGot: number[] = [];
    let allAtServer = () => {};
    let allAtClient = () => {};
    await using server = createServer({
      port: 0,
      maxBufferedAmount: bound,
      receive: (data) => {
        if (serverGot.push(numberOf(data)) === count) allAtServer();
      },
    });
    await using client = await websocket(server.url, {
      maxBufferedAmount: bound,
      receive: (data) => {
        if (clientGot.push(numberOf(data)) === count) allAtClient();
      },
    });
    await waitFor("established", () => server.clients.length === 1);
    const peer = server.clients[0]!;
    const expected = Array.from({ length: count }, (_, i) => i);

    await t.step("client to server", async () => {
      const arrived = new Promise<void>((resolve) => allAtServer = resolve);
      let last: Promise<void> | undefined;
      // Nothing drains while this loop runs, so all but the first few writes wait: one drain
      // waiter for the queue, not one per waiting write.
      const timers = timersStartedBy(() => {
        for (let i = 0; i < count; i++) last = client.write(numbered(i));
      });
      assert.ok(timers <= 1, `${count} waiting writes started ${timers} timers`);
      assert.ok(client.bufferedAmount > bound, "the writes did not wait");
      await last;
      await arrived;
      assert.deepEqual(serverGot, expected);
    });

    await t.step("server to client", async () => {
      const arrived = new Promise<void>((resolve) => allAtClient = resolve);
      let last: Promise<void> | undefined;
      const timers = timersStartedBy(() => {
        for (let i = 0; i < count; i++) last = peer.write(numbered(i));
      });
      assert.ok(timers <= 1, `${count} waiting writes started ${timers} timers`);
      await last;
      await arrived;
      assert.deepEqual(clientGot, expected);
    });
  });
});

Deno.test("ws writes not awaited: abort, broadcast and a peer that leaves", async (t) => {
  await withTimeout(30_000, async () => {
    await t.step("a write aborted while it waits is not sent; the others keep order", async () => {
      const got: number[] = [];
      let allGot = () => {};
      await using server = createServer({
        port: 0,
        receive: (data) => {
          if (got.push(numberOf(data)) === 99) allGot();
        },
      });
      // A bound of one message: past the first, every write of this loop waits.
      await using client = await websocket(server.url, { maxBufferedAmount: 1024 });
      const arrived = new Promise<void>((resolve) => allGot = resolve);
      const controller = new AbortController();
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 100; i++) {
        writes.push(client.write(numbered(i), i === 50 ? { signal: controller.signal } : {}));
      }
      controller.abort(new Error("changed my mind"));
      await assert.rejects(writes[50]!, /changed my mind/);
      await Promise.all(writes.filter((_, i) => i !== 50));
      await arrived;
      assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 50));
    });

    await t.step("broadcast skips a client whose writes wait, and never waits", async () => {
      await using server = createServer({
        port: 0,
        maxBufferedAmount: 64 * 1024,
        slowClient: "drop",
      });
      const conn = await neverReadingClient(server.port);
      try {
        await waitFor("established", () => server.clients.length === 1);
        const slow = server.clients[0]!;
        const got: string[] = [];
        let allGot = () => {};
        const arrived = new Promise<void>((resolve) => allGot = resolve);
        await using _reader = await websocket(server.url, {
          receive: (data) => {
            if (got.push(String(data)) === 100) allGot();
          },
        });
        await waitFor("both established", () => server.clients.length === 2);
        // 16 MiB for a client that never reads, written in this turn: the broadcasts below find
        // it all unsent, whatever the kernel's socket buffers hold.
        const message = new Uint8Array(64 * 1024);
        for (let i = 0; i < 256; i++) server.write(message, slow);
        const waiting = slow.bufferedAmount;
        for (let i = 0; i < 100; i++) assert.equal(server.broadcast(`news ${i}`), 1);
        await arrived;
        assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `news ${i}`));
        assert.ok(slow.open);
        assert.ok(slow.bufferedAmount <= waiting, "a dropped broadcast was held");
      } finally {
        conn.close();
      }
      await waitFor("slow client gone", () => server.clients.length === 1);
    });

    await t.step("writes waiting for a peer that leaves reject quietly", async () => {
      await using server = createServer({ port: 0, maxBufferedAmount: 1024 });
      const conn = await neverReadingClient(server.port);
      await waitFor("established", () => server.clients.length === 1);
      const peer = server.clients[0]!;
      // Not awaited and never observed: a rejection reported as unhandled fails this test.
      for (let i = 0; i < 1000; i++) peer.write(numbered(i));
      const observed = peer.write(numbered(1000));
      conn.close();
      await assert.rejects(observed, ConnectionError);
      await waitFor("the client gone", () => server.clients.length === 0);
    });
  });
});

Deno.test("ws writes not awaited for a peer that never reads: bounded by maxQueuedBytes", async (t) => {
  await withTimeout(30_000, async () => {
    const bound = 64 * 1024;
    const limit = 1024 * 1024;
    const message = new Uint8Array(64 * 1024);

    await t.step("the server closes that client with 1008; its waiting writes reject", async () => {
      await using server = createServer({
        port: 0,
        maxBufferedAmount: bound,
        maxQueuedBytes: limit,
      });
      const conn = await neverReadingClient(server.port);
      try {
        await waitFor("established", () => server.clients.length === 1);
        const slow = server.clients[0]!;
        const writes: Promise<void>[] = [];
        let held = 0;
        // 200 x 64 KiB = 12.5 MiB offered at once, far past the kernel's buffers and the bounds.
        for (let i = 0; i < 200; i++) {
          writes.push(server.write(message, slow));
          held = Math.max(held, slow.bufferedAmount);
        }
        assert.ok(held <= bound + limit, `held ${held} bytes`);
        assert.equal(slow.open, false);
        const results = await Promise.allSettled(writes);
        const rejected = results.filter((r) => r.status === "rejected");
        assert.ok(rejected.length > 0 && rejected.length < 200);
        for (const result of rejected) assert.ok(result.reason instanceof ConnectionError);
        assert.ok(
          rejected.some((r) => /maxQueuedBytes \(1048576\)/.test(r.reason.message)),
          "no rejection names maxQueuedBytes",
        );
        // Everything before the overflow was handed to the socket, in order; nothing after.
        const firstRejected = results.findIndex((r) => r.status === "rejected");
        assert.ok(results.slice(firstRejected).every((r) => r.status === "rejected"));
        assert.equal(await closeCodeFrom(conn), 1008);
      } finally {
        conn.close();
      }
      await waitFor("slow client gone", () => server.clients.length === 0);
    });

    await t.step("the client closes with 4008 when its server never reads", async () => {
      const peer = await neverReadingServer();
      try {
        let info: WsCloseInfo | undefined;
        const client = await websocket(peer.url, {
          maxBufferedAmount: bound,
          maxQueuedBytes: limit,
          closed: (_client, closeInfo) => info = closeInfo,
        });
        const conn = await peer.accepted;
        try {
          const writes: Promise<void>[] = [];
          for (let i = 0; i < 200; i++) writes.push(client.write(message));
          assert.ok(client.bufferedAmount <= bound + limit);
          assert.equal(client.open, false);
          const results = await Promise.allSettled(writes);
          assert.ok(results.some((r) => r.status === "rejected"));
          assert.equal(await closeCodeFrom(conn), 4008);
        } finally {
          conn.close();
        }
        assert.equal((await client.closed).code, info?.code);
      } finally {
        peer.close();
      }
    });
  });
});
