/**
 * One runaway evaluation must not freeze `rsock serve` for everyone: an evaluation whose
 * requester is gone (an NNG REQ peer that gave up, an eval client that disconnected, a console
 * page closed) is interrupted; serve prints one line for an evaluation past `--warn-after`;
 * `rsock eval --interrupt` and `rsock console`'s Ctrl-C stop the evaluation running, whoever
 * sent it, and the console says at once that the session is busy. Each case runs serve as a
 * real subprocess (worker mode, its default).
 */
import assert from "node:assert/strict";
import { connectEvalServer, evalServer } from "../eval/mod.ts";
import { CONSOLE_PROTOCOL, websocket } from "../ws/mod.ts";
import { isNulByte, request, socket } from "../reqrep/mod.ts";
import { freePort, interopTest, withTimeout } from "./_peers.ts";
import { rsock, type TestProcess, WORKER_READ } from "./_process.ts";
import { runInPty } from "./_pty.ts";
import { startRunaway } from "./faults/_eval_children.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

interface Serve {
  readonly child: TestProcess;
  readonly evalPort: number;
  readonly wsPort: number;
  readonly repUrl: string;
}

/**
 * `rsock serve` on free ports (eval, console, and REP with `rep`), slow evaluations reported
 * after 100 ms; once its banner is out.
 */
async function serve(extra: string[] = [], rep = false): Promise<Serve> {
  const evalPort = freePort();
  const wsPort = freePort();
  const repPort = freePort();
  const repUrl = `tcp://127.0.0.1:${repPort}`;
  const child = rsock(
    [
      `--allow-net=127.0.0.1:${evalPort},127.0.0.1:${wsPort},127.0.0.1:${repPort}`,
      "--allow-sys",
      WORKER_READ,
    ],
    [
      "serve",
      "--eval",
      String(evalPort),
      "--ws",
      String(wsPort),
      ...(rep ? ["--rep", repUrl] : []),
      "--warn-after",
      "100ms",
      ...extra,
    ],
  );
  try {
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
  } catch (error) {
    await child[Symbol.asyncDispose]();
    throw error;
  }
  return { child, evalPort, wsPort, repUrl };
}

/** Runs `rsock eval ARGS` against serve and returns its status and output. */
async function rsockEval(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      ...Object.keys(env).map((name) => `--allow-env=${name}`),
      CLI,
      "eval",
      ...args,
    ],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** The line serve prints once an evaluation from `door` runs past --warn-after. */
function slowLine(door: string, evalPort: number): RegExp {
  return new RegExp(
    `rsock serve: an evaluation from ${door} has run [\\d.]+ s: .*while \\(true\\) \\{\\} — ` +
      `stop it: rsock eval --port ${evalPort} --interrupt`,
  );
}

interopTest(
  "serve runaway: nngcat's request that gave up is interrupted; serve printed one line for it; the eval door answers again",
  ["nngcat"],
  async () => {
    await withTimeout(60_000, async () => {
      const { child, evalPort, repUrl: rep } = await serve([], true);
      await using _serve = child;
      // nngcat gives up after 1 s and exits: its pipe closes with the code still running.
      const nngcat = new Deno.Command("/usr/bin/nngcat", {
        args: ["--req", "--dial", rep, "--data", "while (true) {}", "--recv-timeout", "1"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await child.waitForOutput(slowLine("rep pipe \\d+ \\(127\\.0\\.0\\.1:\\d+\\)", evalPort));
      await nngcat.status;
      await using client = await connectEvalServer({ port: evalPort });
      assert.equal(await evalServer(client, "6 * 7"), 42);
      const slow = child.stderr.match(/from rep pipe .* has run/g) ?? [];
      assert.equal(slow.length, 1, `one line per slow evaluation:\n${child.stderr}`);
    });
  },
);

Deno.test("serve runaway: an eval client that disconnected, and a console page that closed, have their runaway interrupted", async () => {
  await withTimeout(60_000, async () => {
    const { child, evalPort, wsPort } = await serve();
    await using _serve = child;
    {
      const { client } = await startRunaway(evalPort);
      client.close();
      await using other = await connectEvalServer({ port: evalPort });
      assert.equal(await evalServer(other, "6 * 7"), 42);
    }
    {
      const page = await websocket(`ws://127.0.0.1:${wsPort}/ws`, {
        protocols: [CONSOLE_PROTOCOL],
      });
      await page.write(JSON.stringify({ type: "eval", id: 1, code: "while (true) {}" }));
      await child.waitForOutput(slowLine("console page \\d+ \\(127\\.0\\.0\\.1:\\d+\\)", evalPort));
      await page.close();
      await using other = await connectEvalServer({ port: evalPort });
      assert.equal(await evalServer(other, "6 * 7"), 42);
    }
  });
});

Deno.test("serve runaway: an awaiting evaluation whose requester left is given up on; the session keeps its state", async () => {
  await withTimeout(30_000, async () => {
    const { child, evalPort } = await serve();
    await using _serve = child;
    await using keeper = await connectEvalServer({ port: evalPort });
    assert.equal(await evalServer(keeper, "var kept = 41; kept"), 41);
    // A client that sends one line and closes its side at once (`echo … | nc -q0`).
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: evalPort });
    const line = "await new Promise((r) => setTimeout(r, 60_000)); 42\n";
    await conn.write(new TextEncoder().encode(line));
    await conn.closeWrite();
    assert.equal(
      await new Response(conn.readable).text(),
      "Interrupted: its requester is gone; it may still finish in the background\r\n\r\n",
    );
    assert.equal(await evalServer(keeper, "kept + 1"), 42);
  });
});

Deno.test("serve runaway: rsock eval --interrupt (and '<<<esc>>>') stops another door's runaway, with the token only", async () => {
  await withTimeout(60_000, async () => {
    const token = "s3cret";
    const { child, evalPort, wsPort } = await serve(["--token", token]);
    await using _serve = child;
    await using page = await websocket(`ws://127.0.0.1:${wsPort}/ws?token=${token}`, {
      protocols: [CONSOLE_PROTOCOL],
    });
    const results = (async function* () {
      for await (const message of page) yield JSON.parse(String(message.data));
    })();
    const pageDoor = "console page \\d+ \\(127\\.0\\.0\\.1:\\d+\\)";
    for (const [id, args] of [[1, ["--interrupt"]], [2, ["<<<esc>>>"]]] as const) {
      await page.write(JSON.stringify({ type: "eval", id, code: "while (true) {}" }));
      await child.waitForOutput(new RegExp(`(${slowLine(pageDoor, evalPort).source}[^]*){${id}}`));
      const refused = await rsockEval(["--port", String(evalPort), ...args]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /wrong token/);
      const done = await rsockEval(
        ["--port", String(evalPort), "--token-env", "RSOCK_TOKEN", ...args],
        { RSOCK_TOKEN: token },
      );
      assert.equal(done.code, 0, done.stderr);
      assert.match(
        done.stdout,
        new RegExp(
          `^interrupted ${pageDoor}, running since \\d\\d:\\d\\d:\\d\\d \\([\\d.]+ s\\): ` +
            "while \\(true\\) \\{\\}\n$",
        ),
      );
      const result = (await results.next()).value;
      assert.equal(result.id, id);
      assert.equal(result.error, true);
      assert.match(result.text, /^Interrupted: evaluation aborted; the worker was restarted/);
    }
    const idle = await rsockEval(
      ["--port", String(evalPort), "--token-env", "RSOCK_TOKEN", "--interrupt"],
      { RSOCK_TOKEN: token },
    );
    assert.equal(idle.code, 0, idle.stderr);
    assert.equal(idle.stdout, "nothing to interrupt: the session is idle\n");
  });
});

interopTest(
  "serve runaway: rsock console at a terminal says the session is busy and its Ctrl-C stops another door's runaway, at start and at the prompt",
  ["python3-websockets"],
  async () => {
    await withTimeout(90_000, async () => {
      const { child, evalPort, repUrl: rep } = await serve([], true);
      await using _serve = child;
      // Pushes from the session tell the test where the console is.
      const pushes = new Map<string, PromiseWithResolvers<void>>();
      const pushed = (text: string) => {
        if (!pushes.has(text)) pushes.set(text, Promise.withResolvers<void>());
        return pushes.get(text)!;
      };
      await using watcher = await connectEvalServer({
        port: evalPort,
        onPush: (text) => pushed(text).resolve(),
      });
      await using req = await socket("req", { dial: rep });
      const runaway = (name: string) => {
        const reply = request(req.context(), `sendSocketClients("${name}"); while (true) {}`, {
          timeout: 60_000,
        });
        reply.catch(() => {}); // awaited once the console is done
        return reply;
      };
      const first = runaway("first runaway");
      await pushed("first runaway").promise;
      const console = runInPty(
        [
          Deno.execPath(),
          "run",
          "--no-prompt",
          `--allow-net=127.0.0.1:${evalPort}`,
          CLI,
          "console",
          "--port",
          String(evalPort),
        ],
        [
          // Busy as it starts: it says with what, and Ctrl-C stops it.
          [
            "expect",
            "the session is busy with rep pipe \\d+ \\(127\\.0\\.0\\.1:\\d+\\), running since " +
            '\\d\\d:\\d\\d:\\d\\d \\([\\d.]+ s\\): sendSocketClients\\("first runaway"\\)',
          ],
          ["expect", "Ctrl-C interrupts it"],
          ["type", "\x03"],
          ["expect", "interrupted rep pipe \\d+"],
          ["expect", ":> "],
          ["type", 'sendSocketClients("console ready")\r'],
          // The test starts a second runaway now; the console sees its push.
          ["expect", "second runaway"],
          // A line typed now waits behind it; Ctrl-C stops the runaway, not the line.
          ["type", "6*7\r"],
          // The console says what its line waits for.
          [
            "expect",
            "waiting: the session runs rep pipe \\d+ \\(127\\.0\\.0\\.1:\\d+\\), running since " +
            '[\\d:]+ \\([\\d.]+ s\\): sendSocketClients\\("second runaway"\\)',
          ],
          ["type", "\x03"],
          ["expect", "interrupted rep pipe \\d+ .*second runaway"],
          ["expect", "\r\n42\r\n"],
          ["expect", ":> "],
          ["type", "\x04"],
        ],
      );
      await pushed("console ready").promise;
      const second = runaway("second runaway");
      const result = await console;
      assert.equal(result.error, null, result.transcript);
      assert.equal(result.status, 0, result.transcript);
      assert.ok(isNulByte(await first), "the first runaway's requester got the error reply");
      assert.ok(isNulByte(await second), "so did the second's");
      assert.equal(await evalServer(watcher, "1 + 1"), 2);
    });
  },
);
