/**
 * The worker of worker mode: the same engine, driven by messages, so the host can terminate it
 * when an evaluation runs away.
 *
 * A `node:worker_threads` worker holding a Web Lock, not a web `Worker`: in Deno 2.9.6 a web
 * `Worker`'s `terminate()` only wakes the worker's event loop, so a worker busy in synchronous
 * code (`while (true) {}`) never stops, spinning a core for the life of the process and keeping
 * the process from exiting. Terminating a `node:worker_threads` worker that holds a lock also
 * stops its isolate at once (V8's `TerminateExecution`), wherever it is.
 *
 * @module
 */

import { builtinModules } from "node:module";
import { locks, parentPort, workerData } from "node:worker_threads";
import { describeThrown, type EngineResult, InspectorEngine, StoppedWaiting } from "./_engine.ts";
import {
  type Channel,
  channel,
  HOT_MS,
  readRequest,
  REPLY_BY_MESSAGE,
  REPLY_IN_CHANNEL,
  SLOT,
  SPIN_BACKOFF,
  SPIN_MS,
  spinWhile,
  TICK_MS,
  writeReply,
} from "./_channel.ts";

/** host → worker */
export type ToWorker =
  | { readonly type: "evaluate"; readonly id: number; readonly code: string }
  | { readonly type: "expose"; readonly names: readonly string[] }
  /** The shared buffer of the fast lane (see `_channel.ts`). */
  | { readonly type: "channel"; readonly buffer: SharedArrayBuffer }
  /** A request waits in the channel (sent when the worker was not blocked on it). */
  | { readonly type: "wake" }
  /** Give up on evaluation `id` if it waits in the event loop (see `WorkerSession`). */
  | { readonly type: "abandon"; readonly id: number };

/** worker → host */
export type FromWorker =
  | {
    readonly type: "result";
    readonly id: number;
    readonly text: string;
    readonly error: boolean;
    readonly incomplete: boolean;
    readonly value: unknown;
    /** True when the evaluation was given up on (an "abandon"); the rest is empty then. */
    readonly abandoned: boolean;
  }
  | { readonly type: "call"; readonly name: string; readonly args: unknown[] };

interface Port {
  on(event: "message", listener: (message: ToWorker) => void): void;
  postMessage(message: FromWorker): void;
}

const port = parentPort as unknown as Port;
const engine = new InspectorEngine();

// Errors thrown later by evaluated code (timers, unhandled rejections) would end the worker
// and reach the host: report them in the running evaluation's output instead.
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  engine.report(describeThrown(event.error ?? event.message));
});
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  engine.report(`${describeThrown(event.reason)} (in promise)`);
});

/** Host calls made so far: a reply after one goes by message, behind the call's message. */
let hostCalls = 0;
let lane: Channel | undefined;
/** The id of the last channel request taken. */
let taken = 0;
let serving = false;
/** Rounds left without watching (see `SPIN_BACKOFF`). */
let spinOff = 0;

/** Code that may wait in the event loop (the engine's own test for a possible suspension). */
const MAY_WAIT = /\bawait\b/;

/** What `run()` gives for an evaluation given up on (compared by identity). */
const ABANDONED: EngineResult = { text: "", error: true, value: undefined, incomplete: false };

/** The evaluation that may wait running now, and how to give up on it. */
let current: { readonly id: number; readonly stop: AbortController } | undefined;

/**
 * Evaluates `code`; while code that may wait runs, a timer ticks in the channel so the host
 * can tell a worker waiting in its event loop from one stuck in synchronous code (see
 * `WorkerSession` in `_session.ts`), and an "abandon" message gives up on it: the worker and
 * its state live on, the evaluation may still finish in the background (as in-process).
 */
async function run(id: number, code: string): Promise<EngineResult> {
  const ch = lane;
  if (ch === undefined) return await engine.evaluate(code);
  if (!MAY_WAIT.test(code)) {
    Atomics.store(ch.slots, SLOT.running, id);
    try {
      return await engine.evaluate(code);
    } finally {
      Atomics.store(ch.slots, SLOT.running, 0);
    }
  }
  const stop = new AbortController();
  current = { id, stop };
  // `waiting` is set whenever `running` shows this id (the host reads them in that order).
  Atomics.store(ch.slots, SLOT.waiting, 1);
  Atomics.store(ch.slots, SLOT.running, id);
  const ticker = setInterval(() => Atomics.add(ch.slots, SLOT.ticks, 1), TICK_MS);
  try {
    return await engine.evaluate(code, stop.signal);
  } catch (error) {
    if (error instanceof StoppedWaiting) return ABANDONED;
    throw error;
  } finally {
    if (current?.id === id) current = undefined;
    clearInterval(ticker);
    Atomics.store(ch.slots, SLOT.running, 0);
    Atomics.store(ch.slots, SLOT.waiting, 0);
  }
}

function postResult(id: number, result: EngineResult): void {
  const reply = { type: "result", id, ...result, abandoned: result === ABANDONED } as const;
  try {
    port.postMessage(reply);
  } catch {
    // Functions, sockets, class instances with private state…: not cloneable, text only.
    port.postMessage({ ...reply, value: undefined });
  }
}

/**
 * Serves requests from the channel until none comes for a moment (`SPIN_MS` watching, then
 * `HOT_MS` blocked). Meanwhile this worker's event loop waits: a timer of evaluated code may
 * fire up to about `HOT_MS` late.
 */
async function serveChannel(ch: Channel): Promise<void> {
  if (serving) return;
  serving = true;
  try {
    while (lane === ch) {
      const id = Atomics.load(ch.slots, SLOT.requestId);
      if (id === taken) {
        Atomics.store(ch.slots, SLOT.watching, 1);
        if (spinOff > 0) spinOff--;
        else if (spinWhile(ch.slots, SLOT.requestId, taken, SPIN_MS)) continue;
        else spinOff = SPIN_BACKOFF;
        if (Atomics.wait(ch.slots, SLOT.requestId, taken, HOT_MS) !== "timed-out") continue;
        // Leaving: a request written before this store is seen by the check below; one
        // written after it comes with a "wake" message.
        Atomics.store(ch.slots, SLOT.watching, 0);
        if (Atomics.load(ch.slots, SLOT.requestId) === taken) return;
        continue;
      }
      taken = id;
      const calls = hostCalls;
      const result = await run(id, readRequest(ch));
      // The channel carries no "abandoned" flag: such a reply goes by message.
      const inChannel = result !== ABANDONED && hostCalls === calls && writeReply(ch, result);
      if (!inChannel) postResult(id, result);
      Atomics.store(ch.slots, SLOT.replyKind, inChannel ? REPLY_IN_CHANNEL : REPLY_BY_MESSAGE);
      Atomics.store(ch.slots, SLOT.replyId, id);
      Atomics.notify(ch.slots, SLOT.replyId);
    }
  } finally {
    serving = false;
  }
}

/**
 * Resolves once the worker can be stopped anywhere. Not awaited at the top level: a worker
 * ended while its module is still being evaluated is a known way to crash V8.
 */
const ready = (async () => {
  // Deno loads its node: modules lazily, on their first import; an isolate stopped in the
  // middle of such a load makes Deno 2.9.6 panic (the whole process aborts: "ext_script.rs …
  // unwrap() on a None value"), so `await import("node:zlib"); while (true) {}` interrupted at
  // the wrong moment would end the host. Load them all now (~50 ms, ~10 MB), while a terminate
  // still only ends the event loop: no lock is held yet.
  for (const name of builtinModules) {
    await import(name.startsWith("node:") ? name : `node:${name}`).catch(() => {});
  }
  // Held for the worker's life, and taken before any request is read: terminating this worker
  // then also stops its isolate (see the module doc). The name, this worker's own, comes from
  // the host, which takes the lock back to stop a waiting worker gently. (Should a Deno lack the
  // lock API, the session still works; only runaways go on spinning.)
  await new Promise<void>((granted) => {
    locks.request((workerData as { lock: string }).lock, () => {
      granted();
      return new Promise<never>(() => {});
    }).catch(() => granted());
  }).catch(() => {});
})();

port.on("message", async (message) => {
  // Messages keep their order: each waits for the same promise.
  await ready;
  switch (message.type) {
    case "expose":
      for (const name of message.names) {
        // Host functions cannot answer synchronously across threads: the call is forwarded
        // and returns undefined.
        (globalThis as Record<string, unknown>)[name] = (...args: unknown[]) => {
          hostCalls++;
          port.postMessage({ type: "call", name, args });
        };
      }
      return;
    case "channel":
      lane = channel(message.buffer);
      return;
    case "wake":
      if (lane !== undefined) await serveChannel(lane);
      return;
    case "abandon":
      // An id that is not running finished first: its reply is on its way.
      if (current?.id === message.id) current.stop.abort();
      return;
    case "evaluate":
      postResult(message.id, await run(message.id, message.code));
  }
});
