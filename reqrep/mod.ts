/**
 * Request/reply on the NNG scalability protocols (REQ0/REP0), wire-compatible with NNG,
 * `nngcat`, nanonext, pynng and mangos, with nanonext's API shape: `socket()`, `context()`,
 * `send()`/`recv()` with modes, `request()` and `reply()`. Transports: `tcp://host:port`,
 * `ipc:///path` (a Unix socket), `ws://host:port/path` (SP over WebSocket), and over TLS
 * `tls+tcp://host:port` and `wss://host:port/path` (the `tls` option: certificates, CA,
 * `insecure`), listened on or dialed by either side; dialers reconnect. The sockets run on the
 * same SP core as the rest of the family (`@x/rsock/nng`).
 *
 * Values travel as R serialization (`"serial"`, the default: an R process reads them with
 * nanonext) or as raw bytes (`"raw"`); the R codec is re-exported here (`serialize`,
 * `unserialize`, `simplify`, …).
 *
 * @example A Deno REP server that an R nanonext client can call
 * ```ts
 * import { reply, socket } from "@x/rsock/reqrep";
 *
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:5555" });
 * const ctx = rep.context();
 * await reply(ctx, (x) => (x as number) + 1); // R: request(context(s), 41) → 42
 * ```
 *
 * @example A request with raw modes (what `nngcat --rep --data pong` answers)
 * ```ts
 * import { request, socket } from "@x/rsock/reqrep";
 *
 * await using req = await socket("req", { dial: "tcp://127.0.0.1:5555" });
 * const answer = await request(req.context(), "ping", { sendMode: "raw", recvMode: "string", timeout: 1000 });
 * ```
 *
 * @module
 */

export * from "../serial/mod.ts";
export {
  ConnectionError,
  MessageTooLargeError,
  ProtocolError,
  TimeoutError,
} from "../_internal/errors.ts";
export {
  checkRecvMode,
  checkSendMode,
  type RecvMode,
  type SendMode,
  type SerialConfig,
  type SerialWriteOptions,
} from "../_internal/modes.ts";
export { type Endpoint, formatUrl, parseUrl, type Protocol } from "./_wire.ts";
export type { CoreOptions, TlsOptions } from "../_internal/sp/core.ts";
export { type RecvOptions, type SendOptions, SpSocket } from "../_internal/sp/socket.ts";
export {
  Context,
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_SP_MESSAGE_BYTES,
  DEFAULT_RESEND_INTERVAL,
  ScalabilitySocket,
  socket,
  type SocketOptions,
  type Target,
  type WaitOptions,
} from "./_protocol.ts";
export { recv, request, type RequestOptions, send } from "./_request.ts";
export {
  type Executor,
  isNulByte,
  reply,
  type ReplyOptions,
  serve,
  type ServeOptions,
} from "./_reply.ts";
