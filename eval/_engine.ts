/**
 * How code is run: one `node:inspector` session on the current isolate, `Runtime.evaluate`
 * with `replMode: true` (the mode Deno's own REPL uses), so `let`/`const`/`class` persist and
 * can be redeclared and top-level `await` works; TypeScript is stripped only when the input is
 * not valid JavaScript; console output is captured by swapping the console's methods for the
 * duration of one evaluation (evaluations are serialized by the session, so one capture at a
 * time is enough).
 *
 * The inspector is never left waiting for an evaluation's promise (see `#runReplMode`): in
 * REPL mode V8's inspector always awaits the evaluation's promise and holds it only weakly;
 * when that promise is collected before the inspector took its result (never settled, as with
 * `await new Promise(() => {})`, or settled but its callback not yet run), V8 answers "Promise
 * was collected" from inside the garbage collector, and Deno 2.9.6's `node:inspector` runs its
 * JavaScript callback right there: the process aborts ("Invoke in
 * DisallowJavascriptExecutionScope"). A worker torn down while the inspector waits aborts the
 * same way ("Cannot create a handle without a HandleScope").
 *
 * Used in-process by the session and, unchanged, inside the worker of worker mode.
 *
 * @module
 */

import { Session } from "node:inspector";
import { stripTypeScriptTypes } from "node:module";
import { format } from "node:util";
import v8 from "node:v8";

/** The outcome of one evaluation (see `EvaluationResult` in `_session.ts`). */
export interface EngineResult {
  readonly text: string;
  readonly error: boolean;
  readonly value: unknown;
  /** The input ended inside a block, call, literal or template: more lines may complete it. */
  readonly incomplete: boolean;
}

interface RemoteObject {
  type: string;
  subtype?: string;
  className?: string;
  value?: unknown;
  unserializableValue?: string;
  description?: string;
  objectId?: string;
}

interface EvaluateReply {
  result: RemoteObject;
  exceptionDetails?: unknown;
}

/**
 * Code that needs the REPL's own semantics: `let`/`const`/`class`/`using` persisting across
 * evaluations (and redeclarable), top-level `await`, dynamic `import`. A word match is enough:
 * a false positive only takes the slower inspector path.
 */
const NEEDS_REPL_MODE = /\b(?:let|const|class|await|import|using)\b/;

/**
 * Only code with `await` can leave the REPL function suspended: without it, the evaluation's
 * promise is settled by the time `Runtime.evaluate` returns. (A false positive only costs a
 * session swap.)
 */
const MAY_SUSPEND = /\bawait\b/;

/** Where `Runtime.callFunctionOn` drops the real value so we can read it back here. */
const SLOT = Symbol.for("rsock.eval.value");
const OBJECT_GROUP = "rsock-eval";
/** Where V8's REPL mode puts the completion value in the object its promise fulfils with. */
const REPL_RESULT = ".repl_result";
// A rejected promise as the last value is shown, not fatal: mark it handled at once, before
// Deno's unhandled-rejection check runs.
const STORE = `function (value) {
  if (value instanceof Promise) value.catch(() => {});
  globalThis[Symbol.for("rsock.eval.value")] = value;
}`;

/** Methods whose output is captured; the rest of the console is left alone. */
const CAPTURED = [
  "log",
  "info",
  "debug",
  "warn",
  "error",
  "trace",
  "dir",
  "dirxml",
  "table",
] as const;

/** V8's messages for input that ended too early (the REPL keeps reading instead). */
function isIncompleteMessage(message: string): boolean {
  return message === "Unexpected end of input" || message.startsWith("Unterminated template");
}

function formatArgs(args: unknown[]): string {
  if (typeof args[0] === "string" && args[0].includes("%")) return format(...args);
  return args.map((arg) => typeof arg === "string" ? arg : Deno.inspect(arg)).join(" ");
}

/** The thrown value, printed like Deno's REPL prints an uncaught error (without the stack). */
export function describeThrown(value: unknown): string {
  if (value instanceof Error) return `Uncaught ${value.name}: ${value.message}`;
  return `Uncaught ${Deno.inspect(value)}`;
}

function primitive(remote: RemoteObject): unknown {
  if (remote.unserializableValue !== undefined) {
    const text = remote.unserializableValue;
    if (text.endsWith("n")) return BigInt(text.slice(0, -1));
    if (text === "-0") return -0;
    if (text === "NaN") return NaN;
    return text === "Infinity" ? Infinity : -Infinity;
  }
  return remote.type === "undefined" ? undefined : remote.value;
}

let hooked = false;
let capturing = false;
let captured: Promise<unknown> | undefined;

/**
 * Runs `dispatch` and returns the first promise created while it ran: for a REPL-mode
 * `Runtime.evaluate`, the evaluation's own promise (V8 creates it as the REPL function starts,
 * before any code of the input runs); undefined when the input threw before starting (syntax
 * error, redeclaration). The hook stays installed once set (Deno cannot remove one); outside
 * a dispatch it only reads a flag.
 */
function firstPromiseOf(dispatch: () => void): Promise<unknown> | undefined {
  if (!hooked) {
    hooked = true;
    v8.promiseHooks.onInit((promise) => {
      if (capturing && captured === undefined) captured = promise;
    });
  }
  captured = undefined;
  capturing = true;
  try {
    dispatch();
  } finally {
    capturing = false;
  }
  const first = captured;
  captured = undefined;
  return first;
}

/** Thrown by {@linkcode untilAborted}: the caller stopped waiting. */
export class StoppedWaiting extends Error {
  constructor() {
    super("stopped waiting");
    this.name = "StoppedWaiting";
  }
}

/**
 * Waits for `work` unless `signal` aborts first. In-process, a pending top-level `await`
 * cannot be cancelled; this only stops waiting for it (it goes on in the background).
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) return Promise.reject(new StoppedWaiting());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new StoppedWaiting());
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** One REPL over the current isolate. */
export class InspectorEngine {
  #session = new Session();
  #closed = false;
  #lines: string[] | undefined;
  /** The settled promise of the REPL-mode evaluation being read, held until it is read. */
  #settled: Promise<unknown> | undefined;

  /**
   * Adds a line to the output of the evaluation running now, if any (uncaught errors from the
   * evaluated code's timers, unhandled rejections). Returns whether one was running.
   */
  report(line: string): boolean {
    this.#lines?.push(line);
    return this.#lines !== undefined;
  }

  constructor() {
    this.#session.connect();
  }

  #post<T>(method: string, params: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#session.post(method, params, (error: Error | null, result: unknown) => {
        if (error) reject(error);
        else resolve(result as T);
      });
    });
  }

  // Boxed: an async function returning a promise would adopt (await) it.
  async #valueOf(remote: RemoteObject): Promise<{ value: unknown }> {
    if (remote.objectId === undefined) return { value: primitive(remote) };
    const global = globalThis as Record<symbol, unknown>;
    try {
      await this.#post("Runtime.callFunctionOn", {
        objectId: remote.objectId,
        functionDeclaration: STORE,
        arguments: [{ objectId: remote.objectId }],
      });
      return { value: global[SLOT] };
    } finally {
      delete global[SLOT];
      // Without this the inspector keeps every result alive forever.
      this.#session.post("Runtime.releaseObjectGroup", { objectGroup: OBJECT_GROUP });
    }
  }

  async #run(expression: string): Promise<{ thrown: boolean; value: unknown }> {
    if (!NEEDS_REPL_MODE.test(expression)) {
      // Without lexical declarations or await, global indirect eval has the same semantics as
      // replMode, at a tenth of the cost, and keeps the inspector off the hot path.
      try {
        // deno-lint-ignore no-eval
        const value = (0, eval)(expression);
        if (value instanceof Promise) value.catch(() => {});
        return { thrown: false, value };
      } catch (error) {
        return { thrown: true, value: error };
      }
    }
    return await this.#runReplMode(expression);
  }

  /**
   * `Runtime.evaluate` in REPL mode, reading the outcome from the evaluation's own promise
   * rather than from the inspector's answer, and never leaving the inspector waiting on that
   * promise (see the module doc):
   * - settled already (no `await`): held here until read; the inspector's own callback on it
   *   was queued first, so it has run by then;
   * - possibly pending: the session is replaced by a fresh one at once (REPL bindings live in
   *   the isolate, not in the session), which drops the inspector's callback while the promise
   *   is still held; a promise nothing can settle is then collected harmlessly, with the
   *   evaluation waiting on it.
   */
  async #runReplMode(expression: string): Promise<{ thrown: boolean; value: unknown }> {
    const reply = Promise.withResolvers<EvaluateReply>();
    const params = { expression, replMode: true, objectGroup: OBJECT_GROUP };
    // Only the inspector call itself runs under the capture (no promise of ours is made there).
    const evaluation = firstPromiseOf(() =>
      this.#session.post("Runtime.evaluate", params, (error: Error | null, result: unknown) => {
        if (error) reply.reject(error);
        else reply.resolve(result as EvaluateReply);
      })
    );
    if (evaluation === undefined) {
      // Thrown before the REPL function started: answered at once, nothing awaited.
      const answer = await reply.promise;
      const { value } = await this.#valueOf(answer.result);
      return { thrown: answer.exceptionDetails !== undefined, value };
    }
    // The answer is not needed; a swap answers it with "session closed", which is expected.
    reply.promise.catch(() => {});
    const detach = MAY_SUSPEND.test(expression);
    if (detach) {
      this.#session.disconnect();
      this.#session = new Session();
      this.#session.connect();
    } else {
      this.#settled = evaluation;
    }
    try {
      const wrapper = await evaluation;
      if (typeof wrapper !== "object" || wrapper === null || !(REPL_RESULT in wrapper)) {
        // Another promise than the REPL function's was taken (a different V8 or Deno).
        throw new Error("the REPL-mode evaluation's promise was not found; no result to show");
      }
      const value = (wrapper as Record<string, unknown>)[REPL_RESULT];
      if (value instanceof Promise) value.catch(() => {});
      return { thrown: false, value };
    } catch (error) {
      return { thrown: true, value: error };
    } finally {
      if (!detach) {
        this.#settled = undefined;
        // The inspector's answer bound the value to the group: without this it lives forever.
        this.#session.post("Runtime.releaseObjectGroup", { objectGroup: OBJECT_GROUP });
      }
    }
  }

  /** Runs `code` (JavaScript, or TypeScript when it does not parse as JavaScript). */
  async evaluate(code: string, signal?: AbortSignal): Promise<EngineResult> {
    if (this.#closed) throw new Error("the evaluation engine is closed");
    const lines: string[] = [];
    this.#lines = lines;
    const console = globalThis.console as unknown as Record<string, unknown>;
    const saved = CAPTURED.map((name) => console[name]);
    for (const name of CAPTURED) {
      console[name] = (...args: unknown[]): void => {
        lines.push(name === "trace" ? `Trace: ${formatArgs(args)}`.trimEnd() : formatArgs(args));
      };
    }
    try {
      let outcome = await untilAborted(this.#run(code), signal);
      if (outcome.thrown && outcome.value instanceof SyntaxError) {
        const typescript = stripTypes(code);
        if (typescript !== undefined) {
          const retried = await untilAborted(this.#run(typescript), signal);
          // Keep the JavaScript diagnosis unless TypeScript got further.
          if (!(retried.thrown && retried.value instanceof SyntaxError)) outcome = retried;
          else if (isIncompleteMessage(retried.value.message)) outcome = retried;
        }
      }
      if (outcome.thrown) {
        const incomplete = outcome.value instanceof SyntaxError &&
          isIncompleteMessage(outcome.value.message);
        lines.push(describeThrown(outcome.value));
        return { text: lines.join("\n"), error: true, value: undefined, incomplete };
      }
      const value = outcome.value;
      if (value !== undefined) lines.push(Deno.inspect(value));
      return { text: lines.join("\n"), error: false, value, incomplete: false };
    } finally {
      this.#lines = undefined;
      CAPTURED.forEach((name, i) => console[name] = saved[i]);
    }
  }

  /** Disconnects the inspector session. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#session.disconnect();
  }
}

/** TypeScript → JavaScript: erasable syntax is blanked out, the rest (enums…) transformed. */
function stripTypes(code: string): string | undefined {
  try {
    return stripTypeScriptTypes(code);
  } catch {
    try {
      return stripTypeScriptTypes(code, { mode: "transform" });
    } catch {
      return undefined;
    }
  }
}
