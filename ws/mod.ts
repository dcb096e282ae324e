/**
 * WebSocket server, client and a small HTTP service, like R's `websockets` package
 * (`create_server`, `set_callback`, `websocket_write`, `websocket_broadcast`, `websocket`,
 * `static_file_service`, `http_vars`, `http_response`), on `Deno.serve` +
 * `Deno.upgradeWebSocket` and Deno's `WebSocket`; plus a browser console for an eval session.
 *
 * Beyond R's package: text and binary messages, subprotocol negotiation, a message size limit
 * (16 MiB by default) refused with close code 1009 instead of truncated, bounded memory for slow
 * readers, heartbeats, an upgrade hook and graceful shutdown.
 *
 * Limits and policies (defaults):
 * - Messages over `maxMessageSize` (16 MiB, R's `websockets_max_buffer_size`; at most 64 MiB
 *   less one byte) close the connection with 1009 (4009 from the client, which may send only
 *   1000 and 3000-4999). Messages of 64 MiB and more never reach rsock: Deno 2.9.6 drops the
 *   connection without a close frame (no 1009; Deno's own client reports code 0).
 * - Backpressure: a `write` that would put more than `maxBufferedAmount` (4 MiB) in a peer's
 *   socket buffer waits in that peer's queue; writes leave in call order, and one timer per
 *   peer drains the queue, so writes that are not awaited cost the same per write however
 *   many wait. Awaited writes pace the writer to the reader; writes not awaited that pile up
 *   past `maxQueuedBytes` (256 MiB) for a peer that does not read close it with 1008 (4008
 *   from the client). `broadcast` never waits and closes a client over `maxBufferedAmount`
 *   (or whose waiting writes it would take past `maxQueuedBytes`) with 1008
 *   (`slowClient: "close"`) or skips it (`"drop"`, which closes no one), so a reader that
 *   stalls costs at most the bound plus one message of process memory, beyond the kernel's
 *   socket buffers, and never stalls the others.
 * - An unread events iterator holds 1024 events, then closes the sender with 1013.
 * - Heartbeat: pings every `idleTimeout` (120 s); a peer that does not answer is cut.
 * - `close()` sends 1001 to every client and waits up to 2 s for their closing handshakes.
 *
 * @example Echo server and a client
 * ```ts
 * import { createServer, websocket } from "@x/rsock/ws";
 *
 * await using server = createServer({
 *   port: 0,
 *   receive: (data, client) => client.write(data),
 * });
 * await using client = await websocket(server.url);
 * await client.write("hello");
 * for await (const message of client) {
 *   console.log(message.data); // "hello"
 *   break;
 * }
 * ```
 *
 * @module
 */

export { ConnectionError, MessageTooLargeError } from "../_internal/errors.ts";
export {
  CloseCode,
  DEFAULT_MAX_BUFFERED,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_MAX_QUEUED_BYTES,
  MAX_MESSAGE_SIZE_LIMIT,
  type WsCloseInfo,
  type WsData,
  type WsHeader,
} from "./_peer.ts";
export {
  createServer,
  DEFAULT_WS_PORT,
  type SlowClientPolicy,
  type UpgradeHook,
  type WsCloseOptions,
  WsServer,
  type WsServerCallbacks,
  type WsServerClient,
  type WsServerEvent,
  type WsServerOptions,
} from "./_server.ts";
export {
  websocket,
  WsClient,
  type WsClientCallbacks,
  type WsClientOptions,
  type WsMessage,
} from "./_client.ts";
export {
  contentTypeFor,
  type DirectoryServiceOptions,
  type HttpHandler,
  httpResponse,
  type HttpVars,
  httpVars,
  staticDirectoryService,
  staticFileService,
  staticTextService,
} from "./_http.ts";
export {
  type ConsoleOptions,
  type ConsoleServer,
  type ConsoleSession,
  serveConsole,
} from "./_console.ts";
export { CONSOLE_PROTOCOL, consolePage } from "./_console_page.ts";
