/**
 * `rsock serve`'s security policy, read through `planServe` (no socket is opened): which
 * doors each flag set starts, and which combinations are refused and why. And the one
 * loopback rule every door shares, held by a real eval server.
 */
import assert from "node:assert/strict";
import { parseCommandArgs, UsageError } from "../_cli/_common.ts";
import { serveCommand } from "../_cli/serve.ts";
import { planServe, type ServePlan } from "../_cli/_serve_plan.ts";
import { isLoopback } from "../_internal/loopback.ts";
import { connectEvalServer, startEvalServer } from "../eval/mod.ts";
import { withTimeout } from "./_peers.ts";

function plan(...args: string[]): ServePlan {
  return planServe(parseCommandArgs(serveCommand, args));
}

/** The flag sets the policy refuses, and what the refusal must say. */
const REFUSED: readonly (readonly [string[], RegExp])[] = [
  // Without a token: code runs only for this machine.
  [["--hostname", "0.0.0.0"], /--hostname 0\.0\.0\.0 is not loopback/],
  [["--hostname", "127.0.0.1.evil.example", "--ws", "0"], /is not loopback/],
  [["--rep", "tcp://0.0.0.0:5555"], /--rep tcp:\/\/0\.0\.0\.0:5555 is not loopback/],
  [["--rep", "ws://10.0.0.1:80/"], /is not loopback/],
  [["--rep", "tls+tcp://0.0.0.0:5555"], /is not loopback/], // no CA: no client certificates
  [["--pub", "tcp://0.0.0.0:5556"], /--pub .* is not loopback/],
  // With a token: SP has no authentication, so REP and PUB stay owner-only.
  [["--token", "t", "--rep", "tcp://127.0.0.1:5555"], /with a token, the REP endpoint .*ipc/],
  [["--token-env", "T", "--rep", ""], /with a token, the REP endpoint/],
  [["--token", "t", "--eval", "0", "--pub", "tcp://127.0.0.1:5556"], /published on ipc:\/\/ only/],
  // Flags that contradict each other.
  [["--token", "t", "--token-env", "T"], /give the token once/],
  [["--token", ""], /--token must not be empty/],
  [["--tls-cert", "c.pem"], /--tls-cert and --tls-key go together/],
  [["--in-process", "--worker"], /contradict each other/],
  [["--in-process", "--timeout", "100"], /--timeout does not work with --in-process/],
  [["--eval", "70000"], /--eval/],
  // Durations, as the nng commands take them.
  [["--timeout", "0"], /--timeout must be at least 1ms, got "0"/],
  [["--timeout", "100x"], /--timeout must be a duration: seconds/],
  [["--warn-after", "soon"], /--warn-after must be a duration/],
  // A positive duration under 1ms would round to 0, which --warn-after takes as "never".
  [["--warn-after", "0.0001"], /--warn-after must be at least 1ms, got "0.0001"/],
  [["--warn-after", "0.4ms"], /--warn-after must be at least 1ms, got "0.4ms"/],
  [["--timeout", "0.0001"], /--timeout must be at least 1ms, got "0.0001"/],
];

Deno.test("serve plan: the security policy refuses what exposes code or output", async (t) => {
  for (const [args, message] of REFUSED) {
    await t.step(args.join(" ") || "(none)", () => {
      assert.throws(() => plan(...args), (error: unknown) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

Deno.test("serve plan: what each allowed flag set starts", async (t) => {
  await t.step("no endpoint flag: every default door, REP on loopback", () => {
    const p = plan();
    assert.deepEqual([p.evalPort, p.wsPort, p.rep?.url, p.pub], [
      8888,
      7681,
      "tcp://127.0.0.1:5555",
      undefined,
    ]);
    assert.equal(p.worker, true);
    assert.equal(p.warnAfter, 10_000);
  });
  await t.step("a token alone: eval and console, REP left out", () => {
    const p = plan("--token", "t");
    assert.deepEqual([p.evalPort, p.wsPort, p.rep], [8888, 7681, undefined]);
  });
  await t.step("a token with any --hostname, REP on an owner-only ipc:// file", () => {
    const p = plan("--token-env", "T", "--hostname", "0.0.0.0", "--rep", "ipc:///tmp/r.ipc");
    assert.equal(p.hostname, "0.0.0.0");
    assert.equal(p.rep?.endpoint.transport, "ipc");
    assert.equal(p.tokenVariable, "T");
  });
  await t.step(
    "a token with tls+tcp REP on any address when client certificates are checked",
    () => {
      const p = plan(
        "--token",
        "t",
        "--rep",
        "tls+tcp://0.0.0.0:5555",
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
        "--tls-ca",
        "ca.pem",
      );
      assert.equal(p.certified, true);
      assert.equal(p.rep?.endpoint.transport, "tls+tcp");
    },
  );
  await t.step("a token with --pub on ipc://", () => {
    assert.equal(plan("--token", "t", "--pub", "ipc:///tmp/p.ipc").pub?.endpoint.transport, "ipc");
  });
  for (const host of ["127.0.0.2", "localhost", "::1", "[::1]"]) {
    await t.step(`loopback ${host}: REP, PUB and --hostname without a token`, () => {
      const url = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
      const p = plan(
        "--hostname",
        host,
        "--rep",
        `tcp://${url}:5555`,
        "--pub",
        `tcp://${url}:5556`,
      );
      assert.equal(p.hostname, host);
      assert.deepEqual([p.evalPort, p.wsPort], [undefined, undefined]);
      assert.ok(p.rep !== undefined && p.pub !== undefined);
    });
  }
  await t.step("only the doors asked for; --in-process; --warn-after 0", () => {
    const p = plan("--eval", "0", "--socket", "0", "--in-process", "--warn-after", "0");
    assert.deepEqual([p.evalPort, p.wsPort, p.rep, p.socketPort], [0, undefined, undefined, 0]);
    assert.deepEqual([p.worker, p.warnAfter, p.timeout], [false, 0, undefined]);
  });
});

Deno.test("serve plan: --timeout and --warn-after take seconds, or a unit, as nngcat's durations", () => {
  const cases: readonly (readonly [string[], number | undefined, number])[] = [
    [[], undefined, 10_000],
    [["--timeout", "2", "--warn-after", "0.5"], 2_000, 500],
    [["--timeout", "500ms", "--warn-after", "1m"], 500, 60_000],
    [["--timeout", "1.5s", "--warn-after", "0"], 1_500, 0],
  ];
  for (const [args, timeout, warnAfter] of cases) {
    const p = plan(...args);
    assert.deepEqual([p.timeout, p.warnAfter], [timeout, warnAfter], args.join(" "));
  }
});

Deno.test("loopback: one rule, an address and never a name that looks like one", () => {
  for (const host of ["localhost", "::1", "[::1]", "127.0.0.1", "127.1.2.3", "127.255.255.255"]) {
    assert.equal(isLoopback(host), true, host);
  }
  for (
    const host of [
      "127.0.0.1.evil.example",
      "127.evil.example",
      "127.0.0.256",
      "127.0.0.0001",
      "128.0.0.1",
      "0.0.0.0",
      "::",
      "[::]",
      "",
    ]
  ) {
    assert.equal(isLoopback(host), false, host);
  }
});

Deno.test("loopback: the eval server holds the same rule as serve", async (t) => {
  await withTimeout(20_000, async () => {
    await t.step("[::1] (a URL's spelling of ::1) binds without a token and answers", async () => {
      await using server = await startEvalServer({ hostname: "[::1]", port: 0 });
      await using conn = await connectEvalServer({ hostname: "::1", port: server.port });
      assert.equal((await conn.send("1 + 1")).trim(), "2");
    });
    await t.step("a name that only starts like 127.x needs a token", async () => {
      await assert.rejects(
        startEvalServer({ hostname: "127.0.0.1.evil.example", port: 0 }),
        /exposes code evaluation beyond this machine/,
      );
      await assert.rejects(
        startEvalServer({ hostname: "127.0.0.0001", port: 0 }),
        /exposes code evaluation beyond this machine/,
      );
    });
  });
});
