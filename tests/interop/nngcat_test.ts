/**
 * NNG's own `nngcat` (1.5.2) in both roles against rsock, over tcp, ipc and ws.
 */
import assert from "node:assert/strict";
import { recv, reply, request, send, socket } from "../../reqrep/mod.ts";
import { freePort, interopTest, withTimeout } from "../_peers.ts";
import { rsock, TestProcess } from "../_process.ts";

const NNGCAT = "/usr/bin/nngcat";

interopTest(
  "nngcat --req against an rsock REP (tcp, ipc and ws; raw and ascii)",
  ["nngcat"],
  async (t) => {
    await withTimeout(60_000, async () => {
      await eachTransport(t, async (url) => {
        await using rep = await socket("rep", { listen: url });
        const serving = (async () => {
          await reply(rep, (x) => `pong to ${x}`, { recvMode: "string", sendMode: "raw" });
          await reply(rep, (x) => (x as Uint8Array).slice().reverse(), {
            recvMode: "raw",
            sendMode: "raw",
          });
        })();
        {
          await using cat = new TestProcess(NNGCAT, [
            "--req",
            "--dial",
            url,
            "--data",
            "ping",
            "--quoted",
          ]);
          assert.equal((await cat.finished()).code, 0, cat.stderr);
          // rsock's raw string ends in a NUL, as nanonext sends one.
          assert.equal(cat.stdout, '"pong to ping\\x00"\n');
        }
        {
          await using cat = new TestProcess(NNGCAT, [
            "--req",
            "--dial",
            url,
            "--data",
            "abc",
            "--format",
            "ascii",
          ]);
          assert.equal((await cat.finished()).code, 0, cat.stderr);
          assert.equal(cat.stdout, "cba");
        }
        await serving;
      });
    });
  },
);

interopTest("rsock REQ against nngcat --rep (tcp, ipc, ws); several contexts share its pipe", [
  "nngcat",
], async (t) => {
  await withTimeout(60_000, async () => {
    await eachTransport(t, async (url) => {
      await using cat = new TestProcess(NNGCAT, [
        "--rep",
        "--listen",
        url,
        "--data",
        "pong",
        "--quoted",
      ]);
      await using req = await socket("req", {
        dial: url,
        retryFirstDial: true, // nngcat may not listen yet
        reconnectMinimum: 20,
      });
      const contexts = Array.from({ length: 5 }, () => req.context());
      const replies = await Promise.all(
        contexts.map((ctx, i) =>
          request(ctx, `ping ${i}`, { sendMode: "raw", recvMode: "string", timeout: 10_000 })
        ),
      );
      assert.deepEqual(replies, ["pong", "pong", "pong", "pong", "pong"]);
      await cat.waitForOutput(/"ping 4\\x00"\n/);
      for (let i = 0; i < 5; i++) {
        assert.ok(cat.stdout.includes(`"ping ${i}\\x00"\n`), cat.stdout);
      }
      // The socket-level send/recv pair works as well.
      await send(req, new TextEncoder().encode("bytes"), { mode: "raw" });
      assert.equal(await recv(req, { mode: "string", timeout: 10_000 }), "pong");
    });
  });
});

/** Runs `body` as one test step per transport: tcp, ipc (in a fresh folder) and ws. */
async function eachTransport(
  t: Deno.TestContext,
  body: (url: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const url of [
        `tcp://127.0.0.1:${freePort()}`,
        `ipc://${dir}/sp.ipc`,
        `ws://127.0.0.1:${freePort()}/sp`,
      ]
    ) {
      await t.step(url.split(":")[0]!, () => body(url));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

interopTest(
  "rsock pull prints a message in each of nngcat's formats byte for byte as nngcat --pull does",
  ["nngcat"],
  async (t) => {
    await withTimeout(90_000, async () => {
      const file = await Deno.makeTempFile({ prefix: "rsock_formats_" });
      try {
        await Deno.writeFile(file, new Uint8Array([0x61, 0x00, 0xff, 0x0a, 0x22, 0x5c, 0x7e]));
        for (const format of ["--ascii", "--quoted", "--hex", "--msgpack", "--raw"]) {
          await t.step(format, async () => {
            // nngcat's own rendering: it dials in the background until rsock push listens.
            const nngcatPort = freePort();
            await using theirs = new TestProcess(NNGCAT, [
              "--pull0",
              "--dial",
              `tcp://127.0.0.1:${nngcatPort}`,
              "--async",
              format,
              "--count",
              "1",
            ]);
            await using pusher = rsock(
              [`--allow-net=127.0.0.1:${nngcatPort}`, `--allow-read=${file}`],
              ["push", `tcp://127.0.0.1:${nngcatPort}`, "--file", file],
            );
            assert.equal((await theirs.finished()).code, 0, theirs.stderr);
            assert.equal((await pusher.finished()).code, 0, pusher.stderr);
            // rsock's, with the same flag, from nngcat pushing the same file.
            const rsockPort = freePort();
            await using ours = rsock([`--allow-net=127.0.0.1:${rsockPort}`], [
              "pull",
              "--listen",
              `tcp://127.0.0.1:${rsockPort}`,
              format,
              "--count",
              "1",
            ]);
            await ours.waitForOutput(/listening on/);
            await using cat = new TestProcess(NNGCAT, [
              "--push0",
              "--dial",
              `tcp://127.0.0.1:${rsockPort}`,
              "--file",
              file,
            ]);
            assert.equal((await cat.finished()).code, 0, cat.stderr);
            assert.equal((await ours.finished()).code, 0, ours.stderr);
            assert.equal(ours.stdout, theirs.stdout);
          });
        }
      } finally {
        await Deno.remove(file);
      }
    });
  },
);
