/**
 * Plain message sockets between processes, like R's `make.socket`, `read.socket`,
 * `write.socket` and `close.socket`, over TCP or a Unix socket: a server that takes many
 * clients and yields what they send, and a client that writes and reads.
 *
 * Framing is `"chunk"` (each read as it arrives, like `read.socket`, for raw peers such as R)
 * or `"line"` (newline-delimited, reliable message boundaries). Progress reports use one line
 * `#progress DONE/TOTAL LABEL` ({@linkcode sendProgress}); `rsock listen` draws them as a bar.
 *
 * @example Receive log lines from any number of processes
 * ```ts
 * import { connect, listen } from "@x/rsock/socket";
 *
 * await using server = listen({ port: 0, framing: "line" });
 * await using client = await connect({ port: server.port, hostname: "127.0.0.1" });
 * await client.write("step 1 done\n");
 * for await (const message of server) {
 *   console.log(`client ${message.client.id}: ${message.text}`);
 *   break;
 * }
 * ```
 *
 * @module
 */

export { ConnectionError, MessageTooLargeError } from "../_internal/errors.ts";
export type { Framing } from "./_framing.ts";
export { formatProgress, parseProgress, type Progress, renderProgressBar } from "./_progress.ts";
export { DEFAULT_PORT } from "./_net.ts";
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  listen,
  type ListenOptions,
  type SocketClient,
  type SocketEvent,
  type SocketMessage,
  SocketServer,
} from "./_server.ts";
export {
  connect,
  type ConnectOptions,
  type ReadOptions,
  sendProgress,
  SocketConnection,
} from "./_connection.ts";
