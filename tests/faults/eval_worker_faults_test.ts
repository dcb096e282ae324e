/**
 * Worker mode under runaway code: an evaluation stopped by its time limit, by `<<<esc>>>` or by
 * closing the session must leave no thread running. Deno 2.9.6's web `Worker.terminate()` only
 * wakes the worker's event loop, so a worker busy in `while (true) {}` goes on spinning a core
 * after it is "terminated": one more thread per runaway a client sends, and a program that
 * closes its session can never end. The session must stop such a worker another way. Each case runs the server in a child process and reads the
 * CPU time of each of its threads from `/proc/<pid>/task/<tid>/stat`.
 */
import assert from "node:assert/strict";
import { connectEvalServer } from "../../eval/mod.ts";
import { freePort, withTimeout } from "../_peers.ts";
import { rsock, type TestProcess, WORKER_READ } from "../_process.ts";
import { evalServerChild, startRunaway } from "./_eval_children.ts";

/** Clock ticks per second of `/proc/.../stat` (Linux's USER_HZ, 100 on every common build). */
const TICKS_PER_SECOND = 100;

/**
 * CPU time used so far (user + system, in clock ticks) by each thread of `pid`. Read by `cat`:
 * Deno wants `--allow-all` to read another process's `/proc` entries.
 */
async function threadTicks(pid: number): Promise<Map<string, number>> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", 'cat /proc/"$1"/task/*/stat 2>/dev/null', "sh", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  const ticks = new Map<string, number>();
  for (const stat of new TextDecoder().decode(stdout).split("\n")) {
    if (stat === "") continue;
    // "tid (name) state ppid …": the name may hold spaces; fields 14 and 15 are utime, stime.
    const tid = stat.slice(0, stat.indexOf(" "));
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks.set(`${tid} ${name}`, Number(fields[11]) + Number(fields[12]));
  }
  return ticks;
}

/** The CPU each thread of `pid` used during `ms`, busiest first. */
async function threadUse(pid: number, ms: number) {
  const before = await threadTicks(pid);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = await threadTicks(pid);
  const threads = [...after].map(([thread, ticks]) => ({
    thread,
    seconds: (ticks - (before.get(thread) ?? ticks)) / TICKS_PER_SECOND,
  })).sort((a, b) => b.seconds - a.seconds);
  const total = threads.reduce((sum, { seconds }) => sum + seconds, 0);
  const shown = threads.slice(0, 4).map(({ thread, seconds }) => `${thread}: ${seconds} s`);
  return { total, busiest: threads[0]?.seconds ?? 0, shown: shown.join(", ") };
}

/**
 * Asserts that the threads of `pid` go back to idle within `ms`: some 500 ms window in which
 * no thread uses more than 10 % of a core, then a 1 s window in which the whole process uses
 * at most 5 %. A worker left spinning uses a whole core (or all it can get on a busy machine).
 */
async function assertIdle(pid: number, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last = "";
  while (true) {
    const window = await threadUse(pid, 500);
    if (window.busiest <= 0.05) break;
    last = window.shown;
    assert.ok(Date.now() < deadline, `${what}: a thread still runs after ${ms} ms (${last})`);
  }
  const second = await threadUse(pid, 1_000);
  assert.ok(second.total <= 0.05, `${what}: ${second.total} s of CPU in 1 s (${second.shown})`);
}

function serve(args: string[]): TestProcess & { port: number } {
  const port = freePort();
  const child = rsock(
    [`--allow-net=127.0.0.1:${port}`, "--allow-sys", WORKER_READ],
    ["serve", "--eval", String(port), ...args],
  );
  return Object.assign(child, { port });
}

Deno.test("eval worker faults: runaways stopped by serve's time limit leave no thread running; idle serve uses no CPU; SIGTERM ends it", async () => {
  await withTimeout(90_000, async () => {
    await using child = serve(["--timeout", "3"]);
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    const pid = child.child.pid;
    await using client = await connectEvalServer({ port: child.port });
    assert.equal(await client.send("1 + 1"), "2");
    await assertIdle(pid, "idle serve");
    for (let i = 0; i < 200; i++) await client.send(`${i} + 1`);
    // The lane's watching after each answer must end: an idle session sleeps.
    await assertIdle(pid, "serve idle after 200 requests");
    // Plain code (indirect eval) and REPL-mode code (inside an inspector dispatch).
    for (const code of ["while (true) {}", "let spin = 0; while (true) spin++", "for (;;) {}"]) {
      assert.match(await client.send(code), /^Interrupted: evaluation ran past 3000 ms/, code);
    }
    assert.equal(await client.send("let back = 6 * 7; back"), "42");
    await assertIdle(pid, "serve after 3 runaways");
    const { client: runaway, reply } = await startRunaway(child.port);
    await using _runaway = runaway;
    // A serve that waits for its runaway never ends: the test's bound fails it.
    child.child.kill("SIGTERM");
    const status = await child.finished();
    assert.equal(status.code, 143, child.stderr);
    await reply.catch(() => {});
  });
});

Deno.test("eval worker faults: runaways ended by <<<esc>>> (a lone one from another client, and the client's own) leave no thread running", async () => {
  await withTimeout(60_000, async () => {
    await using child = serve([]);
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    const pid = child.child.pid;
    // (Deaf to the runaways' "started" pushes.)
    await using rescuer = await connectEvalServer({ port: child.port, onPush: () => {} });
    {
      const { client, reply } = await startRunaway(child.port);
      await using _client = client;
      await rescuer.interrupt(); // idle: a lone <<<esc>>> interrupts the shared session
      assert.match(await reply, /^Interrupted: evaluation aborted; the worker was restarted/);
    }
    {
      const { client, reply } = await startRunaway(child.port);
      await using _client = client;
      await client.interrupt(); // busy: <<<esc>>> interrupts this client's own transaction
      assert.match(await reply, /^Interrupted: evaluation aborted; the worker was restarted/);
    }
    assert.equal(await rescuer.send("1 + 1"), "2");
    await assertIdle(pid, "serve after 2 interrupted runaways");
  });
});

Deno.test("eval worker faults: a program whose worker session ran away ends once it closes the session", async () => {
  await withTimeout(60_000, async () => {
    const { child: server, port } = await evalServerChild({ worker: true, timeout: 1_500 });
    await using child = server;
    const pid = child.child.pid;
    {
      await using client = await connectEvalServer({ port });
      assert.match(await client.send("while (true) {}"), /^Interrupted: evaluation ran past/);
      assert.equal(await client.send("1 + 1"), "2");
    }
    await assertIdle(pid, "after a runaway");
    // Closing the server (and its session) while another runaway runs: the program ends.
    const { client, reply } = await startRunaway(port);
    await using _client = client;
    const started = Date.now();
    await child.child.stdin.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      child.finished().then((status) => status.code),
      new Promise<string>((resolve) => timer = setTimeout(() => resolve("still running"), 5_000)),
    ]).finally(() => clearTimeout(timer));
    assert.equal(ended, 0, `the program did not end after its server closed (${child.stderr})`);
    assert.ok(Date.now() - started < 5_000);
    await reply.catch(() => {});
  });
});

Deno.test("eval worker faults: runaways interrupted while they load node: modules never crash the process", async () => {
  await withTimeout(60_000, async () => {
    const { child: server, port } = await evalServerChild({ worker: true });
    await using child = server;
    await using client = await connectEvalServer({ port, onPush: () => {} });
    // A worker stopped in the middle of Deno's lazy load of a node: module made Deno 2.9.6
    // panic: the worker loads them all before it can be stopped anywhere.
    // Each is interrupted as soon as it says it starts the import: the load takes milliseconds.
    // An interrupt that lands during the import gives the evaluation up and its loop goes on in
    // the background: bounded (well past the host's wait for an answer), it cannot hold the
    // session for good.
    const modules = ["http", "http2", "tls", "crypto", "zlib", "net", "dns", "vm", "stream", "os"];
    for (const name of modules) {
      const importing = Promise.withResolvers<void>();
      await using runner = await connectEvalServer({
        port,
        onPush: (text) => text === "importing" && importing.resolve(),
      });
      const reply = runner.send(
        `sendSocketClients("importing"); await import("node:${name}"); ` +
          "for (const end = Date.now() + 3_000; Date.now() < end;) {}",
      );
      await importing.promise;
      await runner.interrupt();
      assert.match(await reply, /^Interrupted: /, name);
    }
    assert.equal(await client.send("1 + 1"), "2");
    await assertIdle(child.child.pid, "after 10 interrupted imports");
    await child.child.stdin.close();
    assert.equal((await child.finished()).code, 0, child.stderr);
  });
});
