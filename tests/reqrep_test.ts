import assert from "node:assert/strict";
import {
  ConnectionError,
  isNulByte,
  MessageTooLargeError,
  ProtocolError,
  recv,
  reply,
  request,
  type RFrameEnvironment,
  type RValue,
  send,
  SerializationError,
  serve,
  socket,
  TimeoutError,
} from "../reqrep/mod.ts";
import { decodeBody, encodeBody } from "../_internal/modes.ts";
import {
  BufferPool,
  checkHeader,
  connectionHeader,
  encodeFrame,
  FrameDecoder,
  parseUrl,
} from "../reqrep/_wire.ts";
import { freePort, waitFor, withTimeout } from "./_peers.ts";
import { captured } from "./_process.ts";
import { main } from "../cli.ts";

const encoder = new TextEncoder();

Deno.test("wire: headers, and frames decoded the same at every split", () => {
  assert.deepEqual([...connectionHeader("req")], [0, 0x53, 0x50, 0, 0, 0x30, 0, 0]);
  checkHeader(connectionHeader("rep"), "req");
  assert.throws(
    () => checkHeader(connectionHeader("req"), "req"),
    (e: unknown) =>
      e instanceof ProtocolError &&
      /protocol 0x0030 \(req0\); req0 talks only to rep0 \(0x0031\)/.test(e.message),
  );
  assert.throws(
    () => checkHeader(new Uint8Array([0, 0x53, 0x50, 1, 0, 0x31, 0, 0]), "req"),
    ProtocolError,
  );
  for (const framing of ["tcp", "ipc"] as const) {
    const stream = new Uint8Array([
      ...encodeFrame(framing, [encoder.encode("first")]),
      ...encodeFrame(framing, []),
      ...encodeFrame(framing, [new Uint8Array([0x80, 0, 0, 1]), encoder.encode("ping")]),
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: string[] = [];
      const frames = new FrameDecoder(framing, 100);
      const emit = (m: Uint8Array) => got.push(String.fromCharCode(...m));
      frames.push(stream.subarray(0, cut), emit);
      frames.push(stream.subarray(cut), emit);
      assert.deepEqual(got, ["first", "", "\x80\0\0\x01ping"], `${framing} cut at ${cut}`);
    }
  }
});

Deno.test("wire: a huge length claim or a bad IPC type is refused before allocating", () => {
  const huge = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0]);
  assert.throws(
    () => new FrameDecoder("tcp", 1024).push(huge, () => {}),
    (e: unknown) =>
      e instanceof MessageTooLargeError &&
      /18446744073709551600 bytes; the limit is 1024/.test(e.message),
  );
  assert.throws(
    () => new FrameDecoder("ipc", 1024).push(new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 1]), () => {}),
    ProtocolError,
  );
  assert.deepEqual(parseUrl("tcp://127.0.0.1:5555"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 5555,
  });
  assert.deepEqual(parseUrl("ipc:///tmp/x.ipc"), { transport: "ipc", path: "/tmp/x.ipc" });
  assert.deepEqual(parseUrl("ws://x:1/sp"), {
    transport: "ws",
    hostname: "x",
    port: 1,
    path: "/sp",
  });
  assert.deepEqual(parseUrl("ws://[::1]:2"), {
    transport: "ws",
    hostname: "::1",
    port: 2,
    path: "/",
  });
  assert.throws(() => parseUrl("ws://x/sp"), /expected ws:\/\/host:port\/path/);
  // TLS arrived with the shared SP core: wss:// and tls+tcp:// parse, a path on tls+tcp does not.
  assert.deepEqual(parseUrl("wss://x:1/"), { transport: "wss", hostname: "x", port: 1, path: "/" });
  assert.throws(() => parseUrl("tls+tcp://x:1/sp"), TypeError);
});

Deno.test("modes: raw encodings match nanonext's bytes; receive modes convert or fall back to raw", () => {
  const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
  assert.equal(
    hex(encodeBody([1.5, -2], "raw")),
    "00 00 00 00 00 00 f8 3f 00 00 00 00 00 00 00 c0",
  );
  assert.equal(hex(encodeBody(["a", "bc", ""], "raw")), "61 00 62 63 00 00");
  assert.equal(hex(encodeBody([true, null, false], "raw")), "01 00 00 00 00 00 00 80 00 00 00 00");
  assert.equal(hex(encodeBody(null, "raw")), "");
  assert.throws(() => encodeBody([{}], "raw"), TypeError);
  assert.deepEqual(decodeBody(encoder.encode("a\0\0b\0\0"), "character").value, ["a", "", "b"]);
  assert.equal(decodeBody(encoder.encode("abc"), "string").value, "abc");
  assert.ok(decodeBody(encoder.encode("ab\0c"), "string").warning);
  assert.deepEqual(
    [...(decodeBody(encodeBody([1.5, -2], "raw"), "double").value as Float64Array)],
    [1.5, -2],
  );
  const odd = decodeBody(new Uint8Array(7), "double");
  assert.ok(odd.value instanceof Uint8Array && odd.warning?.includes("double"));
  assert.deepEqual(decodeBody(encodeBody([true, null, false], "raw"), "logical").value, [
    true,
    null,
    false,
  ]);
  assert.deepEqual(decodeBody(encodeBody({ a: 1, b: ["x", null] }), "serial").value, {
    a: 1,
    b: ["x", null],
  });
  assert.ok(decodeBody(encoder.encode("short"), "serial").warning);
});

Deno.test("req ↔ rep over tcp and ipc: values round-trip; errors give the NUL byte", async () => {
  await withTimeout(20_000, async () => {
    const dir = await Deno.makeTempDir();
    try {
      for (const url of ["tcp://127.0.0.1:0", `ipc://${dir}/rr.ipc`]) {
        await using rep = await socket("rep", { listen: url });
        await using req = await socket("req", { dial: rep.urls[0]! });
        const serving = (async () => {
          await reply(rep, (x) => ({ got: x, doubled: (x as number[]).map((v) => v * 2) }));
          await reply(rep, () => {
            throw new Error("boom");
          });
          await reply(rep, (x) => `echo ${x}`, { recvMode: "string", sendMode: "raw" });
        })();
        assert.deepEqual(await request(req, [1, 2.5]), { got: [1, 2.5], doubled: [2, 5] });
        assert.equal(isNulByte(await request(req, "anything")), true);
        assert.equal(
          await request(req, "hi", { sendMode: "raw", recvMode: "string" }),
          "echo hi",
        );
        await serving;
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

/** An R environment with one binding, `x = value`: what `new.env()` holding `x` reads as. */
function frameEnvironment(value: number): RFrameEnvironment {
  return {
    type: "environment",
    name: "frame",
    locked: false,
    enclosure: { type: "environment", name: "global" },
    frame: {
      type: "pairlist",
      data: [{ tag: "x", value: { type: "double", data: new Float64Array([value]) } }],
    },
    hashTable: { type: "NULL" },
  };
}

Deno.test("serial option: refhooks and bounds apply to every message of a req or rep socket", async (t) => {
  await withTimeout(20_000, async () => {
    await t.step(
      "persistent references resolved on receipt, live objects named on reply",
      async () => {
        // What each side holds under the name "session-7": never sent, only named.
        const server = frameEnvironment(7);
        const client = frameEnvironment(-7);
        const asked: (string | null)[][] = [];
        await using rep = await socket("rep", {
          listen: "tcp://127.0.0.1:0",
          serial: {
            unserialize: {
              persistentReference: (names) => {
                asked.push(names);
                if (names[0] !== "session-7") throw new Error(`no session ${names[0]}`);
                return server;
              },
            },
            serialize: { persistentName: (value) => value === server ? ["session-7"] : undefined },
          },
        });
        await using req = await socket("req", {
          dial: rep.urls[0]!,
          serial: {
            unserialize: { persistentReference: () => client },
            serialize: { persistentName: (value) => value === client ? ["session-7"] : undefined },
          },
        });
        await using plain = await socket("req", { dial: rep.urls[0]! });
        const errors: unknown[] = [];
        const serving = serve(rep, (x) => {
          const { session, op } = x as { session: unknown; op: string };
          // The hook's own object, not a copy and not a typed persistent node.
          assert.equal(session, server);
          return { session, op, x: 1 };
        }, { concurrency: 1, onError: (error) => errors.push(error) });
        try {
          // The REQ's live environment leaves as PERSISTSXP; the reply's comes back resolved.
          const answer = await request(req, { session: client, op: "touch" }, { timeout: 5000 });
          assert.deepEqual(Object.keys(answer as object), ["session", "op", "x"]);
          assert.equal((answer as { session: unknown }).session, client);
          // A socket without hooks sends the typed node as it is and sees the reply's as it is.
          const persistent: RValue = { type: "persistent", names: ["session-7"] };
          const typed = await request(plain, { session: persistent, op: "look" }, {
            recvMode: "typed",
            timeout: 5000,
          }) as { type: string; data: RValue[] };
          assert.equal(typed.type, "list");
          assert.deepEqual(typed.data[0], persistent);
          assert.deepEqual(asked, [["session-7"], ["session-7"]]);
          // A name the hook refuses: its error, unchanged, and the NUL-byte reply.
          const unknown: RValue = { type: "persistent", names: ["session-8"] };
          assert.equal(
            isNulByte(await request(plain, { session: unknown }, { timeout: 5000 })),
            true,
          );
          assert.equal(errors.length, 1);
          assert.match(String(errors[0]), /no session session-8/);
        } finally {
          await rep.close();
          await serving;
        }
      },
    );

    await t.step("the reader's bounds and the writer's format are the socket's", async () => {
      const errors: unknown[] = [];
      await using rep = await socket("rep", {
        listen: "tcp://127.0.0.1:0",
        serial: { unserialize: { maxElements: 100 }, serialize: { format: "xdr" } },
      });
      await using req = await socket("req", { dial: rep.urls[0]! });
      const serving = serve(rep, (x) => (x as number[]).length, {
        concurrency: 1,
        onError: (error) => errors.push(error),
      });
      try {
        const fits = await request(req, new Float64Array(100), { recvMode: "raw", timeout: 5000 });
        assert.deepEqual([...(fits as Uint8Array).subarray(0, 2)], [0x58, 0x0a], "X\n, as asked");
        assert.equal(await request(req, new Float64Array(100), { timeout: 5000 }), 100);
        assert.equal(isNulByte(await request(req, new Float64Array(101), { timeout: 5000 })), true);
        assert.equal(errors.length, 1);
        assert.ok(errors[0] instanceof SerializationError);
        assert.match(errors[0].message, /101 elements exceeds maxElements \(100\)/);
      } finally {
        await rep.close();
        await serving;
      }
    });

    await t.step("a bad config fails where the socket is made", async () => {
      await assert.rejects(
        socket("rep", {
          listen: "tcp://127.0.0.1:0",
          // @ts-expect-error: what a JS caller can pass
          serial: { unserialize: { persistentReference: "session-7" } },
        }),
        (e: unknown) =>
          e instanceof TypeError &&
          /serial\.unserialize\.persistentReference must be a function, got string/.test(
            e.message,
          ),
      );
      await assert.rejects(
        socket("req", { serial: { unserialize: { maxDepth: -1 } } }),
        (e: unknown) => e instanceof RangeError && /serial\.unserialize\.maxDepth/.test(e.message),
      );
    });
  });
});

Deno.test("1,000 requests from 10 REQ contexts over 4 REP workers: every reply matches its request", async () => {
  await withTimeout(30_000, async () => {
    await using req = await socket("req", { listen: "tcp://127.0.0.1:0" });
    const workers = await Promise.all(
      Array.from({ length: 4 }, () => socket("rep", { dial: req.urls[0]! })),
    );
    await req.waitForPipes(4);
    const controller = new AbortController();
    const served = [0, 0, 0, 0];
    // Replies are delayed at random, so they leave out of order.
    const serving = workers.map((worker, w) =>
      serve(worker, async (x) => {
        served[w]!++;
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        return { echo: x, worker: w };
      }, { signal: controller.signal, concurrency: 8 })
    );
    const contexts = Array.from({ length: 10 }, () => req.context());
    const results = await Promise.all(contexts.map(async (ctx, c) => {
      const got: unknown[] = [];
      for (let i = 0; i < 100; i++) {
        const answer = await request(ctx, `ctx${c}-${i}`, { timeout: 5000 }) as { echo: string };
        got.push(answer.echo);
      }
      return got;
    }));
    results.forEach((got, c) =>
      assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `ctx${c}-${i}`))
    );
    assert.equal(served.reduce((a, b) => a + b), 1000);
    for (const count of served) assert.ok(count > 100, `load spread over workers: ${served}`);
    controller.abort();
    await Promise.all(serving);
    await Promise.all(workers.map((worker) => worker.close()));
  });
});

Deno.test("timeouts, aborts, closed sockets and protocol misuse are typed errors", async () => {
  await withTimeout(10_000, async () => {
    await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
    await assert.rejects(recv(rep, { timeout: 20 }), TimeoutError);
    await assert.rejects(send(rep, 1), ProtocolError);
    await using req = await socket("req", { dial: rep.urls[0]! });
    await assert.rejects(request(req, 1, { timeout: 50 }), TimeoutError);
    await assert.rejects(recv(req), ProtocolError);
    const controller = new AbortController();
    const waiting = request(req.context(), 2, { signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(waiting, /stop/);
    await req.close();
    await assert.rejects(request(req, 3), ConnectionError);
    await assert.rejects(socket("req", { dial: "tcp://127.0.0.1:1" }), ConnectionError);
  });
});

Deno.test("a wrong peer, a bad header and an oversized frame drop only that pipe", async () => {
  await withTimeout(10_000, async () => {
    const errors: string[] = [];
    await using rep = await socket("rep", {
      listen: "tcp://127.0.0.1:0",
      maxMessageBytes: 1024,
      onError: (e) => errors.push(e.message),
    });
    const port = Number(rep.urls[0]!.split(":").at(-1));
    const raw = async (bytes: Uint8Array) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(bytes);
      const buffer = new Uint8Array(64);
      let total = 0;
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) break;
        total += n;
      }
      conn.close();
      return total;
    };
    // REP answering REP: header exchanged, then closed.
    assert.equal(await raw(connectionHeader("rep")), 8);
    assert.equal(await raw(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x30, 1, 0])), 8);
    assert.equal(
      await raw(new Uint8Array([...connectionHeader("req"), 0, 0, 0, 0, 0x40, 0, 0, 0])),
      8,
    );
    // The socket still serves a good peer.
    await using req = await socket("req", { dial: rep.urls[0]! });
    const serving = reply(rep, (x) => x);
    assert.equal(await request(req, "still fine"), "still fine");
    await serving;
    assert.ok(errors.some((m) => /protocol 0x0031 \(rep0\)/.test(m)), errors.join("\n"));
    assert.ok(errors.some((m) => /bad SP header/.test(m)), errors.join("\n"));
    assert.ok(errors.some((m) => /the limit is 1024 bytes/.test(m)), errors.join("\n"));
  });
});

Deno.test("a REP that dies mid-run: the REQ resends to another worker", async () => {
  await withTimeout(20_000, async () => {
    await using req = await socket("req", { listen: "tcp://127.0.0.1:0", resendInterval: 60_000 });
    await using steady = await socket("rep", { dial: req.urls[0]! });
    const dying = await socket("rep", { dial: req.urls[0]! });
    await req.waitForPipes(2);
    // The dying worker takes requests and never answers, then vanishes.
    const tookOne = Promise.withResolvers<void>();
    const swallowed = (async () => {
      try {
        while (true) {
          await recv(dying);
          tookOne.resolve();
        }
      } catch {
        // closed
      }
    })();
    const controller = new AbortController();
    const serving = serve(steady, (x) => x, { signal: controller.signal });
    const contexts = Array.from({ length: 10 }, () => req.context());
    const answers = Promise.all(contexts.map((ctx, i) => request(ctx, i, { timeout: 10_000 })));
    await tookOne.promise;
    await dying.close();
    await swallowed;
    assert.deepEqual(await answers, Array.from({ length: 10 }, (_, i) => i));
    controller.abort();
    await serving;
  });
});

Deno.test("a dialer reconnects when its listener comes back", async () => {
  await withTimeout(20_000, async () => {
    // Below the ephemeral range: a dial to an ephemeral port nothing listens on can connect
    // to itself when the kernel picks that same port as its source.
    const url = `tcp://127.0.0.1:${freePort()}`;
    // Nothing listens yet: without retryFirstDial the socket would fail at once.
    await assert.rejects(socket("req", { dial: url }), ConnectionError);
    await using req = await socket("req", {
      dial: url,
      retryFirstDial: true,
      reconnectMinimum: 20,
      reconnectMaximum: 100,
    });
    const answer = request(req, "waited", { timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 150));
    {
      await using rep = await socket("rep", { listen: url });
      await reply(rep, (x) => `${x} for a server`);
      assert.equal(await answer, "waited for a server");
    }
    {
      await using rep = await socket("rep", { listen: url });
      const serving = reply(rep, (x) => `${x} again`);
      assert.equal(await request(req, "back", { timeout: 10_000 }), "back again");
      await serving;
    }
  });
});

/** A small seeded generator (mulberry32), so a failing fuzz case can be replayed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("fuzz: random and mutated frames never crash the decoder or allocate past the limit", () => {
  const random = seeded(0x5eed);
  const limit = 4096;
  const good = [
    ...encodeFrame("tcp", [new Uint8Array([0x80, 0, 0, 1]), encoder.encode("ping")]),
    ...encodeFrame("tcp", [new Uint8Array(100)]),
  ];
  const deadline = Date.now() + 2000;
  for (let round = 0; round < 20_000 && Date.now() < deadline; round++) {
    const bytes = round % 2 === 0
      ? Uint8Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))
      : Uint8Array.from(good, (b) => random() < 0.05 ? Math.floor(random() * 256) : b);
    const frames = new FrameDecoder(round % 3 === 0 ? "ipc" : "tcp", limit);
    try {
      frames.push(bytes, (message) => assert.ok(message.length <= limit));
    } catch (error) {
      assert.ok(
        error instanceof MessageTooLargeError || error instanceof ProtocolError,
        `round ${round}: ${error}`,
      );
    }
  }
});

Deno.test("fuzz: garbage from many connections leaves a REP socket serving", async () => {
  await withTimeout(20_000, async () => {
    const random = seeded(42);
    await using rep = await socket("rep", {
      listen: "tcp://127.0.0.1:0",
      maxMessageBytes: 4096,
      onError: () => {},
    });
    const port = Number(rep.urls[0]!.split(":").at(-1));
    const controller = new AbortController();
    const serving = serve(rep, (x) => x, { signal: controller.signal });
    for (let round = 0; round < 40; round++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const header = round % 2 === 0
        ? connectionHeader("req")
        : new Uint8Array(8).map(() => random() * 256);
      const tail = Uint8Array.from(
        { length: Math.floor(random() * 200) },
        () => Math.floor(random() * 256),
      );
      await conn.write(new Uint8Array([...header, ...tail])).catch(() => 0);
      conn.close();
    }
    await using req = await socket("req", { dial: rep.urls[0]! });
    assert.equal(await request(req, "alive", { timeout: 5000 }), "alive");
    controller.abort();
    await serving;
  });
});

Deno.test("recycled buffers: large concurrent requests come back intact", async () => {
  await withTimeout(30_000, async () => {
    const pool = new BufferPool(1 << 22);
    const first = pool.allocate(100_000);
    assert.equal(first.length, 100_000);
    pool.release(first);
    assert.equal(pool.allocate(70_000).buffer, first.buffer, "a released buffer is reused");
    assert.notEqual(pool.allocate(70_000).buffer, first.buffer, "and handed out once");
    // A view into a pooled buffer (a request body after its id) gives the whole buffer back.
    const second = pool.allocate(200_000);
    assert.equal(second.byteOffset, BufferPool.VIEW_OFFSET_BYTES);
    pool.release(second.subarray(4));
    assert.ok(pool.allocate(199_000).buffer === second.buffer, "released through a subarray");
    pool.release(new Uint8Array(128 * 1024)); // not the pool's: ignored
    assert.notEqual(pool.allocate(128 * 1024).byteOffset, 0);

    await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
    const controller = new AbortController();
    let echoes = 0;
    const echo = serve(rep, async (x) => {
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      // Half the echoes send the borrowed request buffer itself, half a copy that outlives it.
      return echoes++ % 2 === 0 ? x : (x as Uint8Array).slice();
    }, { recvMode: "raw", sendMode: "raw", borrowBuffers: true, signal: controller.signal });
    await using req = await socket("req", { dial: rep.urls[0]! });
    await Promise.all(Array.from({ length: 6 }, async (_, c) => {
      const ctx = req.context();
      for (let i = 0; i < 8; i++) {
        const fill = (c * 16 + i) & 0xff;
        const size = 150_000 + c * 10_000 + i;
        // Every byte depends on its position, so a reordered or shifted piece shows.
        const pattern = (k: number) => (k * 31 + (k >> 8) + fill) & 0xff;
        const answer = await request(ctx, Uint8Array.from({ length: size }, (_, k) => pattern(k)), {
          sendMode: "raw",
          recvMode: "raw",
          timeout: 10_000,
          borrowBuffers: i % 2 === 0,
        }) as Uint8Array;
        assert.equal(answer.length, size);
        // Held across other contexts' traffic, a borrowed reply stays intact until this
        // context's next request.
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        assert.ok(answer.every((b, k) => b === pattern(k)), `context ${c} request ${i} intact`);
        // Serial mode decodes into copies and recycles by itself.
        const values = Float64Array.from({ length: 20_000 }, (_, k) => k * fill);
        const decoded = await request(ctx, values, { timeout: 10_000 }) as Uint8Array;
        assert.equal((decoded as unknown as number[]).length, 20_000);
        assert.equal((decoded as unknown as number[])[19_999], 19_999 * fill);
      }
    }));
    controller.abort();
    await echo;
  });
});

Deno.test("cli: rsock rep serves rsock req; a throwing execute gives exit 1", async () => {
  await withTimeout(20_000, async () => {
    const url = `tcp://127.0.0.1:${freePort()}`;
    const repOut = captured();
    const serving = main([
      "rep",
      url,
      "--execute",
      "(x) => { if (x === 'boom') throw new Error('no'); return x + '!'; }",
      "--count",
      "2",
    ], repOut);
    // A dial with nothing listening fails at once, so wait for the server to be up.
    await waitFor("rep listening", () => repOut.err.includes("serving on"));
    const ok = captured();
    assert.equal(await main(["req", url, "--data", "hi", "--timeout", "5"], ok), 0);
    assert.equal(ok.out, "hi!\n");
    const bad = captured();
    assert.equal(await main(["req", url, "--data", "boom"], bad), 1);
    assert.match(bad.err, /NUL byte/);
    assert.equal(await serving, 0);
    assert.match(repOut.err, /execute failed: no/);
  });
});

Deno.test("ws:// transport: NNG's handshake rules; bad peers dropped, others served", async () => {
  await withTimeout(20_000, async () => {
    const errors: Error[] = [];
    await using rep = await socket("rep", {
      listen: "ws://127.0.0.1:0/sp",
      maxMessageBytes: 1024,
      onError: (error) => errors.push(error),
    });
    const url = rep.urls[0]!;
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/sp$/);
    const http = url.replace("ws://", "http://");
    const wrongPath = await fetch(http.replace("/sp", "/other"));
    assert.equal(wrongPath.status, 404);
    await wrongPath.body?.cancel();
    const noUpgrade = await fetch(http);
    assert.equal(noUpgrade.status, 400);
    await noUpgrade.body?.cancel();
    // A REQ offers its peer's name; a REP accepts only its own, as NNG does.
    await assert.rejects(openWebSocket(url, "req.sp.nanomsg.org"), /Cannot open/);

    const controller = new AbortController();
    const serving = serve(rep, (x) => `echo ${x}`, { signal: controller.signal });
    // A text message, then an oversized one: each drops only its own pipe.
    for (const [message, code] of [["text", 1003], [new Uint8Array(2048), 1009]] as const) {
      const bad = await openWebSocket(url, "rep.sp.nanomsg.org");
      const closed = new Promise<number>((resolve) => bad.onclose = (e) => resolve(e.code));
      bad.send(message);
      assert.equal(await closed, code);
    }
    await waitFor("both drops reported", () => errors.length === 2);
    assert.match(errors[0]!.message, /text message; SP over WebSocket is binary only/);
    assert.match(errors[1]!.message, /2048 bytes; the limit is 1024 bytes/);
    await using req = await socket("req", { dial: url });
    assert.equal(await request(req, "still here", { timeout: 5000 }), "echo still here");
    controller.abort();
    await serving;
  });
});

function openWebSocket(url: string, protocol: string): Promise<WebSocket> {
  const socket = new WebSocket(url, protocol);
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error(`Cannot open ${url} as ${protocol}`));
  });
}

Deno.test("close() right after a reply still delivers it; a peer that never reads gets only `linger`", async () => {
  await withTimeout(20_000, async () => {
    // close() waits for the reply to be written, up to `linger`: here a bound on a hang, as
    // 32 MiB through one busy process can take longer than the default second.
    const rep = await socket("rep", { listen: "tcp://127.0.0.1:0", linger: 10_000 });
    await using req = await socket("req", { dial: rep.urls[0]! });
    const answer = request(req, 0, { recvMode: "raw", timeout: 10_000 });
    // 32 MiB: more than the kernel takes in one write, so the reply is still queued at close().
    await reply(rep, () => new Uint8Array(32 * 1024 * 1024), { sendMode: "raw" });
    await rep.close();
    assert.equal((await answer as Uint8Array).length, 32 * 1024 * 1024);

    await using lingering = await socket("rep", { listen: "tcp://127.0.0.1:0", linger: 200 });
    const port = Number(lingering.urls[0]!.split(":")[2]);
    using stuck = await Deno.connect({ hostname: "127.0.0.1", port });
    await stuck.write(Uint8Array.of(0, 0x53, 0x50, 0, 0, 0x30, 0, 0));
    await stuck.write(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 5, 0x80, 0, 0, 1, 7));
    await reply(lingering, () => new Uint8Array(32 * 1024 * 1024), { sendMode: "raw" });
    const started = performance.now();
    await lingering.close();
    const took = performance.now() - started;
    assert.ok(took >= 150 && took < 2_000, `close() took ${took} ms`);
  });
});

Deno.test("ipcPermissions: the socket file is created with that mode; the umask is left as it was", async () => {
  await withTimeout(10_000, async () => {
    const dir = await Deno.makeTempDir();
    const umask = Deno.umask();
    try {
      for (const mode of [0o600, 0o660]) {
        const path = `${dir}/rep-${mode.toString(8)}.ipc`;
        await using rep = await socket("rep", { listen: `ipc://${path}`, ipcPermissions: mode });
        assert.equal(((await Deno.stat(path)).mode! & 0o777).toString(8), mode.toString(8));
        assert.equal(Deno.umask(), umask);
        const serving = reply(rep, (x) => x);
        await using req = await socket("req", { dial: `ipc://${path}` });
        assert.equal(await request(req, "mine", { timeout: 5_000 }), "mine");
        await serving;
      }
      await assert.rejects(socket("rep", { ipcPermissions: 0o1777 }), RangeError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("a first dial with nothing listening fails at once, naming the address; rsock req exits 1 with one line", async () => {
  await withTimeout(10_000, async () => {
    const url = `tcp://127.0.0.1:${freePort()}`;
    const dir = await Deno.makeTempDir();
    try {
      for (const where of [url, `ipc://${dir}/nobody.ipc`, `ws://127.0.0.1:${freePort()}/sp`]) {
        const started = performance.now();
        await assert.rejects(
          socket("req", { dial: where }),
          (error: Error) =>
            error instanceof ConnectionError &&
            error.message.startsWith(`Cannot connect to "${where}"`),
        );
        assert.ok(performance.now() - started < 2_000, where);
      }
      const out = captured();
      const started = performance.now();
      assert.equal(await main(["req", url, "--data", "1 + 1", "--recv-timeout", "8"], out), 1);
      assert.ok(performance.now() - started < 2_000, "not the whole --timeout");
      assert.match(
        out.err,
        /^rsock req: Cannot connect to "tcp:\/\/127\.0\.0\.1:\d+": connection refused\n$/,
      );
      assert.equal(out.out, "");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("close() never waits on a peer: a non-NNG port that never sends its SP header", async () => {
  await withTimeout(10_000, async () => {
    // A TCP server that accepts and then says nothing (an HTTP or eval port, say).
    using mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      try {
        for await (const conn of mute) held.push(conn);
      } catch {
        // closed
      }
    })();
    const url = `tcp://127.0.0.1:${(mute.addr as Deno.NetAddr).port}`;
    try {
      const req = await socket("req", { dial: url });
      await assert.rejects(request(req, "x", { timeout: 200 }), TimeoutError);
      let started = performance.now();
      await req.close();
      assert.ok(
        performance.now() - started < 1_000,
        `close() took ${performance.now() - started} ms`,
      );

      // The CLI: --recv-timeout 1 ends in about a second, not after the 10 s handshake timeout.
      const out = captured();
      started = performance.now();
      assert.equal(await main(["req", url, "--data", "x", "--recv-timeout", "1"], out), 1);
      assert.ok(
        performance.now() - started < 3_000,
        `rsock req took ${performance.now() - started} ms`,
      );

      // A REP socket with a connected peer mid-handshake closes at once as well.
      const rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
      const port = Number(rep.urls[0]!.split(":")[2]);
      using silent = await Deno.connect({ hostname: "127.0.0.1", port });
      await silent.read(new Uint8Array(8)); // its SP header: the pipe is in its handshake
      started = performance.now();
      await rep.close();
      assert.ok(
        performance.now() - started < 1_000,
        `rep close() took ${performance.now() - started} ms`,
      );
    } finally {
      mute.close();
      await accepting;
      for (const conn of held) conn.close();
    }
  });
});

Deno.test("req: a REP peer that never reads is skipped once its pipe is full; requests go to the ready one", async () => {
  await withTimeout(30_000, async () => {
    await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
    const serving = (async () => {
      const ctx = rep.context();
      while (true) await reply(ctx, (x) => x, { recvMode: "raw", sendMode: "raw" });
    })().catch(() => {});
    const stalled = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const stalledPort = (stalled.addr as Deno.NetAddr).port;
    const accepted = stalled.accept();
    await using req = await socket("req", {
      dial: [`tcp://127.0.0.1:${stalledPort}`, rep.urls[0]!],
    });
    // A REP by hand: handshake, then it never reads a byte.
    const conn = await accepted;
    try {
      await conn.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x31, 0, 0]));
      await waitFor("both REP pipes", () => req.pipeCount === 2);
      const body = new Uint8Array(128 * 1024);
      const total = 1200;
      const answered = await Promise.all(
        Array.from(
          { length: total },
          () =>
            request(req.context(), body, { sendMode: "raw", recvMode: "raw", timeout: 10_000 })
              .then(() => 1, () => 0),
        ),
      );
      const stuck = total - answered.reduce<number>((sum, one) => sum + one, 0);
      // Stuck: what the stalled peer's kernel buffers took (up to tens of MiB on Linux loopback)
      // and one pipe's queue; without readiness, every other request (600).
      assert.ok(stuck < 400, `${stuck} of ${total} requests stuck on the peer that never reads`);
    } finally {
      conn.close();
      stalled.close();
      await rep.close();
      await serving;
    }
  });
});
