import assert from "node:assert/strict";
import {
  connect,
  ConnectionError,
  formatProgress,
  listen,
  MessageTooLargeError,
  parseProgress,
  renderProgressBar,
  type SocketEvent,
} from "../socket/mod.ts";
import { LineSplitter } from "../socket/_framing.ts";
import { freePort, withTimeout } from "./_peers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Collects events until `until` says stop. */
async function collect(
  events: AsyncIterator<SocketEvent>,
  until: (seen: SocketEvent[]) => boolean,
): Promise<SocketEvent[]> {
  const seen: SocketEvent[] = [];
  while (!until(seen)) {
    const next = await events.next();
    if (next.done) break;
    seen.push(next.value);
  }
  return seen;
}

function texts(events: SocketEvent[]): string[] {
  return events.flatMap((event) => event.type === "message" ? [event.message.text] : []);
}

Deno.test("LineSplitter yields the same lines whatever the split", () => {
  const input = encoder.encode("alpha\nbeta\r\n\ngamma é\ndelta");
  for (let cut = 0; cut <= input.length; cut++) {
    for (let cut2 = cut; cut2 <= input.length; cut2 += 3) {
      const splitter = new LineSplitter(100);
      const lines: string[] = [];
      const emit = (event: { kind: string; data?: Uint8Array }) => {
        assert.equal(event.kind, "line");
        lines.push(decoder.decode(event.data));
      };
      splitter.push(input.subarray(0, cut), emit);
      splitter.push(input.subarray(cut, cut2), emit);
      splitter.push(input.subarray(cut2), emit);
      const rest = splitter.finish();
      assert.deepEqual(lines, ["alpha", "beta", "", "gamma é"], `cuts ${cut}/${cut2}`);
      assert.equal(decoder.decode(rest), "delta");
    }
  }
});

Deno.test("LineSplitter refuses an over-long line without buffering it, then resumes", () => {
  const splitter = new LineSplitter(8);
  const events: string[] = [];
  const emit = (event: { kind: "line"; data: Uint8Array } | { kind: "too-large"; bytes: number }) =>
    events.push(event.kind === "line" ? decoder.decode(event.data) : `too-large:${event.bytes}`);
  splitter.push(encoder.encode("ok\n0123456789"), emit);
  assert.equal(splitter.pendingBytes, 0, "over-limit bytes are not held");
  splitter.push(encoder.encode("abcdef"), emit);
  splitter.push(encoder.encode("\nnext\n12345678\n123456789\n"), emit);
  assert.deepEqual(events, ["ok", "too-large:16", "next", "12345678", "too-large:9"]);
  assert.equal(splitter.finish(), undefined);
});

Deno.test("progress lines round-trip and render", () => {
  const line = formatProgress(3, 10, "fitting models");
  assert.equal(line, "#progress 3/10 fitting models");
  assert.deepEqual(parseProgress(line), { done: 3, total: 10, label: "fitting models" });
  assert.deepEqual(parseProgress("#progress 7"), { done: 7, total: 0, label: "" });
  assert.equal(parseProgress("progress 3/10"), undefined);
  assert.equal(parseProgress("#progress x/10"), undefined);
  assert.match(
    renderProgressBar({ done: 5, total: 10, label: "x" }, 10),
    /^\[#####\.{5}\] {2}50% 5\/10 x$/,
  );
  assert.throws(() => formatProgress(-1, 10), RangeError);
  assert.throws(() => formatProgress(1, 2, "two\nlines"), TypeError);
});

Deno.test("line framing: messages are tagged with their client, in order", async () => {
  await withTimeout(10_000, async () => {
    await using server = listen({ port: 0, framing: "line" });
    await using a = await connect({ hostname: "127.0.0.1", port: server.port });
    await a.write("one\ntw");
    await a.write("o\r\nthree\n");
    const seen = await collect(server.events(), (s) => texts(s).length === 3);
    assert.deepEqual(texts(seen), ["one", "two", "three"]);
    const first = seen[0];
    assert.equal(first?.type, "connect");
    for (const event of seen.slice(1)) assert.equal(event.client.id, first.client.id);
    assert.match(first.client.remoteAddress, /^127\.0\.0\.1:\d+$/);
  });
});

Deno.test("chunk framing passes each read through unchanged, and the server can answer", async () => {
  await withTimeout(10_000, async () => {
    await using server = listen({ port: 0 });
    await using conn = await connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write("no newline here");
    const iterator = server[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    const message = first.value!;
    assert.equal(message.text, "no newline here");
    await message.client.write("ack: 1234567890");
    assert.equal(await conn.read({ maxlen: 5 }), "ack: ");
    assert.equal(await conn.read({ maxlen: 100 }), "1234567890");
    await iterator.return?.(undefined);
  });
});

Deno.test("100 concurrent writers: every line arrives once, unmixed", async () => {
  await withTimeout(30_000, async () => {
    await using server = listen({ port: 0, framing: "line" });
    const clients = 100;
    const perClient = 200;
    const writers = Array.from({ length: clients }, async (_, c) => {
      await using conn = await connect({ hostname: "127.0.0.1", port: server.port });
      // Many small writes interleave on the wire with the other clients' writes.
      for (let batch = 0; batch < perClient; batch += 20) {
        let text = "";
        for (let i = batch; i < batch + 20; i++) text += `client-${c} line-${i} ${"x".repeat(c)}\n`;
        await conn.write(text);
      }
    });
    const expected = clients * perClient;
    const byClient = new Map<number, string[]>();
    let count = 0;
    const reading = (async () => {
      for await (const message of server) {
        const list = byClient.get(message.client.id) ?? [];
        list.push(message.text);
        byClient.set(message.client.id, list);
        if (++count === expected) break;
      }
    })();
    await Promise.all(writers);
    await reading;
    assert.equal(byClient.size, clients);
    const seenWriters = new Set<number>();
    for (const lines of byClient.values()) {
      assert.equal(lines.length, perClient);
      const writer = Number(/^client-(\d+) /.exec(lines[0]!)?.[1]);
      seenWriters.add(writer);
      lines.forEach((line, i) =>
        assert.equal(line, `client-${writer} line-${i} ${"x".repeat(writer)}`)
      );
    }
    assert.equal(seenWriters.size, clients);
  });
});

Deno.test("a client that disconnects mid-line: its partial line is flagged, others go on", async () => {
  await withTimeout(10_000, async () => {
    await using server = listen({ port: 0, framing: "line" });
    const events = server.events();
    const quitter = await connect({ hostname: "127.0.0.1", port: server.port });
    await using stayer = await connect({ hostname: "127.0.0.1", port: server.port });
    await quitter.write("complete\nhalf a li");
    let seen = await collect(events, (s) => s.some((e) => e.type === "message"));
    quitter.close();
    seen = seen.concat(await collect(events, (s) => s.some((e) => e.type === "disconnect")));
    const partial = seen.find((e) => e.type === "message" && e.message.partial);
    assert.ok(partial?.type === "message");
    assert.equal(partial.message.text, "half a li");
    await stayer.write("still here\n");
    const after = await collect(events, (s) => texts(s).length === 1);
    assert.deepEqual(texts(after), ["still here"]);
    const last = after.at(-1);
    assert.ok(last?.type === "message");
    assert.equal(last.message.partial, false);
  });
});

Deno.test("a line over the limit is refused with MessageTooLargeError; the next line arrives", async () => {
  await withTimeout(10_000, async () => {
    await using server = listen({ port: 0, framing: "line", maxMessageBytes: 1024 });
    await using conn = await connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write("before\n" + "y".repeat(100_000) + "\nafter\n");
    const seen = await collect(server.events(), (s) => texts(s).length === 2);
    assert.deepEqual(texts(seen), ["before", "after"]);
    const error = seen.find((e) => e.type === "error");
    assert.ok(error?.type === "error");
    assert.ok(error.error instanceof MessageTooLargeError);
    assert.equal(error.error.limit, 1024);
    assert.match(error.error.message, /100000 bytes; the limit is 1024 bytes/);
  });
});

Deno.test("connect to a port where nothing listens names host and port", async () => {
  await withTimeout(10_000, async () => {
    const port = freePort();
    await assert.rejects(
      connect({ hostname: "127.0.0.1", port }),
      (error: unknown) => {
        assert.ok(error instanceof ConnectionError);
        assert.equal(error.message, `Cannot connect to "127.0.0.1:${port}": connection refused`);
        return true;
      },
    );
    await assert.rejects(connect({ port: 70000 }), RangeError);
  });
});

Deno.test("Unix socket: listen, connect, and the socket file is removed on close", async () => {
  await withTimeout(10_000, async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/rsock.sock`;
    try {
      {
        await using server = listen({ path, framing: "line" });
        await using conn = await connect({ path });
        await conn.writeLine("over unix");
        const seen = await collect(server.events(), (s) => texts(s).length === 1);
        assert.deepEqual(texts(seen), ["over unix"]);
        assert.equal(seen[0]?.client.remoteAddress, "unix");
      }
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
      await assert.rejects(connect({ path }), ConnectionError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("an AbortSignal closes the server and ends the iteration", async () => {
  await withTimeout(10_000, async () => {
    const controller = new AbortController();
    const server = listen({ port: 0, framing: "line", signal: controller.signal });
    const conn = await connect({ hostname: "127.0.0.1", port: server.port });
    const received: string[] = [];
    const first = Promise.withResolvers<void>();
    const reading = (async () => {
      for await (const message of server) {
        received.push(message.text);
        first.resolve();
      }
    })();
    await conn.writeLine("hello");
    await first.promise;
    controller.abort();
    await reading;
    await server.closed;
    assert.deepEqual(received, ["hello"]);
    assert.equal(await conn.read(), "", 'the client sees the server close like read.socket: ""');
    conn.close();
    await assert.rejects(connect({ hostname: "127.0.0.1", port: server.port }), ConnectionError);
  });
});

Deno.test("read() with an AbortSignal stops waiting without losing the data that comes later", async () => {
  await withTimeout(10_000, async () => {
    await using server = listen({ port: 0 });
    await using conn = await connect({ hostname: "127.0.0.1", port: server.port });
    const events = server.events();
    const [connected] = await collect(events, (s) => s.length === 1);
    await assert.rejects(conn.read({ signal: AbortSignal.timeout(50) }));
    await connected!.client.write("late");
    assert.equal(await conn.read(), "late");
  });
});

Deno.test("borrowBuffers: each chunk is intact while held, and close() does not wait on a held one", async () => {
  await withTimeout(10_000, async () => {
    const server = listen({ port: 0, borrowBuffers: true });
    await using conn = await connect({ hostname: "127.0.0.1", port: server.port });
    const iterator = server[Symbol.asyncIterator]();
    await conn.write("first");
    const first = await iterator.next();
    // The reader may not reuse its buffer while we hold "first": more data must wait.
    await conn.write("second");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(first.value?.text, "first");
    assert.equal(decoder.decode(first.value?.data), "first");
    const second = await iterator.next();
    assert.equal(second.value?.text, "second");
    await server.close();
    assert.equal((await iterator.next()).done, true);
  });
});
