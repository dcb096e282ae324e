/**
 * The NNG family between rsock sockets over real connections: pub/sub fan-out and loss rules,
 * push/pull spread, surveys with late answers, pair, bus, devices, handshake refusal, bad
 * peers, and TLS (certificates made by openssl at test time).
 */
import assert from "node:assert/strict";
import {
  ConnectionError,
  device,
  ProtocolError,
  type Socket,
  socket,
  TimeoutError,
} from "../nng/mod.ts";
import { reply, request, type RValue, socket as reqrepSocket } from "../reqrep/mod.ts";
import { FrameDecoder } from "../_internal/sp/wire.ts";
import { waitFor, withTimeout } from "./_peers.ts";
import { makeCertificates, type TestCertificates } from "./_tls.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);
/** Lets queued writes go out: a publisher that never yields fills its per-pipe queues. */
const yieldToIo = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("pub/sub: 10 subscribers with different topics each get exactly theirs, in order", async () => {
  await withTimeout(30_000, async () => {
    await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0" });
    const subs = await Promise.all(
      Array.from(
        { length: 10 },
        (_, k) => socket("sub", { dial: pub.urls[0]!, subscribe: `topic${k}:` }),
      ),
    );
    try {
      await pub.waitForPipes(10);
      await Promise.all(subs.map((sub) => sub.waitForPipes(1)));
      const rounds = 200;
      for (let i = 0; i < rounds; i++) {
        for (let k = 0; k < 10; k++) await pub.sendBytes(bytes(`topic${k}:${i}`));
        await pub.sendBytes(bytes(`other:${i}`));
        if (i % 20 === 19) await yieldToIo();
      }
      await Promise.all(subs.map(async (sub, k) => {
        const got: string[] = [];
        for (let i = 0; i < rounds; i++) {
          got.push(text((await sub.recvMessage({ timeout: 5000 })).body));
        }
        assert.deepEqual(got, Array.from({ length: rounds }, (_, i) => `topic${k}:${i}`));
        await assert.rejects(sub.recvMessage({ timeout: 100 }), TimeoutError);
      }));
      assert.equal(pub.dropped, 0);
    } finally {
      await Promise.all(subs.map((sub) => sub.close()));
    }
  });
});

Deno.test("pub/sub: unsubscribe stops a topic; the empty topic matches everything", async () => {
  await withTimeout(10_000, async () => {
    await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0" });
    await using sub = await socket("sub", { dial: pub.urls[0]!, subscribe: ["a", "b"] });
    await using all = await socket("sub", { dial: pub.urls[0]!, subscribe: "" });
    await pub.waitForPipes(2);
    assert.equal(sub.unsubscribe("a"), true);
    assert.equal(sub.unsubscribe("a"), false);
    for (const message of ["a1", "b1", "c1"]) await pub.sendBytes(bytes(message));
    assert.equal(text((await sub.recvMessage({ timeout: 10_000 })).body), "b1");
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(text((await all.recvMessage({ timeout: 10_000 })).body));
    assert.deepEqual(seen, ["a1", "b1", "c1"]);
    assert.throws(() => pub.subscribe("x"), TypeError);
    await assert.rejects(sub.sendBytes(bytes("x")), TypeError);
  });
});

Deno.test("pub/sub: a slow subscriber loses messages, the publisher never waits, the others lose none", async () => {
  await withTimeout(30_000, async () => {
    await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0" });
    await using fast = await socket("sub", { dial: pub.urls[0]!, subscribe: "" });
    await using slow = await socket("sub", { dial: pub.urls[0]!, subscribe: "", recvBuffer: 16 });
    await pub.waitForPipes(2);
    const total = 5000;
    const received: number[] = [];
    const reading = (async () => {
      while (received.length < total) {
        received.push(Number(text((await fast.recvMessage({ timeout: 5000 })).body)));
      }
    })();
    for (let i = 0; i < total; i++) {
      let settled = false;
      pub.sendBytes(bytes(String(i))).then(() => settled = true);
      await Promise.resolve();
      assert.ok(settled, `send ${i} waited`);
      if (i % 100 === 99) await yieldToIo();
    }
    await reading;
    assert.deepEqual(received, Array.from({ length: total }, (_, i) => i));
    // The slow one read nothing so far: it kept only the newest 16.
    const kept: number[] = [];
    while (kept.at(-1) !== total - 1) {
      kept.push(Number(text((await slow.recvMessage({ timeout: 5000 })).body)));
    }
    assert.ok(kept.length <= 16, `slow subscriber kept ${kept.length}`);
    assert.deepEqual(kept, [...kept].sort((a, b) => a - b));
    assert.ok(slow.dropped >= total - 16, `slow subscriber dropped ${slow.dropped}`);
    assert.equal(fast.dropped, 0);
  });
});

Deno.test("push/pull: 10,000 messages over 4 pullers arrive exactly once, spread", async () => {
  await withTimeout(60_000, async () => {
    await using push = await socket("push", { listen: "tcp://127.0.0.1:0" });
    const pullers = await Promise.all(
      Array.from({ length: 4 }, () => socket("pull", { dial: push.urls[0]! })),
    );
    try {
      await push.waitForPipes(4);
      const total = 10_000;
      const seen = new Map<number, number>();
      const counts = [0, 0, 0, 0];
      let done = 0;
      const finished = Promise.withResolvers<void>();
      const readers = pullers.map(async (pull, p) => {
        while (true) {
          let message;
          try {
            message = await pull.recvMessage();
          } catch {
            return;
          }
          const n = new DataView(message.body.buffer, message.body.byteOffset).getUint32(0);
          seen.set(n, (seen.get(n) ?? 0) + 1);
          counts[p]!++;
          if (++done === total) finished.resolve();
        }
      });
      for (let i = 0; i < total; i++) {
        const body = new Uint8Array(64);
        new DataView(body.buffer).setUint32(0, i);
        await push.sendBytes(body);
      }
      await finished.promise;
      assert.equal(seen.size, total);
      assert.ok([...seen.values()].every((count) => count === 1));
      for (const count of counts) assert.ok(count >= total / 10, `spread: ${counts.join(", ")}`);
      await Promise.all(pullers.map((pull) => pull.close()));
      await Promise.all(readers);
    } finally {
      await Promise.all(pullers.map((pull) => pull.close()));
    }
  });
});

Deno.test("surveyor: a survey reaches 10 respondents; answers after the survey time are dropped", async () => {
  await withTimeout(30_000, async () => {
    await using surveyor = await socket("surveyor", {
      listen: "tcp://127.0.0.1:0",
      // Long enough for nine answers on a busy machine; the test waits for its end anyway.
      surveyTime: 2000,
    });
    const respondents = await Promise.all(
      Array.from({ length: 10 }, () => socket("respondent", { dial: surveyor.urls[0]! })),
    );
    try {
      await surveyor.waitForPipes(10);
      const surveyClosed = Promise.withResolvers<void>();
      const lateSent = Promise.withResolvers<void>();
      const answering = respondents.map(async (respondent, r) => {
        for (let round = 0; round < 2; round++) {
          const survey = text((await respondent.recvMessage({ timeout: 5000 })).body);
          if (r === 9 && round === 0) {
            // Answer round 0 only once the surveyor has seen its survey close.
            await surveyClosed.promise;
            await respondent.sendBytes(bytes(`late ${survey} from ${r}`));
            lateSent.resolve();
            continue;
          }
          await respondent.sendBytes(bytes(`${survey} from ${r}`));
        }
      });
      await surveyor.sendBytes(bytes("s1"));
      const first: string[] = [];
      await assert.rejects(async () => {
        while (true) first.push(text((await surveyor.recvMessage()).body));
      }, TimeoutError);
      surveyClosed.resolve();
      assert.deepEqual(first.sort(), Array.from({ length: 9 }, (_, r) => `s1 from ${r}`).sort());
      await lateSent.promise;
      await surveyor.sendBytes(bytes("s2"));
      const second: string[] = [];
      for (let i = 0; i < 10; i++) second.push(text((await surveyor.recvMessage()).body));
      assert.deepEqual(second.sort(), Array.from({ length: 10 }, (_, r) => `s2 from ${r}`).sort());
      await Promise.all(answering);
    } finally {
      await Promise.all(respondents.map((respondent) => respondent.close()));
    }
  });
});

Deno.test("surveyor and respondent contexts run surveys side by side", async () => {
  await withTimeout(10_000, async () => {
    await using surveyor = await socket("surveyor", { listen: "tcp://127.0.0.1:0" });
    await using respondent = await socket("respondent", { dial: surveyor.urls[0]! });
    await surveyor.waitForPipes(1);
    const [a, b] = [surveyor.context(), surveyor.context()];
    const [x, y] = [respondent.context(), respondent.context()];
    await a.sendBytes(bytes("to a"));
    await b.sendBytes(bytes("to b"));
    const first = await x.recvMessage({ timeout: 10_000 });
    const second = await y.recvMessage({ timeout: 10_000 });
    // Answer in the other order: each still reaches its own context.
    await y.sendBytes(bytes(`re ${text(second.body)}`));
    await x.sendBytes(bytes(`re ${text(first.body)}`));
    assert.equal(text((await a.recvMessage({ timeout: 10_000 })).body), "re to a");
    assert.equal(text((await b.recvMessage({ timeout: 10_000 })).body), "re to b");
    await assert.rejects(x.sendBytes(bytes("again")), ProtocolError);
    await assert.rejects(surveyor.context().recvMessage(), ProtocolError);
  });
});

Deno.test("serial option: a socket's refhooks apply to its send/recv and its contexts", async () => {
  await withTimeout(10_000, async () => {
    const persistent: RValue = { type: "persistent", names: ["job-1"] };
    // An external pointer (a torch tensor, a connection): only its name can travel.
    const live: RValue = {
      type: "externalptr",
      protected: { type: "NULL" },
      tag: { type: "NULL" },
    };
    const named = { persistentName: (value: RValue) => value === live ? ["job-1"] : undefined };
    const resolved = { persistentReference: () => live };
    await using pull = await socket("pull", {
      listen: "tcp://127.0.0.1:0",
      serial: { unserialize: resolved },
    });
    await using push = await socket("push", { dial: pull.urls[0]!, serial: { serialize: named } });
    await push.send([live, 1]);
    assert.deepEqual(await pull.recv({ timeout: 5000 }), [live, 1]);
    await using surveyor = await socket("surveyor", { listen: "tcp://127.0.0.1:0" });
    await using respondent = await socket("respondent", {
      dial: surveyor.urls[0]!,
      serial: { unserialize: resolved, serialize: named },
    });
    await surveyor.waitForPipes(1);
    const ask = surveyor.context();
    await ask.send({ job: persistent });
    const answer = respondent.context();
    const { job } = await answer.recv({ timeout: 5000 }) as { job: unknown };
    assert.equal(job, live);
    await answer.send({ done: job });
    assert.deepEqual(await ask.recv({ mode: "typed", timeout: 5000 }), {
      type: "list",
      data: [persistent],
      attributes: { names: { type: "character", data: ["done"] } },
    });
  });
});

Deno.test("pair: a second peer is refused; pair1 poly answers each peer on its own pipe", async () => {
  await withTimeout(10_000, async () => {
    const errors: Error[] = [];
    await using a = await socket("pair", {
      listen: "tcp://127.0.0.1:0",
      onError: (e) => errors.push(e),
    });
    await using b = await socket("pair", { dial: a.urls[0]! });
    await a.waitForPipes(1);
    await using c = await socket("pair", { dial: a.urls[0]!, reconnectMinimum: 5000 });
    await b.sendBytes(bytes("from b"));
    assert.equal(text((await a.recvMessage({ timeout: 10_000 })).body), "from b");
    while (!errors.some((e) => /already paired/.test(e.message))) await yieldToIo();
    assert.equal(a.pipeCount, 1);
    assert.equal(c.pipeCount, 0);

    await using hub = await socket("poly", { listen: "tcp://127.0.0.1:0" });
    await using p = await socket("pair1", { dial: hub.urls[0]! });
    await using q = await socket("pair1", { dial: hub.urls[0]! });
    await hub.waitForPipes(2);
    await p.sendBytes(bytes("p"));
    await q.sendBytes(bytes("q"));
    for (let i = 0; i < 2; i++) {
      const message = await hub.recvMessage({ timeout: 10_000 });
      await hub.sendBytes(bytes(`back to ${text(message.body)}`), { pipe: message.pipe });
    }
    assert.equal(text((await p.recvMessage({ timeout: 10_000 })).body), "back to p");
    assert.equal(text((await q.recvMessage({ timeout: 10_000 })).body), "back to q");
  });
});

Deno.test("bus: a message reaches every direct peer and is not forwarded further", async () => {
  await withTimeout(10_000, async () => {
    await using hub = await socket("bus", { listen: "ipc:///tmp/rsock_bus_test.ipc" });
    await using b = await socket("bus", { dial: hub.urls[0]! });
    await using c = await socket("bus", { dial: hub.urls[0]! });
    await hub.waitForPipes(2);
    await hub.sendBytes(bytes("to all"));
    assert.equal(text((await b.recvMessage({ timeout: 10_000 })).body), "to all");
    assert.equal(text((await c.recvMessage({ timeout: 10_000 })).body), "to all");
    await b.sendBytes(bytes("from b"));
    assert.equal(text((await hub.recvMessage({ timeout: 10_000 })).body), "from b");
    await assert.rejects(c.recvMessage({ timeout: 200 }), TimeoutError);
  });
});

Deno.test("wrong protocol pairs are refused at the handshake (push may not talk to pub)", async () => {
  await withTimeout(10_000, async () => {
    const errors: Error[] = [];
    await using pub = await socket("pub", {
      listen: "tcp://127.0.0.1:0",
      onError: (e) => errors.push(e),
    });
    await using push = await socket("push", { dial: pub.urls[0]!, reconnectMinimum: 5000 });
    while (errors.length === 0) await yieldToIo();
    assert.ok(errors[0] instanceof ConnectionError);
    assert.ok(errors[0].cause instanceof ProtocolError);
    assert.match(errors[0].message, /0x0050 \(push0\); pub0 talks only to sub0 \(0x0021\)/);
    assert.equal(pub.pipeCount, 0);
    assert.equal(push.pipeCount, 0);
  });
});

Deno.test("garbage and oversized frames drop only that pipe", async () => {
  await withTimeout(10_000, async () => {
    await using pull = await socket("pull", { listen: "tcp://127.0.0.1:0", maxMessageBytes: 1024 });
    await using push = await socket("push", { dial: pull.urls[0]! });
    await pull.waitForPipes(1);
    const port = Number(pull.urls[0]!.split(":").at(-1));
    const pushHeader = new Uint8Array([0, 0x53, 0x50, 0, 0, 0x50, 0, 0]);
    for (
      const bad of [
        new Uint8Array([0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54]), // "GET / HT"
        new Uint8Array([...pushHeader, 0, 0, 0, 0, 0, 0x10, 0, 0]), // claims 1 MiB
      ]
    ) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(bad);
      const buffer = new Uint8Array(64);
      let closed = false;
      while (!closed) closed = (await conn.read(buffer)) === null;
      conn.close();
      await push.sendBytes(bytes("still served"));
      assert.equal(text((await pull.recvMessage({ timeout: 10_000 })).body), "still served");
    }
    assert.equal(pull.pipeCount, 1);
  });
});

Deno.test("device: a raw rep/req pair relays requests to two REP workers", async () => {
  await withTimeout(15_000, async () => {
    await using front = await socket("rep", { raw: true, listen: "tcp://127.0.0.1:0" });
    await using back = await socket("req", { raw: true, listen: "tcp://127.0.0.1:0" });
    const controller = new AbortController();
    const relaying = device(front, back, { signal: controller.signal });
    await using w1 = await reqrepSocket("rep", { dial: back.urls[0]! });
    await using w2 = await reqrepSocket("rep", { dial: back.urls[0]! });
    await back.waitForPipes(2);
    const workers = [w1, w2].map((worker, n) =>
      (async () => {
        const ctx = worker.context();
        for (let i = 0; i < 5; i++) {
          await reply(ctx, (x) => `${x} by ${n}`, { recvMode: "string", sendMode: "raw" });
        }
      })()
    );
    await using client = await reqrepSocket("req", { dial: front.urls[0]! });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(client.context(), `job${i}`, {
          sendMode: "raw",
          recvMode: "string",
          timeout: 5000,
        })),
    );
    for (let i = 0; i < 10; i++) assert.match(answers[i] as string, new RegExp(`^job${i} by [01]`));
    assert.ok(
      answers.some((a) => / by 0/.test(a as string)) &&
        answers.some((a) => / by 1/.test(a as string)),
    );
    await Promise.all(workers);
    controller.abort();
    await relaying;
    await using pub = await socket("pub", { raw: true });
    await assert.rejects(device(front, pub), TypeError);
  });
});

Deno.test("tls+tcp and wss: server certificates verified, insecure on request, client certificates required by a CA", async (t) => {
  const certs: TestCertificates = await makeCertificates();
  try {
    await withTimeout(30_000, async () => {
      await t.step("pub/sub over tls+tcp with the CA; another CA is refused", async () => {
        await using pub = await socket("pub", {
          listen: "tls+tcp://127.0.0.1:0",
          tls: { cert: certs.serverCert, key: certs.serverKey },
        });
        await using sub = await socket("sub", {
          dial: pub.urls[0]!,
          subscribe: "",
          tls: { ca: certs.ca },
        });
        await pub.waitForPipes(1);
        await pub.sendBytes(bytes("secret"));
        assert.equal(text((await sub.recvMessage({ timeout: 5000 })).body), "secret");
        await using stranger = await socket("sub", { tls: { ca: certs.rogueCert } });
        await assert.rejects(stranger.dial(pub.urls[0]!, { wait: true }), ConnectionError);
        await using blind = await socket("sub", { tls: {} });
        await assert.rejects(
          blind.dial(pub.urls[0]!, { wait: true }),
          /certificate|UnknownIssuer/i,
        );
      });
      await t.step("insecure dials a server no CA vouches for", async () => {
        await using pull = await socket("pull", {
          listen: "tls+tcp://127.0.0.1:0",
          tls: { cert: certs.rogueCert, key: certs.rogueKey },
        });
        await using push = await socket("push", { tls: { insecure: true } });
        await push.dial(pull.urls[0]!, { wait: true });
        await push.sendBytes(bytes("anyway"));
        assert.equal(text((await pull.recvMessage({ timeout: 5000 })).body), "anyway");
      });
      await t.step(
        "a listener given a CA admits only clients whose certificate it signed",
        async () => {
          const errors: Error[] = [];
          await using pull = await socket("pull", {
            listen: "tls+tcp://127.0.0.1:0",
            tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca },
            onError: (e) => errors.push(e),
          });
          for (
            const tls of [{ ca: certs.ca }, {
              ca: certs.ca,
              cert: certs.rogueCert,
              key: certs.rogueKey,
            }]
          ) {
            await using intruder = await socket("push", { tls, reconnectMinimum: 5000 });
            await intruder.dial(pull.urls[0]!).catch(() => {});
            await intruder.sendBytes(bytes("let me in"), { timeout: 300 }).catch(() => {});
            assert.equal(pull.pipeCount, 0);
          }
          await using member = await socket("push", {
            dial: pull.urls[0]!,
            tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
          });
          await member.sendBytes(bytes("member"), { timeout: 5000 });
          assert.equal(text((await pull.recvMessage({ timeout: 5000 })).body), "member");
          assert.equal(pull.pipeCount, 1);
        },
      );
      await t.step("push/pull over wss:// with the CA", async () => {
        await using pull = await socket("pull", {
          listen: "wss://127.0.0.1:0/jobs",
          tls: { cert: certs.serverCert, key: certs.serverKey },
        });
        await using push = await socket("push", { dial: pull.urls[0]!, tls: { ca: certs.ca } });
        await push.sendBytes(bytes("over wss"), { timeout: 5000 });
        assert.equal(text((await pull.recvMessage({ timeout: 5000 })).body), "over wss");
      });
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("borrowBuffers: large messages recycle their buffers and arrive intact, byte by byte", async () => {
  await withTimeout(30_000, async () => {
    await using pull = await socket("pull", { listen: "tcp://127.0.0.1:0", borrowBuffers: true });
    await using push = await socket("push", { dial: pull.urls[0]! });
    const size = 200 * 1024;
    const buffers = new Set<ArrayBufferLike>();
    const sending = (async () => {
      for (let n = 0; n < 40; n++) {
        const body = new Uint8Array(size);
        for (let i = 0; i < size; i++) body[i] = (i * 7 + n) & 0xff;
        await push.sendBytes(body);
      }
    })();
    for (let n = 0; n < 40; n++) {
      const { body } = await pull.recvMessage({ timeout: 5000 });
      assert.equal(body.length, size);
      for (let i = 0; i < size; i++) {
        if (body[i] !== ((i * 7 + n) & 0xff)) assert.fail(`message ${n} byte ${i} is ${body[i]}`);
      }
      buffers.add(body.buffer);
    }
    await sending;
    assert.ok(buffers.size < 40, `${buffers.size} buffers for 40 messages: none was reused`);
  });
});

Deno.test("ws: a text frame or an oversized message drops only that pipe; wrong subprotocols get 400", async () => {
  await withTimeout(15_000, async () => {
    await using pull = await socket("pull", {
      listen: "ws://127.0.0.1:0/jobs",
      maxMessageBytes: 1024,
    });
    await using push = await socket("push", { dial: pull.urls[0]! });
    await pull.waitForPipes(1);
    for (const [bad, code] of [["text", 1003], [new Uint8Array(2048), 1009]] as const) {
      const rogue = new WebSocket(pull.urls[0]!, "pull.sp.nanomsg.org");
      await new Promise((resolve) => rogue.addEventListener("open", resolve, { once: true }));
      const closed = new Promise<CloseEvent>((resolve) =>
        rogue.addEventListener("close", resolve, { once: true })
      );
      rogue.send(bad);
      assert.equal((await closed).code, code);
      await push.sendBytes(bytes("still served"));
      assert.equal(text((await pull.recvMessage({ timeout: 10_000 })).body), "still served");
    }
    // A pub's subprotocol is not what a pull listener speaks.
    const refused = await fetch(pull.urls[0]!.replace("ws://", "http://"), {
      headers: {
        upgrade: "websocket",
        connection: "upgrade",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-protocol": "sub.sp.nanomsg.org",
      },
    });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /pull\.sp\.nanomsg\.org/);
    assert.equal(pull.pipeCount, 1);
  });
});

Deno.test("device: a raw sub/pub pair forwards a publisher to subscribers behind it", async () => {
  await withTimeout(15_000, async () => {
    await using upstream = await socket("pub", { listen: "tcp://127.0.0.1:0" });
    await using inbound = await socket("sub", { raw: true, dial: upstream.urls[0]! });
    await using outbound = await socket("pub", { raw: true, listen: "tcp://127.0.0.1:0" });
    const controller = new AbortController();
    const forwarding = device(inbound, outbound, { signal: controller.signal });
    await using monitor = await socket("sub", { dial: outbound.urls[0]!, subscribe: "log " });
    await upstream.waitForPipes(1);
    await outbound.waitForPipes(1);
    for (const line of ["log one", "metric 3", "log two"]) await upstream.sendBytes(bytes(line));
    assert.equal(text((await monitor.recvMessage({ timeout: 10_000 })).body), "log one");
    assert.equal(text((await monitor.recvMessage({ timeout: 10_000 })).body), "log two");
    controller.abort();
    await forwarding;
  });
});

Deno.test("device: a raw respondent/surveyor pair relays a survey to respondents behind it", async () => {
  await withTimeout(15_000, async () => {
    await using front = await socket("respondent", { raw: true, listen: "tcp://127.0.0.1:0" });
    await using back = await socket("surveyor", { raw: true, listen: "tcp://127.0.0.1:0" });
    const controller = new AbortController();
    const relaying = device(front, back, { signal: controller.signal });
    const workers = await Promise.all(
      [0, 1, 2].map(() => socket("respondent", { dial: back.urls[0]! })),
    );
    try {
      await back.waitForPipes(3);
      const answering = workers.map(async (worker, n) => {
        const survey = await worker.recvMessage({ timeout: 5000 });
        await worker.sendBytes(bytes(`${text(survey.body)}: worker ${n}`));
      });
      // Settled below; a failure before that must not leave them unhandled.
      for (const answer of answering) answer.catch(() => {});
      await using surveyor = await socket("surveyor", {
        dial: front.urls[0]!,
        surveyTime: 3000,
      });
      await surveyor.waitForPipes(1);
      await surveyor.sendBytes(bytes("status?"));
      const answers: string[] = [];
      for (let i = 0; i < 3; i++) answers.push(text((await surveyor.recvMessage()).body));
      assert.deepEqual(answers.sort(), [0, 1, 2].map((n) => `status?: worker ${n}`));
      await Promise.all(answering);
    } finally {
      controller.abort();
      await relaying;
      await Promise.all(workers.map((worker) => worker.close()));
    }
  });
});

Deno.test("pub: a subscriber that stops reading skips to the newest messages (NNG drops the oldest queued)", async () => {
  await withTimeout(30_000, async () => {
    await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0", sendBuffer: 4 });
    const port = Number(pub.urls[0]!.split(":").at(-1));
    // A sub that completes the handshake, then reads nothing until the publisher is done.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x21, 0, 0]));
      await pub.waitForPipes(1);
      const total = 40_000;
      const body = new Uint8Array(1024);
      for (let i = 0; i < total; i++) {
        new DataView(body.buffer).setUint32(0, i);
        await pub.sendBytes(body.slice());
        if (i % 256 === 255) await yieldToIo();
      }
      await pub.sendBytes(bytes("END"));
      assert.ok(pub.dropped > 0, "nothing was dropped: the kernel took it all");
      const decoder = new FrameDecoder("tcp", 4096);
      const received: number[] = [];
      let ended = false;
      const buffer = new Uint8Array(64 * 1024);
      const header = new Uint8Array(8);
      let headerRead = 0;
      while (!ended) {
        const n = await conn.read(buffer);
        assert.ok(n !== null, "publisher closed before END");
        let chunk = buffer.subarray(0, n);
        if (headerRead < 8) {
          const take = Math.min(8 - headerRead, chunk.length);
          header.set(chunk.subarray(0, take), headerRead);
          headerRead += take;
          chunk = chunk.subarray(take);
        }
        decoder.push(chunk, (message) => {
          if (text(message) === "END") ended = true;
          else received.push(new DataView(message.buffer, message.byteOffset).getUint32(0));
        });
      }
      assert.ok(received.length < total, `all ${total} arrived`);
      assert.deepEqual(received, [...received].sort((a, b) => a - b));
      // Dropping the oldest keeps the newest: the last message sent is there.
      assert.equal(received.at(-1), total - 1);
    } finally {
      conn.close();
    }
  });
});

/** A 16 KiB message numbered `i` (its first 4 bytes), and the number back. */
const numbered = (i: number) => {
  const body = new Uint8Array(16 * 1024);
  new DataView(body.buffer).setUint32(0, i);
  return body;
};
const numberOf = (body: Uint8Array) =>
  body.length === 16 * 1024 ? new DataView(body.buffer, body.byteOffset).getUint32(0) : text(body);

/**
 * Sends numbered messages to a reader that reads nothing until one send is held back: 4,096 x
 * 16 KiB is more than any connection holds. Returns how many were sent and the held send.
 */
async function sendUntilHeldBack(sock: Socket): Promise<{ sent: number; held: Promise<void> }> {
  const heldBefore = sock.heldBack;
  let sent = 0;
  let held: Promise<void> | undefined;
  for (; sent < 4096 && held === undefined; sent++) {
    const sending = sock.sendBytes(numbered(sent));
    if (sock.heldBack > heldBefore) held = sending;
    else await sending;
  }
  assert.ok(held !== undefined, `${sent} sends, none held back; dropped ${sock.dropped}`);
  return { sent, held };
}

Deno.test('pub slowSubscriber "wait": a subscriber that reads nothing holds sends back; then every message arrives in order', async () => {
  await withTimeout(30_000, async () => {
    await using pub = await socket("pub", {
      listen: "tcp://127.0.0.1:0",
      sendBuffer: 4,
      slowSubscriber: "wait",
    });
    const port = Number(pub.urls[0]!.split(":").at(-1));
    // A sub that completes the handshake, then reads nothing until a send is held back.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x21, 0, 0]));
      await pub.waitForPipes(1);
      const { sent, held } = await sendUntilHeldBack(pub);
      // Later sends wait behind it, in order; one given up on is never sent.
      const giveUp = new AbortController();
      const abandoned = pub.sendBytes(bytes("abandoned"), { signal: giveUp.signal });
      const last = pub.sendBytes(bytes("END"));
      giveUp.abort(new Error("given up"));
      await assert.rejects(abandoned, /given up/);
      const decoder = new FrameDecoder("tcp", 64 * 1024);
      const received: (number | string)[] = [];
      const buffer = new Uint8Array(64 * 1024);
      let skip = 8; // pub's SP header
      while (received.at(-1) !== "END") {
        const n = await conn.read(buffer);
        assert.ok(n !== null, "publisher closed before END");
        const chunk = buffer.subarray(Math.min(skip, n), n);
        skip -= Math.min(skip, n);
        decoder.push(chunk, (message) => received.push(numberOf(message)));
      }
      await held;
      await last;
      assert.deepEqual(received, [...Array.from({ length: sent }, (_, i) => i), "END"]);
      assert.equal(pub.dropped, 0);
    } finally {
      conn.close();
    }
  });
});

Deno.test('sub slowSubscriber "wait": an application that reads late loses nothing; its pipe waits instead', async () => {
  await withTimeout(30_000, async () => {
    await using pub = await socket("pub", {
      listen: "tcp://127.0.0.1:0",
      slowSubscriber: "wait",
    });
    await using sub = await socket("sub", {
      dial: pub.urls[0]!,
      subscribe: "",
      recvBuffer: 16,
      slowSubscriber: "wait",
    });
    await pub.waitForPipes(1);
    await sub.waitForPipes(1);
    const total = 5000;
    const held = Promise.withResolvers<void>();
    const sending = (async () => {
      for (let i = 0; i < total; i++) {
        const sending = pub.sendBytes(bytes(String(i)));
        if (pub.heldBack > 0) held.resolve();
        await sending;
      }
    })();
    // The application reads once the publisher is done or held back by this subscriber.
    await Promise.race([sending, held.promise]);
    const received: number[] = [];
    while (received.length < total) {
      received.push(Number(text((await sub.recvMessage({ timeout: 10_000 })).body)));
    }
    await sending;
    assert.deepEqual(received, Array.from({ length: total }, (_, i) => i));
    assert.equal(sub.dropped, 0);
    assert.equal(pub.dropped, 0);
  });
});

Deno.test('bus slowPeer "wait": a peer that stops reading holds sends back; then every message arrives in order', async () => {
  await withTimeout(30_000, async () => {
    await using hub = await socket("bus", {
      listen: "tcp://127.0.0.1:0",
      sendBuffer: 4,
      slowPeer: "wait",
    });
    // A bus peer whose application reads nothing: its queue fills and it stops reading its pipe.
    await using peer = await socket("bus", { dial: hub.urls[0]!, recvBuffer: 4 });
    await hub.waitForPipes(1);
    await peer.waitForPipes(1);
    const { sent, held } = await sendUntilHeldBack(hub);
    // A later send waits behind it, in order.
    const last = hub.sendBytes(bytes("END"));
    const received: (number | string)[] = [];
    while (received.at(-1) !== "END") {
      received.push(numberOf((await peer.recvMessage({ timeout: 10_000 })).body));
    }
    await held;
    await last;
    assert.deepEqual(received, [...Array.from({ length: sent }, (_, i) => i), "END"]);
    assert.equal(hub.dropped, 0);
  });
});

Deno.test('bus slowPeer "wait": a held send goes on when the slow peer leaves, and close fails one still held', async () => {
  await withTimeout(30_000, async () => {
    await using hub = await socket("bus", {
      listen: "tcp://127.0.0.1:0",
      sendBuffer: 4,
      slowPeer: "wait",
      linger: 0,
    });
    const port = Number(hub.urls[0]!.split(":").at(-1));
    // A bus0 peer (protocol 0x0070) that completes the handshake, then reads nothing.
    const connect = async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x70, 0, 0]));
      return conn;
    };
    const slow = await connect();
    await hub.waitForPipes(1);
    const first = await sendUntilHeldBack(hub);
    const behind = hub.sendBytes(bytes("behind"));
    slow.close();
    // With its only full pipe gone, the held send and the one behind it leave.
    await first.held;
    await behind;
    const stuck = await connect();
    try {
      await hub.waitForPipes(1);
      const second = await sendUntilHeldBack(hub);
      const closing = hub.close();
      await assert.rejects(second.held, ConnectionError);
      await closing;
    } finally {
      stuck.close();
    }
  });
});

Deno.test('raw bus slowPeer "wait": a send held only behind one given up on leaves at once', async () => {
  await withTimeout(30_000, async () => {
    await using hub = await socket("bus", {
      raw: true,
      listen: "tcp://127.0.0.1:0",
      sendBuffer: 4,
      slowPeer: "wait",
      linger: 0,
    });
    const port = Number(hub.urls[0]!.split(":").at(-1));
    await using fast = await socket("bus", { dial: hub.urls[0]! });
    // A bus0 peer (protocol 0x0070) that says hello once, then reads nothing.
    const slow = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await slow.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x70, 0, 0]));
      await slow.write(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 4, ...bytes("slow")]));
      await fast.waitForPipes(1);
      await fast.sendBytes(bytes("fast"));
      // A raw socket's header names the pipe a message came from; sending, that pipe is skipped.
      const from = new Map<string, Uint8Array>();
      for (let i = 0; i < 2; i++) {
        const message = await hub.recvMessage({ timeout: 10_000 });
        from.set(text(message.body), message.header);
      }
      const giveUp = new AbortController();
      let held: Promise<void> | undefined;
      for (let sent = 0; sent < 4096 && held === undefined; sent++) {
        // Skipping the fast peer: these go to the slow one only, until its pipe is full.
        const sending = hub.sendBytes(numbered(sent), {
          header: from.get("fast")!,
          signal: giveUp.signal,
        });
        if (hub.heldBack > 0) held = sending;
        else await sending;
      }
      assert.ok(held !== undefined, "the slow peer's pipe never filled");
      // Skipping the slow peer: its only pipe has room, yet it waits its turn behind the held one.
      const toFast = hub.sendBytes(bytes("to fast"), {
        header: from.get("slow")!,
        timeout: 10_000,
      });
      giveUp.abort(new Error("given up"));
      await assert.rejects(held, /given up/);
      await toFast;
      assert.equal(text((await fast.recvMessage({ timeout: 10_000 })).body), "to fast");
    } finally {
      slow.close();
    }
  });
});

Deno.test("bus by default: a peer that stops reading misses messages and sends never wait (NNG's bus0)", async () => {
  await withTimeout(30_000, async () => {
    await using hub = await socket("bus", { listen: "tcp://127.0.0.1:0", sendBuffer: 4 });
    await using peer = await socket("bus", { dial: hub.urls[0]!, recvBuffer: 4 });
    await hub.waitForPipes(1);
    await peer.waitForPipes(1);
    const total = 4096;
    for (let i = 0; i < total; i++) {
      await hub.sendBytes(numbered(i));
      if (i % 4 === 3) await yieldToIo();
    }
    assert.equal(hub.heldBack, 0);
    assert.ok(hub.dropped > 0, "nothing was dropped: the connection took 64 MiB unread");
    // The peer reads again; once the hub's queue is written, END finds room.
    const received: (number | string)[] = [];
    const reading = (async () => {
      while (received.at(-1) !== "END") {
        received.push(numberOf((await peer.recvMessage({ timeout: 10_000 })).body));
      }
    })();
    await hub.flush({ timeout: 10_000 });
    await hub.sendBytes(bytes("END"));
    await reading;
    const numbers = received.slice(0, -1) as number[];
    assert.equal(numbers.length, total - hub.dropped);
    assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b));
  });
});

Deno.test("push: a puller that stops reading is skipped once its pipe is full; the other gets the rest", async () => {
  await withTimeout(30_000, async () => {
    await using push = await socket("push", { listen: "tcp://127.0.0.1:0" });
    await using pull = await socket("pull", { dial: push.urls[0]! });
    const port = Number(push.urls[0]!.split(":").at(-1));
    // A puller that completes the handshake and then never reads.
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await stalled.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x51, 0, 0]));
      await push.waitForPipes(2);
      const total = 20_000;
      let received = 0;
      const reading = (async () => {
        while (true) {
          try {
            await pull.recvMessage();
          } catch {
            return;
          }
          received++;
        }
      })();
      const body = new Uint8Array(1024);
      // Every send finds a ready pipe: none waits on the stalled peer for good.
      for (let i = 0; i < total; i++) await push.sendBytes(body, { timeout: 5000 });
      await waitFor("most messages at the working puller", () => received >= total * 0.75);
      await pull.close();
      await reading;
    } finally {
      stalled.close();
    }
  });
});

Deno.test("pair over ws: a send waiting on a full pipe goes once it has room, before it empties", async () => {
  await withTimeout(15_000, async () => {
    await using pair = await socket("pair", { listen: "ws://127.0.0.1:0/p" });
    const port = Number(new URL(pair.urls[0]!.replace("ws://", "http://")).port);
    // A peer that completes the handshake and then never reads.
    const peer = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await peer.write(bytes(
        `GET /p HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: pair.sp.nanomsg.org\r\n\r\n",
      ));
      await pair.waitForPipes(1);
      // Called together, before the event loop lets the socket write anything: 63 frames of
      // 64 KiB, then one of 1 MiB while the pipe is still under its 4 MiB bound, then a last
      // one that must wait for room. (bufferedAmount drops a frame's bytes once all of it is
      // written.)
      const sends: Promise<void>[] = [];
      for (let i = 0; i < 63; i++) sends.push(pair.sendBytes(new Uint8Array(64 * 1024)));
      sends.push(pair.sendBytes(new Uint8Array(1024 * 1024)));
      const last = pair.sendBytes(bytes("after the wait"));
      await Promise.all(sends);
      // The kernel's socket buffers take the first megabyte or more of small frames but not
      // the 1 MiB frame after all 3.94 MiB of them (Linux's default buffers hold about 4 MiB
      // for a peer that never reads): the pipe has room again while bytes remain, and the last
      // send goes.
      await last;
    } finally {
      peer.close();
    }
  });
});

Deno.test("respondent: a surveyor that never reads its answers holds a bounded queue; others still answered", async () => {
  await withTimeout(20_000, async () => {
    const errors: Error[] = [];
    await using respondent = await socket("respondent", {
      listen: "tcp://127.0.0.1:0",
      onError: (error) => errors.push(error),
    });
    const port = Number(respondent.urls[0]!.split(":").at(-1));
    // A surveyor by hand: handshake, 40 surveys, then it never reads a byte.
    const hostile = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const frames = new Uint8Array(40 * 16);
      const view = new DataView(frames.buffer);
      frames.set([0, 0x53, 0x50, 0, 0, 0x62, 0, 0]);
      for (let i = 0; i < 39; i++) {
        view.setUint32(8 + i * 16 + 4, 8); // u64 length 8: survey id + 4-byte body
        view.setUint32(8 + i * 16 + 8, 0x80000000 + i);
      }
      await hostile.write(frames.subarray(0, 8 + 39 * 16));
      const answer = new Uint8Array(1024 * 1024);
      for (let i = 0; i < 39; i++) {
        await respondent.recvMessage({ timeout: 5000 });
        await respondent.sendBytes(answer);
      }
      await waitFor(
        "the answers-not-read report",
        () => errors.some((error) => /not reading its answers/.test(error.message)),
      );
      await using surveyor = await socket("surveyor", { dial: respondent.urls[0]! });
      await surveyor.waitForPipes(1);
      await surveyor.sendBytes(bytes("still there?"));
      const survey = await respondent.recvMessage({ timeout: 5000 });
      assert.equal(text(survey.body), "still there?");
      await respondent.sendBytes(bytes("yes"));
      assert.equal(text((await surveyor.recvMessage({ timeout: 5000 })).body), "yes");
    } finally {
      hostile.close();
    }
  });
});

Deno.test("push: messages still queued for a puller that dies go to the others (only what was on the wire is lost)", async () => {
  await withTimeout(30_000, async () => {
    await using push = await socket("push", { listen: "tcp://127.0.0.1:0", sendBuffer: 64 });
    const port = Number(push.urls[0]!.split(":").at(-1));
    // A puller that completes the handshake, never reads, then dies with 64 messages queued.
    const dying = await Deno.connect({ hostname: "127.0.0.1", port });
    await dying.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x51, 0, 0]));
    await push.waitForPipes(1);
    await using pull = await socket("pull", { dial: push.urls[0]! });
    await push.waitForPipes(2);
    const total = 200;
    const seen = new Set<number>();
    const reading = (async () => {
      while (true) {
        try {
          seen.add(readSeq((await pull.recvMessage()).body));
        } catch {
          return;
        }
      }
    })();
    const body = new Uint8Array(1024 * 1024);
    for (let i = 0; i < total; i++) {
      new DataView(body.buffer).setUint32(0, i);
      await push.sendBytes(body.slice(), { timeout: 5000 });
    }
    await waitFor(
      "the working puller to have what was not sent to the dying one",
      () => seen.size >= total - 64 - 40,
    );
    dying.close();
    // Lost: only what the dying puller's connection had taken (its kernel buffers, a few MiB).
    await waitFor("the dying puller's queue resent", () => seen.size >= total - 24);
    await pull.close();
    await reading;
  });
});

function readSeq(body: Uint8Array): number {
  return new DataView(body.buffer, body.byteOffset, 4).getUint32(0);
}

Deno.test("surveyor: answers not read before the survey time ends are discarded with the survey (as NNG)", async () => {
  await withTimeout(10_000, async () => {
    await using surveyor = await socket("surveyor", {
      listen: "tcp://127.0.0.1:0",
      surveyTime: 150,
    });
    await using respondent = await socket("respondent", { dial: surveyor.urls[0]! });
    await surveyor.waitForPipes(1);
    await surveyor.sendBytes(bytes("q1"));
    await respondent.recvMessage({ timeout: 10_000 });
    await respondent.sendBytes(bytes("in time"));
    const ctx = surveyor.context();
    await ctx.sendBytes(bytes("probe")); // its answer shows the first one has arrived too
    await respondent.recvMessage({ timeout: 10_000 });
    await respondent.sendBytes(bytes("probe answer"));
    assert.equal(text((await ctx.recvMessage({ timeout: 10_000 })).body), "probe answer");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await assert.rejects(surveyor.recvMessage({ timeout: 1000 }), TimeoutError);
  });
});

Deno.test("pair: messages still queued for a peer that goes away go to the next peer, first and in order", async () => {
  await withTimeout(30_000, async () => {
    for (const protocol of ["pair", "pair1"] as const) {
      await using pair = await socket(protocol, { listen: "tcp://127.0.0.1:0", sendBuffer: 32 });
      const port = Number(pair.urls[0]!.split(":").at(-1));
      // A peer that completes the handshake, never reads, then goes away with messages queued.
      const gone = await Deno.connect({ hostname: "127.0.0.1", port });
      await gone.write(
        new Uint8Array([0, 0x53, 0x50, 0, 0, protocol === "pair" ? 0x10 : 0x11, 0, 0]),
      );
      await pair.waitForPipes(1);
      const body = new Uint8Array(1024 * 1024);
      let sent = 0;
      // Until the queue is full: the kernel's buffers take a few MiB, then 32 wait here.
      while (true) {
        new DataView(body.buffer).setUint32(0, sent);
        try {
          await pair.sendBytes(body.slice(), { timeout: 300 });
        } catch {
          break;
        }
        sent++;
      }
      gone.close();
      await waitFor("the peer gone", () => pair.pipeCount === 0);
      await using next = await socket(protocol, { dial: pair.urls[0]! });
      await pair.sendBytes(bytes("new"));
      const got: number[] = [];
      while (true) {
        const message = await next.recvMessage({ timeout: 5000 });
        if (message.body.length === 3) break;
        got.push(readSeq(message.body));
      }
      assert.equal(got.length, 32, `${protocol}: the 32 queued messages reach the next peer`);
      assert.deepEqual(got, Array.from({ length: 32 }, (_, i) => sent - 32 + i));
    }
  });
});

Deno.test("device: requests still queued for a raw req's worker that goes away go to the next worker", async () => {
  await withTimeout(30_000, async () => {
    await using req = await socket("req", {
      raw: true,
      listen: "tcp://127.0.0.1:0",
      sendBuffer: 32,
    });
    const port = Number(req.urls[0]!.split(":").at(-1));
    // A REP worker that completes the handshake, never reads, then goes away.
    const gone = await Deno.connect({ hostname: "127.0.0.1", port });
    await gone.write(new Uint8Array([0, 0x53, 0x50, 0, 0, 0x31, 0, 0]));
    await req.waitForPipes(1);
    const body = new Uint8Array(1024 * 1024);
    let sent = 0;
    while (true) {
      new DataView(body.buffer).setUint32(0, sent);
      try {
        // The header a raw rep would have handed up: pipe id, then a request id (top bit set).
        await req.sendBytes(body.slice(), {
          header: new Uint8Array([0, 0, 0, 7, 0x80, 0, 0, sent & 0xff]),
          timeout: 300,
        });
      } catch {
        break;
      }
      sent++;
    }
    gone.close();
    await waitFor("the worker gone", () => req.pipeCount === 0);
    await using worker = await socket("rep", { raw: true, dial: req.urls[0]! });
    const got: number[] = [];
    for (let i = 0; i < 32; i++) {
      got.push(readSeq((await worker.recvMessage({ timeout: 5000 })).body));
    }
    assert.deepEqual(got, Array.from({ length: 32 }, (_, i) => sent - 32 + i));
  });
});

Deno.test("tls+tcp with client certificates: a peer stuck in the TLS handshake is cut at 10 s, holds up no one, and never delays close", async () => {
  const certs = await makeCertificates();
  try {
    await withTimeout(30_000, async () => {
      const pull = await socket("pull", {
        listen: "tls+tcp://127.0.0.1:0",
        tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca },
      });
      const port = Number(pull.urls[0]!.split(":").at(-1));
      const stuck = await Deno.connect({ hostname: "127.0.0.1", port });
      let lateStuck: Deno.Conn | undefined;
      try {
        const start = Date.now();
        const cut = (async () => {
          const buffer = new Uint8Array(64);
          while ((await stuck.read(buffer).catch(() => null)) !== null);
          return Date.now() - start;
        })();
        await using push = await socket("push", {
          dial: `tls+tcp://localhost:${port}`,
          tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
        });
        await push.sendBytes(bytes("through"));
        assert.equal(text((await pull.recvMessage({ timeout: 5000 })).body), "through");
        const after = await cut;
        assert.ok(after >= 9_000 && after < 13_000, `cut after ${after} ms`);
        // Closing never waits for a peer still in its handshake.
        lateStuck = await Deno.connect({ hostname: "127.0.0.1", port });
        await new Promise((resolve) => setTimeout(resolve, 100));
        const closing = Date.now();
        await pull.close();
        assert.ok(Date.now() - closing < 2000, `close took ${Date.now() - closing} ms`);
      } finally {
        stuck.close();
        lateStuck?.close();
        await pull.close();
      }
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("device: a raw socket that borrows buffers forwards large messages intact", async () => {
  await withTimeout(20_000, async () => {
    await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0" });
    await using xsub = await socket("sub", { raw: true, dial: pub.urls[0]!, borrowBuffers: true });
    await using xpub = await socket("pub", { raw: true, listen: "tcp://127.0.0.1:0" });
    await using sub = await socket("sub", { dial: xpub.urls[0]!, subscribe: "" });
    const stop = new AbortController();
    const relaying = device(xsub, xpub, { signal: stop.signal });
    try {
      await pub.waitForPipes(1);
      await xpub.waitForPipes(1);
      await sub.waitForPipes(1);
      for (let i = 0; i < 20; i++) await pub.sendBytes(new Uint8Array(1024 * 1024).fill(i));
      for (let i = 0; i < 20; i++) {
        const { body } = await sub.recvMessage({ timeout: 5000 });
        assert.ok(body.every((byte) => byte === i), `message ${i} arrived with other bytes in it`);
      }
    } finally {
      stop.abort();
      await relaying;
    }
  });
});
