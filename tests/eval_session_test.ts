/**
 * The session: REPL semantics, TypeScript, console capture, serialization, worker interrupts.
 */
import assert from "node:assert/strict";
import { createSession } from "../eval/mod.ts";
import { withTimeout } from "./_peers.ts";

Deno.test("eval session (in-process): REPL semantics in the host's global scope", async (t) => {
  await using session = await createSession();
  await t.step("let/const/class persist and can be redeclared", async () => {
    assert.equal((await session.evaluate("let s1 = 1")).text, "");
    assert.equal((await session.evaluate("let s1 = 2; s1")).text, "2");
    await session.evaluate("const s2 = 3");
    assert.equal((await session.evaluate("const s2 = 4; s2 + s1")).value, 6);
    await session.evaluate("class S3 { n = 1 }");
    assert.equal((await session.evaluate("class S3 { n = 2 }; new S3().n")).value, 2);
    assert.equal((await session.evaluate("function s4() { return 7 }")).text, "");
    assert.equal((await session.evaluate("s4()")).value, 7);
  });
  await t.step("top-level await and values printed like Deno's REPL", async () => {
    const result = await session.evaluate("await new Promise((r) => setTimeout(r, 1)); 'done'");
    assert.deepEqual(result, { text: '"done"', error: false, value: "done" });
    assert.equal(
      (await session.evaluate("({ a: [1, 2], b: 'x' })")).text,
      '{ a: [ 1, 2 ], b: "x" }',
    );
    assert.equal((await session.evaluate("10n ** 20n")).value, 10n ** 20n);
    assert.ok(Object.is((await session.evaluate("-0")).value, -0));
  });
  await t.step("globals set by the code are visible to the host", async () => {
    await session.evaluate("globalThis.sharedFromEval = 41");
    assert.equal((globalThis as Record<string, unknown>).sharedFromEval, 41);
    delete (globalThis as Record<string, unknown>).sharedFromEval;
  });
  await t.step("TypeScript input, erasable and not (enum)", async () => {
    assert.equal(
      (await session.evaluate("const tsf = (x: number): number => x * 2; tsf(21)")).value,
      42,
    );
    assert.equal((await session.evaluate("enum Colour { Red, Green }; Colour.Green")).value, 1);
    assert.equal((await session.evaluate("interface P { x: number }; ({ x: 1 } as P).x")).value, 1);
  });
  await t.step("console output is captured in order, before the value", async () => {
    const result = await session.evaluate(
      "console.log('a', { b: 1 }); console.error('%s!', 'c'); 5",
    );
    assert.equal(result.text, "a { b: 1 }\nc!\n5");
  });
  await t.step(
    "errors: runtime, syntax, incomplete, rejected promise, thrown non-error",
    async () => {
      assert.deepEqual(await session.evaluate("throw new RangeError('boom')"), {
        text: "Uncaught RangeError: boom",
        error: true,
        value: undefined,
      });
      const syntax = await session.evaluate("foo bar");
      assert.equal(syntax.error, true);
      assert.match(syntax.text, /^Uncaught SyntaxError: /);
      assert.equal(syntax.incomplete, undefined);
      for (const code of ["1 +", "function f() {", "[1, 2", "`abc", "g(1,"]) {
        const result = await session.evaluate(code);
        assert.equal(result.incomplete, true, code);
        assert.equal(result.error, true, code);
      }
      assert.match(
        (await session.evaluate("Promise.reject(new Error('r'))")).text,
        /<rejected> Error: r/,
      );
      assert.equal((await session.evaluate("throw 5")).text, "Uncaught 5");
      assert.equal((await session.evaluate("1 + 1")).value, 2, "the session goes on");
    },
  );
  await t.step("errors thrown later and unhandled rejections do not end the program", async () => {
    const later = await session.evaluate(
      "setTimeout(() => { throw new Error('later') }, 0); await new Promise((r) => setTimeout(r, 20)); 1",
    );
    assert.equal(later.text, "Uncaught Error: later\n1");
    const rejected = await session.evaluate(
      "Promise.reject(new Error('nobody')); await new Promise((r) => setTimeout(r, 20)); 2",
    );
    assert.equal(rejected.text, "Uncaught Error: nobody (in promise)\n2");
  });
  await t.step("evaluations run one at a time in call order", async () => {
    await session.evaluate("let order: number[] = []");
    const all = await Promise.all([
      session.evaluate("await new Promise((r) => setTimeout(r, 20)); order.push(1)"),
      session.evaluate("order.push(2)"),
      session.evaluate("order.push(3); order"),
    ]);
    assert.deepEqual(all[2]!.value, [1, 2, 3]);
  });
  await t.step("plain code and REPL-only code see the same scope", async () => {
    // Plain code takes the indirect-eval path, declarations the inspector's replMode.
    await session.evaluate("var viaEval = 1; function viaEvalFn() { return viaEval + 1 }");
    await session.evaluate("let viaRepl = viaEvalFn()");
    assert.equal((await session.evaluate("viaRepl + viaEval")).value, 3);
    for (let i = 0; i < 300; i++) await session.evaluate(`let loop = ${i}; loop`);
    assert.equal((await session.evaluate("loop")).value, 299);
    delete (globalThis as Record<string, unknown>).viaEval;
    delete (globalThis as Record<string, unknown>).viaEvalFn;
  });
  await t.step("a never-settling await is given up on after the time limit", async () => {
    const result = await session.evaluate("await new Promise(() => {})", { timeout: 100 });
    assert.equal(result.interrupted, true);
    assert.match(result.text, /^Interrupted: evaluation ran past 100 ms; it may still finish/);
    assert.equal((await session.evaluate("console.log('captured'); 1")).text, "captured\n1");
  });
  await t.step("a signal aborted before the turn drops the evaluation", async () => {
    const result = await session.evaluate("1", { signal: AbortSignal.abort() });
    assert.equal(result.error, true);
    assert.equal(result.interrupted, true);
  });
});

Deno.test("eval session (worker): a runaway evaluation is interrupted, the session goes on", async (t) => {
  await using session = await createSession({ worker: true, timeout: 5_000 });
  await t.step("same REPL semantics in the worker", async () => {
    await session.evaluate("let w = 20");
    const result = await session.evaluate("console.log('in worker'); w + 1");
    assert.deepEqual(result, { text: "in worker\n21", error: false, value: 21 });
    const fn = await session.evaluate("() => 1");
    assert.equal(fn.value, undefined, "functions are not cloneable");
    assert.equal(fn.text, "[Function (anonymous)]");
  });
  await t.step("time limit", async () => {
    const result = await session.evaluate("while (true) {}", { timeout: 200 });
    assert.equal(result.error, true);
    assert.equal(result.interrupted, true);
    assert.match(result.text, /^Interrupted: evaluation ran past 200 ms; .*state is lost/);
    assert.equal((await session.evaluate("typeof w")).value, "undefined", "fresh worker");
  });
  await t.step("errors thrown later stay in the worker", async () => {
    const result = await session.evaluate(
      "setTimeout(() => { throw new Error('later') }, 0); await new Promise((r) => setTimeout(r, 20)); 3",
    );
    assert.equal(result.text, "Uncaught Error: later\n3");
  });
  await t.step("abort signal while running", async () => {
    const controller = new AbortController();
    const pending = session.evaluate("for (;;) {}", { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    assert.equal(result.interrupted, true);
    assert.equal((await session.evaluate("6 * 7")).value, 42);
  });
});

Deno.test("eval session (worker): an interrupted evaluation that awaits is given up on and the state kept; synchronous code costs a restart", async (t) => {
  await withTimeout(60_000, async () => {
    await using session = await createSession({ worker: true });
    // The code says when it runs: a stop that comes before has nothing to give up yet.
    let started = Promise.withResolvers<void>();
    const done = Promise.withResolvers<unknown>();
    const busy = Promise.withResolvers<void>();
    session.expose?.({
      started: () => started.resolve(),
      done: (value) => done.resolve(value),
      busy: () => busy.resolve(),
    });
    const waits = "started(); await new Promise((r) => setTimeout(r, 60_000)); 'finished'";
    /** Evaluates `code`, stopped by `stop` once it runs; checks the reply and `kept`. */
    async function stopped(
      code: string,
      options: Parameters<typeof session.evaluate>[1],
      stop: () => void,
    ): Promise<string> {
      started = Promise.withResolvers<void>();
      const pending = session.evaluate(code, options);
      await started.promise;
      stop();
      const result = await pending;
      assert.equal(result.interrupted, true);
      assert.equal(result.error, true);
      return result.text;
    }
    await session.evaluate("var kept = 41");
    await t.step("by its signal", async () => {
      const controller = new AbortController();
      assert.equal(
        await stopped(waits, { signal: controller.signal }, () => controller.abort()),
        "Interrupted: evaluation aborted; it may still finish in the background",
      );
      assert.equal((await session.evaluate("kept + 1")).value, 42);
    });
    await t.step("by its time limit", async () => {
      assert.equal(
        await stopped(waits, { timeout: 1_000 }, () => {}),
        "Interrupted: evaluation ran past 1000 ms; it may still finish in the background",
      );
      assert.equal((await session.evaluate("kept + 1")).value, 42);
    });
    await t.step("by interrupt(), and it finishes in the background once released", async () => {
      const code = "started(); await new Promise((r) => globalThis.release = r); done(kept)";
      assert.equal(
        await stopped(code, {}, () => assert.equal(session.interrupt?.(), true)),
        "Interrupted: evaluation aborted; it may still finish in the background",
      );
      assert.equal((await session.evaluate("kept + 1")).value, 42);
      await session.evaluate("release()");
      assert.equal(await done.promise, 41, "the same worker went on with it");
    });
    await t.step("by its requester going away", async () => {
      const requester = new AbortController();
      assert.equal(
        await stopped(waits, { requesterGone: requester.signal }, () => requester.abort()),
        "Interrupted: its requester is gone; it may still finish in the background",
      );
      assert.equal((await session.evaluate("kept + 1")).value, 42);
    });
    await t.step("before the worker took it: the worker answers once free", async () => {
      // One given up on goes on in the background, then keeps the worker busy for a while.
      const code = "started(); await new Promise((r) => globalThis.proceed = r); " +
        "await new Promise((r) => setTimeout(r, 0)); busy(); " +
        "for (const end = Date.now() + 300; Date.now() < end;) {}";
      assert.equal(
        await stopped(code, {}, () => assert.equal(session.interrupt?.(), true)),
        "Interrupted: evaluation aborted; it may still finish in the background",
      );
      await session.evaluate("proceed()");
      await busy.promise;
      // Stopped while the worker is still busy with the other one: it has not started this one.
      const result = await session.evaluate("kept + 1", { timeout: 1 });
      assert.deepEqual(result, { text: "42", error: false, value: 42 });
    });
    for (const code of ["started(); while (true) {}", "started(); await 0; while (true) {}"]) {
      await t.step(`synchronous code costs a restart: ${code}`, async () => {
        await session.evaluate("var kept = 41");
        assert.equal(
          await stopped(code, {}, () => assert.equal(session.interrupt?.(), true)),
          "Interrupted: evaluation aborted; the worker was restarted and the session's state is lost",
        );
        assert.equal((await session.evaluate("typeof kept")).value, "undefined", "fresh worker");
      });
    }
  });
});

Deno.test("eval session (worker): the shared-memory lane and its fallbacks give the same results", async (t) => {
  await using session = await createSession({ worker: true, timeout: 10_000 });
  const exposed: unknown[] = [];
  session.expose?.({ note: (...args: unknown[]) => exposed.push(args) });
  await t.step("primitive values of every kind cross the lane", async () => {
    for (
      const [code, value] of [
        ["1 + 1", 2],
        ["-0", -0],
        ["0.1 + 0.2", 0.1 + 0.2],
        ["NaN", NaN],
        ["'é€😀'", "é€😀"],
        ["true", true],
        ["null", null],
        ["undefined", undefined],
      ] as const
    ) {
      const result = await session.evaluate(code);
      assert.ok(Object.is(result.value, value), `${code}: ${String(result.value)}`);
      assert.equal(result.error, false);
    }
  });
  await t.step("objects, long code and long replies go by message", async () => {
    assert.deepEqual((await session.evaluate("({ a: [1, 2], b: 'x' })")).value, {
      a: [1, 2],
      b: "x",
    });
    const long = `'${"y".repeat(100_000)}'.length`;
    assert.equal((await session.evaluate(long)).value, 100_000);
    const big = await session.evaluate("'z'.repeat(200_000)");
    assert.equal((big.value as string).length, 200_000);
    assert.equal((await session.evaluate("10n ** 20n")).value, 10n ** 20n);
  });
  await t.step("errors and incomplete input keep their flags", async () => {
    const thrown = await session.evaluate("throw new Error('lane')");
    assert.deepEqual([thrown.error, thrown.text], [true, "Uncaught Error: lane"]);
    assert.equal((await session.evaluate("(1 +")).incomplete, true);
  });
  await t.step("a host call is delivered before the reply that follows it", async () => {
    assert.equal((await session.evaluate("note('first'); 5")).value, 5);
    assert.deepEqual(exposed, [["first"]]);
  });
  await t.step("timers of evaluated code still fire between evaluations", async () => {
    await session.evaluate(
      "globalThis.ticks = 0; globalThis.ticker = setInterval(() => ticks++, 1)",
    );
    const started = Date.now();
    let ticks = 0;
    while (ticks < 20 && Date.now() - started < 5_000) {
      ticks = (await session.evaluate("ticks")).value as number;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(ticks >= 20, `only ${ticks} ticks`);
    await session.evaluate("clearInterval(ticker)");
  });
});

Deno.test("eval session (worker): it tells what runs and who asked, reports a slow one once, and stops one whose requester is gone", async () => {
  await withTimeout(30_000, async () => {
    const slow = Promise.withResolvers<string>();
    const reports: string[] = [];
    await using session = await createSession({
      worker: true,
      slowAfter: 50,
      onSlow: (running) => {
        reports.push(running.code);
        slow.resolve(`${running.door}: ${running.code}`);
      },
    });
    assert.equal(session.running?.(), undefined);
    const requester = new AbortController();
    const pending = session.evaluate("while (true) {}", {
      door: "eval sock9 (127.0.0.1:4242)",
      requesterGone: requester.signal,
    });
    assert.equal(await slow.promise, "eval sock9 (127.0.0.1:4242): while (true) {}");
    const running = session.running?.();
    assert.equal(running?.door, "eval sock9 (127.0.0.1:4242)");
    assert.ok(running!.since.getTime() <= Date.now());
    requester.abort();
    const result = await pending;
    assert.equal(result.interrupted, true);
    assert.match(result.text, /^Interrupted: its requester is gone; the worker was restarted/);
    assert.equal(session.running?.(), undefined);
    // A requester that left at once still has short code run (the grace), here queued too.
    const gone = AbortSignal.abort();
    const [set, read] = await Promise.all([
      session.evaluate("var kept = 41", { requesterGone: gone }),
      session.evaluate("kept + 1", { requesterGone: gone }),
    ]);
    assert.equal(set.error, false, set.text);
    assert.equal(read.value, 42);
    // (A fresh worker's first evaluation may be slow too: only the runaway's count is known.)
    assert.equal(reports.filter((code) => code === "while (true) {}").length, 1);
  });
});
