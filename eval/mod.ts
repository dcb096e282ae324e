/**
 * A shared-session evaluation server and client on R svSocket's wire: other processes (a
 * second console, an editor, a monitor, R itself) connect over TCP and evaluate JavaScript or
 * TypeScript in the running program's global scope, one transaction per line.
 *
 * - {@linkcode startEvalServer}: the server (svSocket's `startSocketServer()`), loopback by
 *   default, token + TLS for anything else, optional worker mode so a runaway evaluation can be
 *   interrupted. Every per-client buffer has a bound in bytes: 1 MiB a line (and a multi-line
 *   block), 4 MiB of lines waiting (then reading pauses), 8 MiB of replies unread (then the
 *   client is closed with `Error: too slow: …`), 1,000 client names kept.
 * - {@linkcode connectEvalServer}, `send()` and {@linkcode evalServer}: the client, for rsock's
 *   server (JavaScript) and R's svSocket (R code, values through R serialization).
 * - {@linkcode createSession}: the shared session without the server, for the websocket console
 *   and NNG requests: every caller evaluates one at a time in arrival order.
 *
 * @example Serve the program's global scope, and evaluate in it from a client
 * ```ts
 * import { connectEvalServer, evalServer, startEvalServer } from "@x/rsock/eval";
 *
 * await using server = await startEvalServer({ port: 0 });
 * await using conn = await connectEvalServer({ port: server.port });
 * await conn.send("let counter = 0");
 * await conn.send("++counter"); // "1"
 * await evalServer(conn, "counter + 1"); // 2, as a JS value
 * ```
 *
 * @example The session alone
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
  type RunningEvaluation,
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
  type EvalReply,
  evalServer,
  type InterruptResult,
  type RDecoder,
  RemoteEvalError,
} from "./_client.ts";
export { toRCode } from "./_dialect.ts";
