/**
 * The family subcommands as a user runs them: `rsock pub` fed by standard input to `rsock sub`
 * with topics, `rsock survey` and `rsock respond`, nngcat pushing to `rsock pull` over
 * tls+tcp with a client certificate, and the permission gate.
 */
import assert from "node:assert/strict";
import { freePort, interopTest, withTimeout } from "./_peers.ts";
import { rsock, TestProcess, WORKER_READ } from "./_process.ts";
import { makeCertificates } from "./_tls.ts";
import { socket } from "../nng/mod.ts";
import { checkHeader, connectionHeader, FrameDecoder } from "../_internal/sp/wire.ts";
import { request, socket as reqrepSocket } from "../reqrep/mod.ts";

Deno.test("rsock pub publishes standard input lines; rsock sub prints its topics", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    await using sub = rsock([net], ["sub", "--dial", url, "--topic", "log:", "--count", "2"]);
    await using pub = rsock([net], ["pub", "--listen", url], { stdin: "piped" });
    const writer = pub.child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("log: one\nmetric: 3\nlog: two\n"));
    assert.equal((await sub.finished()).code, 0, sub.stderr);
    assert.equal(sub.stdout, "log: one\nlog: two\n");
    await writer.close();
    assert.equal((await pub.finished()).code, 0, pub.stderr);
  });
});

Deno.test("rsock survey prints the answers of rsock respond", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    await using surveyor = rsock([net], [
      "survey",
      "--listen",
      url,
      "--data",
      "status?",
      "--peers",
      "2",
      "--survey-time",
      "2s",
      "--count",
      "2",
    ]);
    await using a = rsock([net], ["respond", "--dial", url, "--answer", "a ok", "--count", "1"]);
    await using b = rsock([net], ["respond", "--dial", url, "--answer", "b ok", "--count", "1"]);
    assert.equal((await surveyor.finished()).code, 0, surveyor.stderr);
    assert.deepEqual(surveyor.stdout.split("\n").filter(Boolean).sort(), ["a ok", "b ok"]);
    for (const respondent of [a, b]) {
      assert.equal((await respondent.finished()).code, 0, respondent.stderr);
      assert.equal(respondent.stdout, "status?\n");
    }
  });
});

Deno.test("rsock sub without --allow-net says which flag to add", async () => {
  await withTimeout(10_000, async () => {
    await using sub = rsock([], ["sub", "--dial", "tcp://127.0.0.1:5999"]);
    assert.equal((await sub.finished()).code, 2);
    assert.match(sub.stderr, /--allow-net=127\.0\.0\.1:5999/);
  });
});

interopTest(
  "rsock pull on tls+tcp with --tls-ca admits nngcat's client certificate",
  ["nngcat"],
  async () => {
    const certs = await makeCertificates();
    try {
      await withTimeout(30_000, async () => {
        const port = freePort();
        await using pull = rsock([`--allow-net=127.0.0.1:${port}`, `--allow-read=${certs.dir}`], [
          "pull",
          "--listen",
          `tls+tcp://127.0.0.1:${port}`,
          "--tls-cert",
          certs.path("server.crt"),
          "--tls-key",
          certs.path("server.key"),
          "--tls-ca",
          certs.path("ca.crt"),
          "--count",
          "1",
        ]);
        await pull.waitForOutput(/listening on/);
        await using push = new TestProcess("/usr/bin/nngcat", [
          "--push",
          "--dial",
          `tls+tcp://localhost:${port}`,
          "--cacert",
          certs.path("ca.crt"),
          "--cert",
          certs.path("client.crt"),
          "--key",
          certs.path("client.key"),
          "--data",
          "signed job",
        ]);
        assert.equal((await pull.finished()).code, 0, pull.stderr);
        assert.equal(pull.stdout, "signed job\n");
        assert.equal((await push.finished()).code, 0, push.stderr);
      });
    } finally {
      await Deno.remove(certs.dir, { recursive: true });
    }
  },
);

interopTest(
  "rsock serve --rep tls+tcp://0.0.0.0 with --tls-ca leaves loopback and admits only certified peers",
  ["nngcat"],
  async () => {
    const certs = await makeCertificates();
    try {
      await withTimeout(60_000, async () => {
        const port = freePort();
        // The session's worker module needs reading too (WORKER_READ), in the same grant.
        const flags = [
          `--allow-net=0.0.0.0:${port}`,
          "--allow-sys",
          `${WORKER_READ},${certs.dir}`,
        ];
        const tlsArgs = [
          "--tls-cert",
          certs.path("server.crt"),
          "--tls-key",
          certs.path("server.key"),
        ];
        {
          await using refused = rsock(flags, [
            "serve",
            "--rep",
            `tls+tcp://0.0.0.0:${port}`,
            ...tlsArgs,
          ]);
          assert.equal((await refused.finished()).code, 2);
          assert.match(refused.stderr, /not loopback.*--tls-ca/);
        }
        await using server = rsock(flags, [
          "serve",
          "--rep",
          `tls+tcp://0.0.0.0:${port}`,
          ...tlsArgs,
          "--tls-ca",
          certs.path("ca.crt"),
        ]);
        await server.waitForOutput(/tls\+tcp:\/\/0\.0\.0\.0/);
        const ask = (identity: string[]) =>
          new TestProcess("/usr/bin/nngcat", [
            "--req",
            "--dial",
            `tls+tcp://localhost:${port}`,
            "--cacert",
            certs.path("ca.crt"),
            ...identity,
            "--data",
            "6 * 7",
            "--ascii",
          ]);
        {
          await using stranger = ask([]);
          assert.notEqual((await stranger.finished()).code, 0);
        }
        await using member = ask([
          "--cert",
          certs.path("client.crt"),
          "--key",
          certs.path("client.key"),
        ]);
        assert.equal((await member.finished()).code, 0, member.stderr);
        assert.equal(member.stdout, "42");
      });
    } finally {
      await Deno.remove(certs.dir, { recursive: true });
    }
  },
);

Deno.test("rsock serve --pub publishes every evaluation's output to subscribers", async () => {
  await withTimeout(30_000, async () => {
    const repPort = freePort();
    const pubPort = freePort();
    await using server = rsock(
      [`--allow-net=127.0.0.1:${repPort},127.0.0.1:${pubPort}`, "--allow-sys", WORKER_READ],
      [
        "serve",
        "--rep",
        `tcp://127.0.0.1:${repPort}`,
        "--pub",
        `tcp://127.0.0.1:${pubPort}`,
      ],
    );
    await server.waitForOutput(/Ctrl-C or SIGTERM stops/);
    await using monitor = await socket("sub", {
      dial: `tcp://127.0.0.1:${pubPort}`,
      subscribe: "eval ",
    });
    await monitor.waitForPipes(1);
    await using req = await reqrepSocket("req", { dial: `tcp://127.0.0.1:${repPort}` });
    assert.equal(await request(req, "console.log('working'); 6 * 7", { timeout: 10_000 }), 42);
    const { body } = await monitor.recvMessage({ timeout: 10_000 });
    assert.equal(new TextDecoder().decode(body), "eval working\n42");
  });
});

Deno.test("rsock pub: thousands of lines in one chunk of standard input all reach a subscriber", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    await using sub = rsock([net], ["sub", "--dial", url, "--count", "5000"]);
    await using pub = rsock([net], ["pub", "--listen", url], { stdin: "piped" });
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i}`);
    const writer = pub.child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(lines.join("\n") + "\n"));
    assert.equal((await sub.finished()).code, 0, sub.stderr);
    assert.equal(sub.stdout, lines.join("\n") + "\n");
    await writer.close();
    assert.equal((await pub.finished()).code, 0, pub.stderr);
  });
});

/**
 * A sub0 (or bus0) peer on a bare TCP connection: it reads only when the test asks, so it is as
 * slow a subscriber as the test makes it, on any machine.
 */
async function rawPeer(port: number, protocol: "sub0" | "bus0" = "sub0") {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(connectionHeader(protocol));
  const header = new Uint8Array(8);
  for (let filled = 0; filled < 8;) {
    const n = await conn.read(header.subarray(filled));
    if (n === null) throw new Error("pub closed during the SP handshake");
    filled += n;
  }
  checkHeader(header, protocol);
  return {
    /** Reads until `count` messages came (or the connection ended); their bodies as text. */
    async read(count: number): Promise<string[]> {
      const decoder = new FrameDecoder("tcp", 1024 * 1024);
      const text = new TextDecoder();
      const got: string[] = [];
      const buffer = new Uint8Array(64 * 1024);
      while (got.length < count) {
        const n = await conn.read(buffer);
        if (n === null) break;
        decoder.push(buffer.subarray(0, n), (body) => got.push(text.decode(body)));
      }
      return got;
    },
    [Symbol.dispose]() {
      conn.close();
    },
  };
}

/**
 * Input more than a subscriber that reads nothing can hold: twice the largest TCP send buffer
 * and the default receive buffer (which grows only as its reader reads) and pub's queue of 1024
 * messages, so a publisher that never waits must take all of it and one that waits cannot.
 */
async function moreThanASubscriberHolds(): Promise<string[]> {
  const bytes = async (file: string, field: number, fallback: number) => {
    try {
      return Number((await Deno.readTextFile(file)).trim().split(/\s+/)[field]) || fallback;
    } catch {
      return fallback;
    }
  };
  const line = (i: number) => `line ${String(i).padStart(8, "0")} ${"x".repeat(400)}`;
  const total = 2 * (await bytes("/proc/sys/net/ipv4/tcp_wmem", 2, 4 << 20) +
    await bytes("/proc/sys/net/ipv4/tcp_rmem", 1, 128 << 10) + 1024 * line(0).length);
  return Array.from({ length: Math.ceil(total / line(0).length) }, (_, i) => line(i));
}

for (const [role, reader] of [["pub", "subscriber"], ["bus", "peer"]] as const) {
  Deno.test(`rsock ${role} waits for a ${reader} whose queue is full: every line of a large input arrives`, async () => {
    await withTimeout(60_000, async () => {
      const port = freePort();
      const url = `tcp://127.0.0.1:${port}`;
      await using cli = rsock([`--allow-net=127.0.0.1:${port}`], [role, "--listen", url], {
        stdin: "piped",
      });
      await cli.waitForOutput(/listening on/);
      using peer = await rawPeer(port, role === "pub" ? "sub0" : "bus0");
      const lines = await moreThanASubscriberHolds();
      const writer = cli.child.stdin.getWriter();
      const writing = writer.write(new TextEncoder().encode(lines.join("\n") + "\n"))
        .then(() => writer.close());
      // The peer reads nothing until the command says it is waiting for it (or took all the
      // input, which it cannot do while waiting).
      const first = await Promise.race([
        cli.waitForOutput(new RegExp(`a ${reader}'s queue is full`)).then(() => "waits"),
        writing.then(() => "took everything"),
      ]);
      assert.equal(
        first,
        "waits",
        `${role} took ${lines.length} lines the ${reader} could not hold`,
      );
      const got = await peer.read(lines.length);
      assert.equal(got.length, lines.length);
      assert.ok(got.every((line, i) => line === lines[i]), "lines arrive whole and in order");
      await writing;
      // bus goes on printing what its peers send until Ctrl-C; pub ends with its input.
      if (role === "bus") cli.child.kill("SIGTERM");
      assert.equal((await cli.finished()).code, role === "bus" ? 143 : 0, cli.stderr);
    });
  });
}

Deno.test("rsock pub --drop-slow never waits for a subscriber that does not read", async () => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    await using pub = rsock([`--allow-net=127.0.0.1:${port}`], [
      "pub",
      "--listen",
      url,
      "--drop-slow",
    ], { stdin: "piped" });
    await pub.waitForOutput(/listening on/);
    using _subscriber = await rawPeer(port);
    const lines = await moreThanASubscriberHolds();
    const writer = pub.child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(lines.join("\n") + "\n"));
    await writer.close();
    assert.equal((await pub.finished()).code, 0, pub.stderr);
    assert.doesNotMatch(pub.stderr, /queue is full/);
  });
});

Deno.test("rsock bus: every line of a large input reaches a peer (one chunk of input fills no queue)", async () => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    await using bus = rsock([`--allow-net=127.0.0.1:${port}`], ["bus", "--listen", url], {
      stdin: "piped",
    });
    await using peer = await socket("bus", { dial: url, retryFirstDial: true });
    const lines = Array.from({ length: 20_000 }, (_, i) => String(i));
    const writer = bus.child.stdin.getWriter();
    const writing = writer.write(new TextEncoder().encode(lines.join("\n") + "\n"))
      .then(() => writer.close());
    const got: string[] = [];
    while (got.length < lines.length) {
      got.push(new TextDecoder().decode((await peer.recvMessage({ timeout: 10_000 })).body));
    }
    assert.ok(got.every((line, i) => line === lines[i]), "lines arrive whole and in order");
    await writing;
    bus.child.kill("SIGTERM");
    assert.equal((await bus.finished()).code, 143, bus.stderr);
  });
});

Deno.test("rsock bus --drop-slow never waits for a peer that does not read", async () => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    await using bus = rsock([`--allow-net=127.0.0.1:${port}`], [
      "bus",
      "--listen",
      url,
      "--drop-slow",
    ], { stdin: "piped" });
    await bus.waitForOutput(/listening on/);
    // A bus0 peer that completes the handshake and reads nothing.
    using _peer = await rawPeer(port, "bus0");
    const lines = await moreThanASubscriberHolds();
    const writer = bus.child.stdin.getWriter();
    // Taken whole: a bus that waited for this peer could not take it.
    await writer.write(new TextEncoder().encode(lines.join("\n") + "\n"));
    await writer.close();
    bus.child.kill("SIGTERM");
    assert.equal((await bus.finished()).code, 143, bus.stderr);
  });
});

Deno.test("rsock pair and rsock bus send their input and print what their peers send", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    {
      await using cli = rsock([net], ["pair", "--listen", url, "--data", "hello", "--count", "1"]);
      await using peer = await socket("pair", { dial: url, retryFirstDial: true });
      const got = await peer.recvMessage({ timeout: 10_000 });
      assert.equal(new TextDecoder().decode(got.body), "hello");
      await peer.sendBytes(new TextEncoder().encode("back"));
      assert.equal((await cli.finished()).code, 0, cli.stderr);
      assert.equal(cli.stdout, "back\n");
    }
    const busPort = freePort();
    const busUrl = `tcp://127.0.0.1:${busPort}`;
    await using cli = rsock([`--allow-net=127.0.0.1:${busPort}`], [
      "bus",
      "--listen",
      busUrl,
      "--data",
      "hi all",
      "--peers",
      "2",
      "--count",
      "2",
    ]);
    await using a = await socket("bus", { dial: busUrl, retryFirstDial: true });
    await using b = await socket("bus", { dial: busUrl, retryFirstDial: true });
    for (const [name, peer] of [["a", a], ["b", b]] as const) {
      assert.equal(
        new TextDecoder().decode((await peer.recvMessage({ timeout: 10_000 })).body),
        "hi all",
      );
      await peer.sendBytes(new TextEncoder().encode(`from ${name}`));
    }
    assert.equal((await cli.finished()).code, 0, cli.stderr);
    assert.deepEqual(cli.stdout.split("\n").filter(Boolean).sort(), ["from a", "from b"]);
  });
});

Deno.test("rsock serve --pub also publishes the session's pushes and --socket messages", async () => {
  await withTimeout(30_000, async () => {
    const [evalPort, socketPort, pubPort] = [freePort(), freePort(), freePort()];
    await using server = rsock(
      [
        `--allow-net=127.0.0.1:${evalPort},127.0.0.1:${socketPort},127.0.0.1:${pubPort}`,
        "--allow-sys",
        WORKER_READ,
      ],
      [
        "serve",
        "--eval",
        String(evalPort),
        "--socket",
        String(socketPort),
        "--pub",
        `tcp://127.0.0.1:${pubPort}`,
      ],
    );
    await server.waitForOutput(/Ctrl-C or SIGTERM stops/);
    await using monitor = await socket("sub", {
      dial: `tcp://127.0.0.1:${pubPort}`,
      subscribe: ["push ", "socket "],
    });
    await monitor.waitForPipes(1);
    const said = new TextEncoder();
    const client = await Deno.connect({ hostname: "127.0.0.1", port: evalPort });
    try {
      await client.write(said.encode("sendSocketClients('progress 50%')\n"));
      const { body } = await monitor.recvMessage({ timeout: 10_000 });
      assert.equal(new TextDecoder().decode(body), "push progress 50%");
    } finally {
      client.close();
    }
    const sender = await Deno.connect({ hostname: "127.0.0.1", port: socketPort });
    try {
      await sender.write(said.encode("hello from R\n"));
      const { body } = await monitor.recvMessage({ timeout: 10_000 });
      assert.equal(new TextDecoder().decode(body), "socket hello from R");
    } finally {
      sender.close();
    }
  });
});

Deno.test("rsock sub URL --subscribe '' --quoted keeps a multi-line message's boundaries, as nngcat", async () => {
  await withTimeout(30_000, async () => {
    await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0" });
    const url = pub.urls[0]!;
    const port = new URL(url.replace("tcp:", "http:")).port;
    // nngcat's spelling, a URL alone (dialed by sub), and nngcat's format.
    await using sub = rsock([`--allow-net=127.0.0.1:${port}`], [
      "sub",
      url,
      "--subscribe",
      "",
      "--quoted",
      "--count",
      "2",
    ]);
    await pub.waitForPipes();
    // Bytes as nngcat sends them (the library's send("…", { mode: "raw" }) adds nanonext's NUL).
    const encoder = new TextEncoder();
    await pub.sendBytes(encoder.encode("line one\nline two"));
    await pub.sendBytes(encoder.encode("next"));
    assert.equal((await sub.finished()).code, 0, sub.stderr);
    assert.equal(sub.stdout, '"line one\\nline two"\n"next"\n');
  });
});

Deno.test("rsock pub URL --file F sends the file as one message, as nngcat's --file", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const file = await Deno.makeTempFile({ prefix: "rsock_pub_file_" });
    try {
      await Deno.writeTextFile(file, "a\nb\n");
      await using pub = rsock([`--allow-net=127.0.0.1:${port}`, `--allow-read=${file}`], [
        "pub",
        url,
        "--file",
        file,
        "--count",
        "2",
        "--interval",
        "10ms",
      ]);
      await pub.waitForOutput(/listening on/);
      await using sub = await socket("sub", { dial: url, subscribe: "" });
      const first = await sub.recv({ mode: "string", timeout: 10_000 });
      const second = await sub.recv({ mode: "string", timeout: 10_000 });
      assert.deepEqual([first, second], ["a\nb\n", "a\nb\n"]);
      assert.equal((await pub.finished()).code, 0, pub.stderr);
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("a dial to a closed port says what it waits for after 1 s; --fail-fast exits at once", async (t) => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    for (const role of ["sub", "pub"]) {
      await t.step(`${role} waits and says so`, async () => {
        await using waiting = rsock([net], [role, "--dial", url]);
        await waiting.waitForOutput(
          new RegExp(
            `rsock ${role}: waiting for a peer at tcp://127\\.0\\.0\\.1:${port} \\(Ctrl-C to stop\\)`,
          ),
        );
        waiting.child.kill("SIGINT");
        assert.equal((await waiting.finished()).code, 130, waiting.stderr);
        assert.equal(waiting.stderr.match(/waiting for a peer/g)?.length, 1, "said once");
      });
    }
    await t.step("--fail-fast", async () => {
      await using failing = rsock([net], ["sub", "--dial", url, "--fail-fast"]);
      assert.equal((await failing.finished()).code, 1, failing.stderr);
      assert.match(failing.stderr, new RegExp(`rsock sub: .*127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(failing.stderr, /waiting for a peer/);
    });
  });
});

Deno.test("a listener nobody dials says so once after 1 s", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using push = rsock([`--allow-net=127.0.0.1:${port}`], [
      "push",
      `tcp://127.0.0.1:${port}`,
      "--data",
      "job",
    ]);
    await push.waitForOutput(/rsock push: waiting for a peer at tcp:\/\/127\.0\.0\.1:\d+ \(Ctrl-C/);
    // A peer that comes gets the message; push then ends by itself.
    await using pull = await socket("pull", { dial: `tcp://127.0.0.1:${port}` });
    assert.equal(await pull.recv({ mode: "string", timeout: 10_000 }), "job");
    assert.equal((await push.finished()).code, 0, push.stderr);
  });
});

Deno.test("timeouts take nngcat's seconds or a unit, and mean what they mean in nngcat", async (t) => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    await t.step("sub --recv-timeout 300ms stops receiving, status 0 as nngcat's", async () => {
      await using sub = rsock([net], ["sub", "--listen", url, "--recv-timeout", "300ms"]);
      assert.equal((await sub.finished()).code, 0, sub.stderr);
      assert.equal(sub.stdout, "");
    });
    await t.step(
      "push --interval without --count sends again until Ctrl-C, as nngcat",
      async () => {
        await using push = rsock([net], ["push", url, "--data", "tick", "--interval", "20ms"]);
        await push.waitForOutput(/listening on/);
        await using pull = await socket("pull", { dial: url });
        for (let i = 0; i < 3; i++) {
          assert.equal(await pull.recv({ mode: "string", timeout: 10_000 }), "tick");
        }
        push.child.kill("SIGINT");
        assert.equal((await push.finished()).code, 130, push.stderr);
      },
    );
    await t.step("push --send-timeout 0.3 (seconds)", async () => {
      await using push = rsock([net], ["push", url, "--data", "x", "--send-timeout", "0.3"]);
      assert.equal((await push.finished()).code, 1, push.stderr);
      assert.match(push.stderr, /rsock push: .*300 ms/);
    });
  });
});
