/**
 * NNG's own `nngcat` (1.5.2, mbedtls) against the rsock NNG family, each protocol in both
 * roles, over tcp, ipc, ws and tls+tcp (a CA and certificates made by openssl at test time);
 * and a device relaying nngcat's requests to two rsock REP workers.
 */
import assert from "node:assert/strict";
import { device, type Socket, socket, type SocketOptions } from "../../nng/mod.ts";
import { reply, request, socket as reqrepSocket } from "../../reqrep/mod.ts";
import { freePort, interopTest, withTimeout } from "../_peers.ts";
import { TestProcess } from "../_process.ts";
import { makeCertificates, type TestCertificates } from "../_tls.ts";

const NNGCAT = "/usr/bin/nngcat";
const bytes = (value: string) => new TextEncoder().encode(value);
const text = (value: Uint8Array) => new TextDecoder().decode(value);

/** The transports every protocol is tried over. */
const TRANSPORTS = ["tcp", "ipc", "ws", "tls+tcp"] as const;
type TransportName = (typeof TRANSPORTS)[number];

/** One transport: the URL each side uses for a fresh endpoint, and their TLS settings. */
interface Transport {
  readonly name: TransportName;
  /** A fresh endpoint: rsock's URL and nngcat's (nngcat verifies `localhost`, not an IP). */
  endpoint(): { rsock: string; cat: string };
  readonly rsockListen: SocketOptions;
  readonly rsockDial: SocketOptions;
  readonly catListen: string[];
  readonly catDial: string[];
}

/** What a row's cases share within one test: a temporary folder and the test certificates. */
interface Setting {
  readonly dir: string;
  readonly certs: TestCertificates;
}

function transport(name: TransportName, setting: Setting): Transport {
  const plain = { rsockListen: {}, rsockDial: {}, catListen: [], catDial: [] };
  const { certs } = setting;
  const same = (url: string) => ({ rsock: url, cat: url });
  switch (name) {
    case "tcp":
      return { name, endpoint: () => same(`tcp://127.0.0.1:${freePort()}`), ...plain };
    case "ipc": {
      let ipc = 0;
      return { name, endpoint: () => same(`ipc://${setting.dir}/${ipc++}.ipc`), ...plain };
    }
    case "ws":
      return { name, endpoint: () => same(`ws://127.0.0.1:${freePort()}/sp`), ...plain };
    case "tls+tcp":
      return {
        name,
        endpoint() {
          const port = freePort();
          return { rsock: `tls+tcp://127.0.0.1:${port}`, cat: `tls+tcp://localhost:${port}` };
        },
        rsockListen: { tls: { cert: certs.serverCert, key: certs.serverKey } },
        rsockDial: { tls: { ca: certs.ca } },
        catListen: ["--cert", certs.path("server.crt"), "--key", certs.path("server.key")],
        catDial: ["--cacert", certs.path("ca.crt")],
      };
  }
}

/** Opens an rsock socket that listens on (or dials) `url` with the transport's TLS settings. */
function open(
  protocol: Parameters<typeof socket>[0],
  transport: Transport,
  role: "listen" | "dial",
  url: string,
  options: SocketOptions = {},
): Promise<Socket> {
  const tls = role === "listen" ? transport.rsockListen : transport.rsockDial;
  // nngcat may not listen yet when rsock dials: keep redialing until it does.
  return socket(protocol, {
    ...tls,
    ...options,
    [role]: url,
    reconnectMinimum: 20,
    retryFirstDial: true,
  });
}

function cat(args: string[]): TestProcess {
  return new TestProcess(NNGCAT, args);
}

/**
 * One protocol (or pair of protocols) against an NNG peer: each case runs on a fresh endpoint
 * over every transport of the row, as a step named after both.
 */
interface Row {
  readonly name: string;
  readonly peer: "nngcat" | "libnng-dev";
  readonly transports: readonly TransportName[];
  readonly timeout: number;
  readonly cases: Readonly<
    Record<string, (transport: Transport, setting: Setting) => Promise<void>>
  >;
}

function pairRow(protocol: "pair" | "pair1", flag: "--pair0" | "--pair1"): Row {
  return {
    name: protocol === "pair" ? "pair0" : "pair1",
    peer: "nngcat",
    transports: TRANSPORTS,
    timeout: 60_000,
    cases: {
      async "rsock listens"(transport) {
        const url = transport.endpoint();
        await using pair = await open(protocol, transport, "listen", url.rsock);
        await using peer = cat([
          flag,
          "--dial",
          url.cat,
          ...transport.catDial,
          "--data",
          "ping",
          "--recv-timeout",
          "1",
          "--ascii",
        ]);
        assert.equal(text((await pair.recvMessage({ timeout: 10_000 })).body), "ping");
        await pair.sendBytes(bytes("pong"));
        assert.equal((await peer.finished()).code, 0, peer.stderr);
        assert.equal(peer.stdout, "pong");
      },
      async "nngcat listens"(transport) {
        const url = transport.endpoint();
        await using peer = cat([
          flag,
          "--listen",
          url.cat,
          ...transport.catListen,
          "--data",
          "hello",
          "--interval",
          "1",
          "--ascii",
        ]);
        await using pair = await open(protocol, transport, "dial", url.rsock);
        assert.equal(text((await pair.recvMessage({ timeout: 10_000 })).body), "hello");
        await pair.sendBytes(bytes("back"));
        await peer.waitForOutput(/back/);
      },
    },
  };
}

/** Builds `fixtures/nng_bus.c` into the setting's folder, once per setting. */
const busPeers = new Map<string, Promise<string>>();
function busPeer(setting: Setting): Promise<string> {
  let built = busPeers.get(setting.dir);
  if (built === undefined) {
    built = (async () => {
      const binary = `${setting.dir}/nng_bus`;
      const source = new URL("../fixtures/nng_bus.c", import.meta.url).pathname;
      const output = await new Deno.Command("cc", {
        args: ["-O2", "-o", binary, source, "-lnng"],
        stderr: "piped",
      }).output();
      assert.ok(output.success, new TextDecoder().decode(output.stderr));
      return binary;
    })();
    busPeers.set(setting.dir, built);
  }
  return built;
}

const ROWS: Row[] = [
  {
    name: "pub/sub",
    peer: "nngcat",
    transports: TRANSPORTS,
    timeout: 90_000,
    cases: {
      async "rsock publishes"(transport) {
        // nngcat subscribes to "a" and must see only a-messages.
        const url = transport.endpoint();
        await using pub = await open("pub", transport, "listen", url.rsock);
        await using sub = cat([
          "--sub",
          "--dial",
          url.cat,
          ...transport.catDial,
          "--subscribe",
          "a",
          "--count",
          "3",
          "--ascii",
        ]);
        await pub.waitForPipes(1, { timeout: 10_000 });
        let exited = false;
        const finished = sub.finished().then((status) => (exited = true, status));
        for (let i = 0; !exited; i++) {
          await pub.sendBytes(bytes(`b${i};`));
          await pub.sendBytes(bytes(`a${i};`));
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.equal((await finished).code, 0, sub.stderr);
        assert.match(sub.stdout, /^a(\d+);a(\d+);a(\d+);$/);
      },
      async "nngcat publishes"(transport) {
        // nngcat publishes every second; rsock subscribes.
        const url = transport.endpoint();
        await using _pub = cat([
          "--pub",
          "--listen",
          url.cat,
          ...transport.catListen,
          "--data",
          "a hello",
          "--interval",
          "1",
        ]);
        await using sub = await open("sub", transport, "dial", url.rsock, {
          subscribe: ["a", "zz"],
        });
        const message = await sub.recvMessage({ timeout: 10_000 });
        assert.equal(text(message.body), "a hello");
      },
    },
  },
  {
    name: "push/pull",
    peer: "nngcat",
    transports: TRANSPORTS,
    timeout: 60_000,
    cases: {
      async "rsock pushes"(transport) {
        const url = transport.endpoint();
        await using pull = cat([
          "--pull",
          "--listen",
          url.cat,
          ...transport.catListen,
          "--count",
          "3",
          "--ascii",
        ]);
        await using push = await open("push", transport, "dial", url.rsock);
        for (let i = 0; i < 3; i++) await push.sendBytes(bytes(`m${i};`), { timeout: 10_000 });
        assert.equal((await pull.finished()).code, 0, pull.stderr);
        assert.equal(pull.stdout, "m0;m1;m2;");
      },
      async "nngcat pushes"(transport) {
        const url = transport.endpoint();
        await using pull = await open("pull", transport, "listen", url.rsock);
        await using push = cat([
          "--push",
          "--dial",
          url.cat,
          ...transport.catDial,
          "--data",
          "job",
        ]);
        assert.equal(text((await pull.recvMessage({ timeout: 10_000 })).body), "job");
        assert.equal((await push.finished()).code, 0, push.stderr);
      },
    },
  },
  {
    name: "surveyor/respondent",
    peer: "nngcat",
    transports: TRANSPORTS,
    timeout: 60_000,
    cases: {
      async "rsock surveys"(transport) {
        const url = transport.endpoint();
        await using surveyor = await open("surveyor", transport, "listen", url.rsock, {
          surveyTime: 3000,
        });
        await using respondent = cat([
          "--respondent",
          "--dial",
          url.cat,
          ...transport.catDial,
          "--data",
          "present",
          "--count",
          "1",
          "--ascii",
        ]);
        await surveyor.waitForPipes(1, { timeout: 10_000 });
        await surveyor.sendBytes(bytes("roll call"));
        assert.equal(text((await surveyor.recvMessage()).body), "present");
        assert.equal((await respondent.finished()).code, 0, respondent.stderr);
        assert.equal(respondent.stdout, "roll call");
      },
      async "nngcat surveys"(transport) {
        const url = transport.endpoint();
        await using respondent = await open("respondent", transport, "listen", url.rsock);
        await using surveyor = cat([
          "--surveyor",
          "--dial",
          url.cat,
          ...transport.catDial,
          "--data",
          "who?",
          "--ascii",
        ]);
        const survey = await respondent.recvMessage({ timeout: 10_000 });
        await respondent.sendBytes(bytes(`me, to ${text(survey.body)}`));
        assert.equal((await surveyor.finished()).code, 0, surveyor.stderr);
        assert.equal(surveyor.stdout, "me, to who?");
      },
    },
  },
  pairRow("pair", "--pair0"),
  pairRow("pair1", "--pair1"),
  {
    // nngcat has no bus: the peer is NNG's C library, built at test time. It has no TLS.
    name: "bus",
    peer: "libnng-dev",
    transports: ["tcp", "ipc", "ws"],
    timeout: 60_000,
    cases: {
      async "rsock meshes with the C peer"(transport, setting) {
        const url = transport.endpoint().rsock;
        await using peer = new TestProcess(await busPeer(setting), [url]);
        await peer.waitForOutput(/ready/);
        const a = await socket("bus", { dial: url });
        const b = await socket("bus", { dial: url });
        try {
          await a.waitForPipes(1, { timeout: 10_000 });
          await b.waitForPipes(1, { timeout: 10_000 });
          // Bus sends only to the pipes it has: wait until the C peer added both.
          await peer.waitForOutput(/^peers 2$/m);
          await a.sendBytes(bytes("from a"));
          // The C peer answers on the bus: both rsock peers hear it; b never sees a's own.
          assert.equal(text((await a.recvMessage({ timeout: 10_000 })).body), "C got from a");
          assert.equal(text((await b.recvMessage({ timeout: 10_000 })).body), "C got from a");
          await b.sendBytes(bytes("bye"));
          assert.equal(text((await a.recvMessage({ timeout: 10_000 })).body), "C got bye");
        } finally {
          await a.close();
          await b.close();
        }
        // The C peer exits once both have hung up.
        assert.equal((await peer.finished()).code, 0, peer.stderr);
      },
    },
  },
];

for (const row of ROWS) {
  const peer = row.peer === "nngcat" ? "nngcat" : "NNG's C library";
  interopTest(
    `${row.name} with ${peer}${Object.keys(row.cases).length > 1 ? " both ways" : ""} (${
      row.transports.join(", ")
    })`,
    [row.peer],
    async (t) => {
      const dir = await Deno.makeTempDir({ prefix: "rsock_nngcat_" });
      const certs = await makeCertificates();
      const setting = { dir, certs };
      try {
        await withTimeout(row.timeout, async () => {
          for (const name of row.transports) {
            const over = transport(name, setting);
            for (const [role, run] of Object.entries(row.cases)) {
              await t.step(`${name}: ${role}`, () => run(over, setting));
            }
          }
        });
      } finally {
        await Deno.remove(certs.dir, { recursive: true });
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

interopTest(
  "a device relays nngcat's requests to two rsock REP workers (tcp)",
  ["nngcat"],
  async () => {
    await withTimeout(30_000, async () => {
      await using front = await socket("rep", { raw: true, listen: "tcp://127.0.0.1:0" });
      await using back = await socket("req", { raw: true, listen: "tcp://127.0.0.1:0" });
      const controller = new AbortController();
      const relaying = device(front, back, { signal: controller.signal });
      const workers = await Promise.all(
        [0, 1].map(() => reqrepSocket("rep", { dial: back.urls[0]! })),
      );
      try {
        await back.waitForPipes(2);
        const serving = workers.map((worker, n) =>
          (async () => {
            const ctx = worker.context();
            for (let i = 0; i < 2; i++) {
              await reply(ctx, (x) => `${x} by worker ${n}`, {
                recvMode: "string",
                sendMode: "raw",
              });
            }
          })()
        );
        const answers: string[] = [];
        for (let i = 0; i < 4; i++) {
          await using client = cat([
            "--req",
            "--dial",
            front.urls[0]!,
            "--data",
            `job${i}`,
            "--ascii",
          ]);
          assert.equal((await client.finished()).code, 0, client.stderr);
          answers.push(client.stdout);
        }
        answers.forEach((answer, i) => assert.match(answer, new RegExp(`^job${i} by worker [01]`)));
        assert.ok(
          answers.some((a) => a.includes("worker 0")) &&
            answers.some((a) => a.includes("worker 1")),
        );
        await Promise.all(serving);
      } finally {
        controller.abort();
        await relaying;
        await Promise.all(workers.map((worker) => worker.close()));
      }
    });
  },
);

interopTest(
  "an rsock tls+tcp listener given a CA admits nngcat only with a certificate that CA signed",
  ["nngcat"],
  async () => {
    const certs = await makeCertificates();
    try {
      await withTimeout(30_000, async () => {
        const errors: Error[] = [];
        await using pull = await socket("pull", {
          listen: "tls+tcp://127.0.0.1:0",
          tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca },
          onError: (error) => errors.push(error),
        });
        const port = pull.urls[0]!.split(":").at(-1);
        const url = `tls+tcp://localhost:${port}`;
        for (
          const identity of [[], [
            "--cert",
            certs.path("rogue.crt"),
            "--key",
            certs.path("rogue.key"),
          ]]
        ) {
          await using stranger = cat([
            "--push",
            "--dial",
            url,
            "--cacert",
            certs.path("ca.crt"),
            ...identity,
            "--data",
            "stranger",
          ]);
          assert.notEqual((await stranger.finished()).code, 0);
          assert.match(stranger.stderr, /Unable to dial/);
        }
        await using member = cat([
          "--push",
          "--dial",
          url,
          "--cacert",
          certs.path("ca.crt"),
          "--cert",
          certs.path("client.crt"),
          "--key",
          certs.path("client.key"),
          "--data",
          "member",
        ]);
        assert.equal(text((await pull.recvMessage({ timeout: 10_000 })).body), "member");
        assert.equal((await member.finished()).code, 0, member.stderr);
      });
    } finally {
      await Deno.remove(certs.dir, { recursive: true });
    }
  },
);

interopTest(
  "REQ/REP over tls+tcp with nngcat both ways, on the same SP core; client certificates required",
  ["nngcat"],
  async () => {
    const certs = await makeCertificates();
    try {
      await withTimeout(30_000, async () => {
        {
          await using rep = await reqrepSocket("rep", {
            listen: "tls+tcp://127.0.0.1:0",
            tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca },
          });
          const serving = reply(rep, (x) => `pong to ${x}`, {
            recvMode: "string",
            sendMode: "raw",
          });
          const url = `tls+tcp://localhost:${rep.urls[0]!.split(":").at(-1)}`;
          await using stranger = cat([
            "--req",
            "--dial",
            url,
            "--cacert",
            certs.path("ca.crt"),
            "--data",
            "x",
          ]);
          assert.notEqual((await stranger.finished()).code, 0);
          await using client = cat([
            "--req",
            "--dial",
            url,
            "--cacert",
            certs.path("ca.crt"),
            "--cert",
            certs.path("client.crt"),
            "--key",
            certs.path("client.key"),
            "--data",
            "ping",
            "--ascii",
          ]);
          assert.equal((await client.finished()).code, 0, client.stderr);
          assert.equal(client.stdout, "pong to ping.");
          await serving;
        }
        {
          const port = freePort();
          await using _server = cat([
            "--rep",
            "--listen",
            `tls+tcp://127.0.0.1:${port}`,
            "--cert",
            certs.path("server.crt"),
            "--key",
            certs.path("server.key"),
            "--data",
            "pong",
          ]);
          await using req = await reqrepSocket("req", {
            dial: `tls+tcp://localhost:${port}`,
            tls: { ca: certs.ca },
            reconnectMinimum: 20,
            retryFirstDial: true,
          });
          const answer = await request(req, "ping", {
            sendMode: "raw",
            recvMode: "string",
            timeout: 10_000,
          });
          assert.equal(answer, "pong");
        }
      });
    } finally {
      await Deno.remove(certs.dir, { recursive: true });
    }
  },
);
