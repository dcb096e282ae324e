/**
 * The session: one REPL scope that every caller (TCP clients, the websocket console, NNG
 * requests, the host) shares, with evaluations run one at a time in call order.
 *
 * @module
 */

import { locks, SHARE_ENV, Worker } from "node:worker_threads";
import { describeThrown, type EngineResult, InspectorEngine, StoppedWaiting } from "./_engine.ts";
import type { FromWorker, ToWorker } from "./_worker.ts";
import {
  type Channel,
  channel,
  type ChannelReply,
  HOST_SPIN_MS,
  readReply,
  REPLY_IN_CHANNEL,
  SLOT,
  SPIN_BACKOFF,
  spinWhile,
  TICK_MS,
  writeRequest,
} from "./_channel.ts";

/** What one evaluation gave. */
export interface EvaluationResult {
  /**
   * What a console shows: console output of this evaluation, then the REPL-style printed
   * value (`Deno.inspect`) when visible; lines joined by `"\n"`.
   */
  readonly text: string;
  /** True for syntax errors, runtime errors, incomplete input and interrupts; `text` holds the message. */
  readonly error: boolean;
  /**
   * The value of the last expression (undefined for errors; in worker mode a structured clone,
   * or undefined when not cloneable).
   */
  readonly value: unknown;
  /** True when the input ended early (an open block, call or template): more lines may complete it. */
  readonly incomplete?: boolean;
  /** True when the evaluation was stopped by its time limit or signal. */
  readonly interrupted?: boolean;
}

/** Per-evaluation options. */
export interface EvaluateOptions {
  /**
   * Stops waiting: a queued evaluation is dropped; a running one that waits on a top-level
   * `await` is given up on (it may still finish in the background) and the session's state
   * kept; in worker mode one busy in synchronous code costs a restart of the worker, and the
   * session's state with it (see {@linkcode SessionOptions.worker}).
   */
  readonly signal?: AbortSignal;
  /**
   * Time limit in milliseconds, past which the evaluation is stopped as by `signal`:
   * in-process, only a pending top-level `await` can be given up on (synchronous code runs to
   * its end).
   *
   * @default the session's `timeout`
   */
  readonly timeout?: number;
  /**
   * Who asks, as {@linkcode EvalSession.running} and the `onSlow` report name it: a door and a
   * peer, e.g. `"eval sock3 (127.0.0.1:50312)"`.
   *
   * @default "host"
   */
  readonly door?: string;
  /**
   * Aborts when whoever waits for the result is gone (its connection closed). The evaluation
   * is then given one more second to end (counted from its start if
   * it was still queued), and interrupted after that as `signal` would: nobody is left to read
   * its result, and every other caller waits behind it. The grace lets a client that sends a
   * line and closes at once (`echo 'x = 1' | nc -q0 …`) still have short code run.
   */
  readonly requesterGone?: AbortSignal;
}

/**
 * How long an evaluation whose requester is gone may still run (see
 * {@linkcode EvaluateOptions.requesterGone}).
 */
const REQUESTER_GONE_GRACE_MS = 1000;

/**
 * How long a worker asked to give up an evaluation that waits in its event loop has to answer
 * before it is restarted: it answers within a millisecond unless stuck in synchronous code;
 * the margin is for a busy machine, where a thread may wait long for its turn.
 */
const ABANDON_MS = 100 * TICK_MS;

/** The evaluation a session is running, as {@linkcode EvalSession.running} tells it. */
export interface RunningEvaluation {
  /** Who asked for it ({@linkcode EvaluateOptions.door}). */
  readonly door: string;
  /** Its code (from an eval server's status reply, only the first 60 characters). */
  readonly code: string;
  /** When it started. */
  readonly since: Date;
}

/** A shared REPL scope. */
export interface EvalSession extends AsyncDisposable {
  /**
   * Evaluates `code` after every evaluation asked for before it.
   *
   * @example
   * ```ts
   * import { createSession } from "@x/rsock/eval";
   * await using session = await createSession();
   * await session.evaluate("let n = 1");
   * const { text } = await session.evaluate("n + 1"); // "2"
   * ```
   */
  evaluate(code: string, options?: EvaluateOptions): Promise<EvaluationResult>;
  /**
   * Makes host functions callable from evaluated code as globals. In worker mode a call is
   * forwarded to the host and returns `undefined` to the caller.
   *
   * @example
   * ```ts
   * import { createSession } from "@x/rsock/eval";
   * await using session = await createSession();
   * session.expose?.({ hello: () => "hi" });
   * ```
   */
  expose?(functions: Record<string, (...args: unknown[]) => unknown>): void;
  /**
   * Interrupts the evaluation running now, whoever asked for it, as its `signal` would: one
   * waiting on a top-level `await` is given up on and the session's state kept; in worker
   * mode synchronous code costs a restart of the worker and the state, in-process it runs to
   * its end. Returns false when nothing was running.
   *
   * @example
   * ```ts
   * import { createSession } from "@x/rsock/eval";
   * await using session = await createSession({ worker: true });
   * const runaway = session.evaluate("while (true) {}");
   * setTimeout(() => session.interrupt?.(), 100);
   * (await runaway).interrupted; // true
   * ```
   */
  interrupt?(): boolean;
  /**
   * The evaluation running now (whoever asked for it), or undefined when the session is idle.
   *
   * @example
   * ```ts
   * import { createSession } from "@x/rsock/eval";
   * await using session = await createSession({ worker: true });
   * const pending = session.evaluate("while (true) {}", { door: "script" });
   * session.running?.()?.door; // "script"
   * session.interrupt?.();
   * await pending;
   * ```
   */
  running?(): RunningEvaluation | undefined;
  /**
   * Releases the engine. In-process it first waits for queued evaluations to finish; in worker
   * mode it interrupts the running one (terminating the worker) and drops the queued ones, so a
   * runaway never holds a shutdown.
   *
   * @example
   * ```ts
   * import { createSession } from "@x/rsock/eval";
   * const session = await createSession();
   * await session.close();
   * ```
   */
  close(): Promise<void>;
}

/** Options of {@linkcode createSession}. */
export interface SessionOptions {
  /**
   * Run the code in a worker thread (`node:worker_threads`), so a runaway evaluation can be
   * interrupted (time limit or signal). An evaluation waiting on a top-level `await` is given
   * up on as in-process (it may still finish in the background) and the state kept. One busy
   * in synchronous code (`while (true) {}`, also after an `await`) cannot be: the worker is
   * terminated, thread and all, and a fresh one started: **all state of the session
   * (variables, functions, timers) is lost** then. The worker's globals are its own: the host
   * program's globals are not visible to the code (nor `self`, which a node worker lacks).
   * Each worker loads every `node:` module as it starts (~50 ms): a worker stopped while Deno
   * loads one would crash Deno.
   *
   * @default false
   */
  readonly worker?: boolean;
  /**
   * Default time limit per evaluation in milliseconds (0 = none); see
   * {@linkcode EvaluateOptions.timeout}.
   *
   * @default 0
   */
  readonly timeout?: number;
  /**
   * In-process: keep the program alive when evaluated code throws later (in a timer) or leaves
   * a rejected promise unhandled. Such errors are added to the output of the evaluation running
   * at that moment, or dropped. This holds for the whole program while the session is open
   * (the host's own uncaught errors are caught too); pass `false` to keep Deno's default
   * (the program ends).
   *
   * @default true
   */
  readonly survive?: boolean;
  /**
   * Told once of each evaluation still running after `slowAfter` milliseconds (`rsock serve`
   * prints a line: who asked, the code, how to stop it).
   */
  readonly onSlow?: (evaluation: RunningEvaluation) => void;
  /**
   * Milliseconds an evaluation runs before `onSlow` is told of it.
   *
   * @default 10000
   */
  readonly slowAfter?: number;
}

function interrupted(reason: string): EvaluationResult {
  return { text: `Interrupted: ${reason}`, error: true, value: undefined, interrupted: true };
}

function toResult(result: EngineResult): EvaluationResult {
  return {
    text: result.text,
    error: result.error,
    value: result.value,
    ...(result.incomplete ? { incomplete: true } : {}),
  };
}

/** Why an evaluation whose requester left was stopped (the signal's reason, shown as is). */
const REQUESTER_GONE = "its requester is gone";

/** What {@linkcode SerialSession} needs of the session's options. */
interface SerialOptions {
  readonly timeout: number;
  readonly onSlow: ((evaluation: RunningEvaluation) => void) | undefined;
  readonly slowAfter: number;
}

abstract class SerialSession implements EvalSession {
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Stops the evaluation running now, saying why (set through `stoppable()` by `run()`). */
  #stopCurrent: ((reason?: string) => void) | undefined;
  readonly #options: SerialOptions;
  #running: { door: string; code: string; since: number } | undefined;

  constructor(options: SerialOptions) {
    this.#options = options;
  }

  evaluate(code: string, options: EvaluateOptions = {}): Promise<EvaluationResult> {
    if (this.#closed) return Promise.reject(new Error("Cannot evaluate: the session is closed"));
    const run = this.#tail.then(() => {
      if (options.signal?.aborted) return interrupted("cancelled before it started");
      return this.#begin(code, options);
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  async #begin(code: string, options: EvaluateOptions): Promise<EvaluationResult> {
    const timeout = options.timeout ?? this.#options.timeout;
    const running = { door: options.door ?? "host", code, since: Date.now() };
    this.#running = running;
    const { onSlow, slowAfter } = this.#options;
    const slow = onSlow === undefined ? undefined : setTimeout(() => {
      try {
        onSlow(this.#describe(running));
      } catch {
        // A failing reporter must not touch the evaluation.
      }
    }, slowAfter);
    // Nobody left to read the result: after the grace, stopped as its own signal would.
    const gone = options.requesterGone;
    let grace: ReturnType<typeof setTimeout> | undefined;
    const onGone = () => {
      grace = setTimeout(() => {
        if (this.#running === running) this.#stopCurrent?.(REQUESTER_GONE);
      }, REQUESTER_GONE_GRACE_MS);
    };
    if (gone?.aborted) onGone();
    else gone?.addEventListener("abort", onGone, { once: true });
    try {
      return await this.run(code, timeout, options.signal);
    } finally {
      clearTimeout(slow);
      clearTimeout(grace);
      gone?.removeEventListener("abort", onGone);
      if (this.#running === running) this.#running = undefined;
    }
  }

  #describe(running: { door: string; code: string; since: number }): RunningEvaluation {
    return { door: running.door, code: running.code, since: new Date(running.since) };
  }

  running(): RunningEvaluation | undefined {
    return this.#running === undefined ? undefined : this.#describe(this.#running);
  }

  interrupt(): boolean {
    if (this.#stopCurrent === undefined) return false;
    this.#stopCurrent();
    return true;
  }

  /**
   * Makes `stop` how the evaluation `run()` starts is stopped: by `interrupt()`, by its
   * requester going away, and by `signal` ("evaluation aborted" unless a reason is given).
   * Returns the undo, for `run()` to call once that evaluation has ended.
   */
  protected stoppable(stop: (reason: string) => void, signal?: AbortSignal): () => void {
    const stopNow = (reason = "evaluation aborted") => stop(reason);
    const onAbort = () => stopNow();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#stopCurrent = stopNow;
    return () => {
      if (this.#stopCurrent === stopNow) this.#stopCurrent = undefined;
      signal?.removeEventListener("abort", onAbort);
    };
  }

  abstract run(code: string, timeout: number, signal?: AbortSignal): Promise<EvaluationResult>;
  abstract expose(functions: Record<string, (...args: unknown[]) => unknown>): void;
  abstract release(): void;

  async close(): Promise<void> {
    if (this.#closed) return await this.#tail.then(() => {});
    this.#closed = true;
    await this.#tail;
    this.release();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class InProcessSession extends SerialSession {
  #engine = new InspectorEngine();
  readonly #onError?: (event: ErrorEvent) => void;
  readonly #onRejection?: (event: PromiseRejectionEvent) => void;

  constructor(options: SerialOptions, survive: boolean) {
    super(options);
    if (!survive) return;
    this.#onError = (event) => {
      event.preventDefault();
      this.#engine.report(describeThrown(event.error ?? event.message));
    };
    this.#onRejection = (event) => {
      event.preventDefault();
      this.#engine.report(`${describeThrown(event.reason)} (in promise)`);
    };
    globalThis.addEventListener("error", this.#onError);
    globalThis.addEventListener("unhandledrejection", this.#onRejection);
  }

  override async run(
    code: string,
    timeout: number,
    signal?: AbortSignal,
  ): Promise<EvaluationResult> {
    // Synchronous code cannot be stopped in-process; a pending top-level await can be given up
    // on (it goes on in the background), so that one never-settling promise does not hold
    // every other caller forever.
    const stop = new AbortController();
    const timer = timeout > 0 ? setTimeout(() => stop.abort(), timeout) : undefined;
    let aborted: string | undefined;
    const ended = this.stoppable((reason) => {
      aborted ??= reason;
      stop.abort();
    }, signal);
    try {
      return toResult(await this.#engine.evaluate(code, stop.signal));
    } catch (error) {
      if (!(error instanceof StoppedWaiting)) throw error;
      return interrupted(
        aborted !== undefined
          ? `${aborted}; it may still finish in the background`
          : `evaluation ran past ${timeout} ms; it may still finish in the background`,
      );
    } finally {
      ended();
      clearTimeout(timer);
    }
  }

  override expose(functions: Record<string, (...args: unknown[]) => unknown>): void {
    Object.assign(globalThis, functions);
  }

  override release(): void {
    if (this.#onError) globalThis.removeEventListener("error", this.#onError);
    if (this.#onRejection) globalThis.removeEventListener("unhandledrejection", this.#onRejection);
    this.#engine.close();
  }
}

class WorkerSession extends SerialSession {
  #worker!: Worker;
  /** The name of the Web Lock the current worker holds (see `_worker.ts`). */
  #lock!: string;
  /** The fast lane to the current worker (a new one with each worker). */
  #lane!: Channel;
  /** Rounds left without watching for the reply (see `SPIN_BACKOFF`). */
  #spinOff = 0;
  #nextId = 0;
  /**
   * The evaluation sent to the worker and not answered yet, and why the worker was asked to
   * give it up, once it was.
   */
  #pending:
    | { id: number; resolve(result: EvaluationResult): void; abandoning: string | undefined }
    | undefined;
  #functions: Record<string, (...args: unknown[]) => unknown> = {};
  #stopping = false;

  constructor(options: SerialOptions) {
    super(options);
    this.#worker = this.#start();
  }

  // (#worker and #lane are set together by #start.)

  #start(): Worker {
    // A node:worker_threads worker: the only kind Deno 2.9.6 can stop in the middle of
    // synchronous code (see `_worker.ts`). It takes file: and data: URLs only: an http(s):
    // module (rsock imported from a registry) is imported by a data: module.
    const url = new URL("./_worker.ts", import.meta.url);
    this.#lock = `rsock.eval.worker.${crypto.randomUUID()}`;
    const worker = new Worker(
      url.protocol === "file:"
        ? url
        : new URL(`data:text/javascript,import ${encodeURIComponent(JSON.stringify(url.href))};`),
      // SHARE_ENV: the worker sees the process's environment as in-process code does, and
      // Deno's default (a copy of it) reads every variable at start, which asks for env access
      // and, on a terminal, stops `rsock serve` at a permission prompt.
      { workerData: { lock: this.#lock }, env: SHARE_ENV },
    );
    this.#lane = channel();
    worker.postMessage({ type: "channel", buffer: this.#lane.buffer } satisfies ToWorker);
    // Never let the worker's own failure end the host program.
    worker.on("error", () => {});
    worker.on("message", (message: FromWorker) => {
      if (message.type === "call") {
        try {
          this.#functions[message.name]?.(...message.args);
        } catch {
          // A host function failing must not take the session down.
        }
        return;
      }
      if (this.#pending?.id === message.id) this.#answer(message);
    });
    const names = Object.keys(this.#functions);
    if (names.length > 0) worker.postMessage({ type: "expose", names } satisfies ToWorker);
    return worker;
  }

  #restart(): void {
    this.#terminate();
    this.#worker = this.#start();
  }

  /**
   * Ends the worker, and releases a host still waiting on its channel. A worker holding its
   * lock is stopped wherever it is (V8's TerminateExecution); but stopped while it waits in its
   * event loop (an `await import(…)` pending), Deno 2.9.6 may lose the stop (the thread runs on)
   * or abort the process ("Cannot create a handle without a HandleScope"). So a worker that
   * runs code that may wait is watched for a moment: if its ticks go on, it is waiting, and
   * the lock is taken back first so that the stop only ends its event loop.
   */
  #terminate(): void {
    const worker = this.#worker;
    const lane = this.#lane;
    const lock = this.#lock;
    Atomics.store(lane.slots, SLOT.replyId, -1);
    Atomics.notify(lane.slots, SLOT.replyId);
    if (Atomics.load(lane.slots, SLOT.waiting) !== 1) {
      void worker.terminate().catch(() => {});
      return;
    }
    const ticks = Atomics.load(lane.slots, SLOT.ticks);
    setTimeout(async () => {
      if (Atomics.load(lane.slots, SLOT.ticks) !== ticks) {
        await locks.request(lock, { steal: true }, () => {}).catch(() => {});
      }
      void worker.terminate().catch(() => {});
    }, 3 * TICK_MS);
  }

  /** Resolves the pending evaluation with the worker's reply to it. */
  #answer(reply: ChannelReply & { readonly abandoned?: boolean }): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    pending.resolve(
      reply.abandoned === true
        ? interrupted(`${pending.abandoning}; it may still finish in the background`)
        : toResult(reply),
    );
  }

  /** True while the worker watches the channel. */
  #hot(lane: Channel): boolean {
    return Atomics.load(lane.slots, SLOT.watching) === 1;
  }

  /** Waits for the channel's reply to `id` (a reply by message resolves through onmessage). */
  #awaitReply(id: number, lane: Channel, hot: boolean): void {
    let first = hot;
    const check = (): void => {
      if (this.#pending?.id !== id || lane !== this.#lane) return;
      const answered = Atomics.load(lane.slots, SLOT.replyId);
      if (answered !== id && first) {
        // A worker that took the request at once answers a short evaluation within
        // microseconds: watch for it briefly rather than sleep and be woken.
        first = false;
        if (this.#spinOff > 0) this.#spinOff--;
        else if (!spinWhile(lane.slots, SLOT.replyId, answered, HOST_SPIN_MS)) {
          this.#spinOff = SPIN_BACKOFF;
        }
        return check();
      }
      if (answered !== id) {
        const wait = Atomics.waitAsync(lane.slots, SLOT.replyId, answered);
        if (wait.async) void wait.value.then(check);
        else check();
        return;
      }
      if (Atomics.load(lane.slots, SLOT.replyKind) !== REPLY_IN_CHANNEL) return;
      this.#answer(readReply(lane));
    };
    check();
  }

  override run(code: string, timeout: number, signal?: AbortSignal): Promise<EvaluationResult> {
    if (this.#stopping) return Promise.resolve(interrupted("the session was closed"));
    const id = ++this.#nextId;
    const { promise, resolve } = Promise.withResolvers<EvaluationResult>();
    const pending = { id, resolve, abandoning: undefined as string | undefined };
    this.#pending = pending;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let fallback: ReturnType<typeof setTimeout> | undefined;
    const restart = (reason: string) => {
      if (this.#pending?.id !== id) return;
      this.#pending = undefined;
      this.#restart();
      resolve(interrupted(`${reason}; the worker was restarted and the session's state is lost`));
    };
    const stop = (reason: string) => {
      if (this.#pending !== pending || pending.abandoning !== undefined) return;
      const { slots } = this.#lane;
      if (Atomics.load(slots, SLOT.running) === id && Atomics.load(slots, SLOT.waiting) !== 1) {
        return restart(reason); // Synchronous code: nothing else can stop it.
      }
      // Waiting in its event loop, the worker can give the evaluation up and keep its state; not
      // started yet, it gets this request after the one to start it (messages keep their order).
      // Stuck in synchronous code (`await 0; while (true) {}`), it cannot answer: restarted.
      // A reply that crosses this request wins: the worker ignores an id it no longer runs.
      pending.abandoning = reason;
      this.#worker.postMessage({ type: "abandon", id } satisfies ToWorker);
      fallback = setTimeout(() => restart(reason), ABANDON_MS);
    };
    if (timeout > 0) timer = setTimeout(() => stop(`evaluation ran past ${timeout} ms`), timeout);
    const ended = this.stoppable(stop, signal);
    const lane = this.#lane;
    if (writeRequest(lane, id, code)) {
      // A worker blocked on the channel wakes now; one in its event loop needs a message.
      // A worker watching or blocked on the channel takes it now; otherwise a message wakes it.
      const watching = Atomics.notify(lane.slots, SLOT.requestId, 1) === 1 || this.#hot(lane);
      if (!watching) this.#worker.postMessage({ type: "wake" } satisfies ToWorker);
      this.#awaitReply(id, lane, watching);
    } else {
      this.#worker.postMessage({ type: "evaluate", id, code } satisfies ToWorker);
    }
    return promise.finally(() => {
      ended();
      clearTimeout(timer);
      clearTimeout(fallback);
    });
  }

  override expose(functions: Record<string, (...args: unknown[]) => unknown>): void {
    Object.assign(this.#functions, functions);
    this.#worker.postMessage({ type: "expose", names: Object.keys(functions) } satisfies ToWorker);
  }

  /**
   * Unlike in-process, closing does not wait for a runaway: the running evaluation is
   * interrupted (the worker terminated) and the queued ones are dropped.
   */
  override close(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#terminate();
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.resolve(interrupted("the session was closed"));
    }
    return super.close();
  }

  override release(): void {
    // close() has terminated the worker already.
  }
}

/**
 * Creates a shared REPL session: JavaScript or TypeScript, `let`/`const`/`class` persisting
 * across evaluations and redeclarable, top-level `await`, values printed like Deno's REPL,
 * console output of each evaluation captured into its result. By default the code runs in the
 * host program's own global scope; with `worker: true` it runs in a worker that can be
 * interrupted.
 *
 * In-process, console output is captured by swapping the console's methods while an
 * evaluation runs, so anything the host itself logs meanwhile (e.g. from a timer during a
 * top-level `await`) lands in that evaluation's result. Code without `let`/`const`/`class`/
 * `await`/`import` runs through global indirect `eval` (same semantics, ten times faster);
 * the rest through `node:inspector`'s `replMode`.
 *
 * @example
 * ```ts
 * import { createSession } from "@x/rsock/eval";
 * await using session = await createSession();
 * await session.evaluate("const greet = (name: string) => `hi ${name}`");
 * const result = await session.evaluate("console.log(1); greet('R')");
 * // result.text === "1\n'hi R'"
 * ```
 */
export function createSession(options: SessionOptions = {}): Promise<EvalSession> {
  const timeout = options.timeout ?? 0;
  if (!Number.isFinite(timeout) || timeout < 0) {
    throw new RangeError(`timeout must be a number of milliseconds ≥ 0, got ${timeout}`);
  }
  const slowAfter = options.slowAfter ?? 10_000;
  if (!Number.isFinite(slowAfter) || slowAfter < 0) {
    throw new RangeError(`slowAfter must be a number of milliseconds ≥ 0, got ${slowAfter}`);
  }
  const serial = { timeout, onSlow: options.onSlow, slowAfter };
  return Promise.resolve(
    options.worker === true
      ? new WorkerSession(serial)
      : new InProcessSession(serial, options.survive ?? true),
  );
}
