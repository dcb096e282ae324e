/**
 * The worker of worker mode: the same engine, driven by messages, so the host can terminate it
 * when an evaluation runs away.
 *
 * @module
 */

import { describeThrown, InspectorEngine } from "./_engine.ts";

/** host → worker */
export type ToWorker =
  | { readonly type: "evaluate"; readonly id: number; readonly code: string }
  | { readonly type: "expose"; readonly names: readonly string[] };

/** worker → host */
export type FromWorker =
  | {
    readonly type: "result";
    readonly id: number;
    readonly text: string;
    readonly error: boolean;
    readonly incomplete: boolean;
    readonly value: unknown;
  }
  | { readonly type: "call"; readonly name: string; readonly args: unknown[] };

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
}

const scope = globalThis as unknown as WorkerScope;
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

scope.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "expose") {
    for (const name of message.names) {
      // Host functions cannot answer synchronously across threads: the call is forwarded
      // and returns undefined.
      (globalThis as Record<string, unknown>)[name] = (...args: unknown[]) => {
        scope.postMessage({ type: "call", name, args });
      };
    }
    return;
  }
  const result = await engine.evaluate(message.code);
  const reply = { type: "result", id: message.id, ...result } as const;
  try {
    scope.postMessage(reply);
  } catch {
    // Functions, sockets, class instances with private state…: not cloneable, text only.
    scope.postMessage({ ...reply, value: undefined });
  }
};
