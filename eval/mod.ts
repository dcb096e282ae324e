/**
 * A shared-session evaluation server and client on R svSocket's wire: other processes (a
 * second console, an editor, a monitor, R itself) connect over TCP and evaluate JavaScript or
 * TypeScript in the running program's global scope, one transaction per line.
 *
 * The session ({@linkcode createSession}) can also be used without the server: the websocket
 * console and NNG requests evaluate through the same one.
 *
 * @example
 * ```ts
 * import { createSession } from "@x/rsock/eval";
 *
 * await using session = await createSession();
 * await session.evaluate("let counter = 0");
 * const { text } = await session.evaluate("++counter"); // "1"
 * ```
 *
 * @module
 */

export {
  createSession,
  type EvalSession,
  type EvaluateOptions,
  type EvaluationResult,
  type SessionOptions,
} from "./_session.ts";
export {
  type ClientSettings,
  type EvalServer,
  type EvalServerOptions,
  type ProcessFunction,
  startEvalServer,
  type Transaction,
} from "./_server.ts";
export { defaultSettings, type ParsedLine, type StartMarker } from "./_protocol.ts";
export {
  connectEvalServer,
  type EvalClientOptions,
  EvalConnection,
  evalServer,
  type RDecoder,
  RemoteEvalError,
  toRCode,
} from "./_client.ts";
