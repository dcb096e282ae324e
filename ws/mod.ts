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
