/**
 * The SP WebSocket mapping (`ws://host:port/path`): no SP header and no length prefix; one
 * binary WebSocket message is one SP message. The dialer offers its peer's protocol as the
 * subprotocol (`rep.sp.nanomsg.org` from a REQ), the listener accepts only its own. Built on
 * `Deno.serve` + `Deno.upgradeWebSocket` and the `WebSocket` client.
 *
 * @module
 */

import {
  ConnectionError,
  describeNetworkError,
  MessageTooLargeError,
  ProtocolError,
} from "../_internal/errors.ts";
import { concatBytes } from "../_internal/bytes.ts";
import { type HttpListener, serveHttp } from "../_internal/http_serve.ts";
import { hostCheck, originCheck } from "../_internal/web_origin.ts";
import { upgradeOrRefuse } from "../_internal/ws_upgrade.ts";
import { newPipeId, type PipeEvents, type SpPipe } from "./_pipe.ts";
import { type Endpoint, formatUrl, PEER, type Protocol } from "./_wire.ts";

/** A `ws://` endpoint. */
export type WebSocketEndpoint = Extract<Endpoint, { transport: "ws" }>;

/** The subprotocol that names an SP protocol on a WebSocket: `rep.sp.nanomsg.org`. */
export function subprotocol(protocol: Protocol): string {
  return `${protocol}.sp.nanomsg.org`;
}

/** One WebSocket connection to a peer. */
class WebSocketPipe implements SpPipe {
  readonly id: number = newPipeId();
  readonly remote: string;
  readonly #socket: WebSocket;
  #closed = false;

  constructor(socket: WebSocket, remote: string) {
    this.#socket = socket;
    this.remote = remote;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.readyState >= WebSocket.CLOSING;
  }

  get queuedBytes(): number {
    return this.#socket.bufferedAmount;
  }

  send(parts: readonly Uint8Array[]): Promise<void> {
    if (this.closed) {
      return Promise.reject(new ConnectionError(`pipe ${this.id} to ${this.remote} is closed`));
    }
    this.#socket.send(concatBytes(parts));
    return Promise.resolve();
  }

  flushed(): Promise<void> {
    // The WebSocket sends its close frame after what it has buffered.
    return Promise.resolve();
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close(code, reason);
    } catch {
      // already closed
    }
  }
}

/**
 * Runs an open WebSocket as a pipe until it closes. A text message (close 1003) or one over
 * `maxMessageBytes` (close 1009) drops the pipe. The WebSocket API cannot pause reading, so
 * when the socket has no room a message is dropped (a REQ resends it) instead of queued.
 */
export function runWebSocketPipe(
  socket: WebSocket,
  remote: string,
  maxMessageBytes: number,
  events: PipeEvents,
): Promise<void> {
  socket.binaryType = "arraybuffer";
  const pipe = new WebSocketPipe(socket, remote);
  const { promise, resolve } = Promise.withResolvers<void>();
  let reason: Error | undefined;
  let opened = false;
  const open = () => {
    opened = true;
    events.opened(pipe);
  };
  if (socket.readyState === WebSocket.OPEN) open();
  else socket.addEventListener("open", open, { once: true });
  socket.addEventListener("message", (event: MessageEvent) => {
    if (pipe.closed) return;
    if (typeof event.data === "string") {
      reason = new ProtocolError("peer sent a text message; SP over WebSocket is binary only");
      pipe.close(1003, "binary messages only");
      return;
    }
    const bytes = new Uint8Array(event.data as ArrayBuffer);
    if (bytes.length > maxMessageBytes) {
      reason = new MessageTooLargeError(
        `peer sent a message of ${bytes.length} bytes; the limit is ${maxMessageBytes} bytes ` +
          "(raise maxMessageBytes to accept it)",
        maxMessageBytes,
      );
      pipe.close(1009, "message too big");
      return;
    }
    if (events.room(pipe) !== undefined) return;
    events.message(pipe, bytes);
  });
  socket.addEventListener("close", (event: CloseEvent) => {
    if (reason === undefined && !pipe.closed && event.code !== 1000 && event.code !== 1005) {
      reason = new ConnectionError(`WebSocket closed with code ${event.code} ${event.reason}`);
    }
    pipe.close();
    if (opened) events.closed(pipe, reason);
    resolve();
  }, { once: true });
  return promise;
}

/** A listening `ws://` endpoint. */
export interface WebSocketListener {
  /** The port bound (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops listening and waits for the HTTP server to finish. */
  close(): Promise<void>;
}

/** Who may reach a listening `ws://` endpoint, and where its accept errors go. */
export interface WebSocketListenOptions {
  /** Browser origins allowed besides none (no `Origin` header); `"*"` for any. */
  readonly allowedOrigins?: readonly string[];
  /** Host names allowed in `Host` besides `localhost`, IP literals and the bound name. */
  readonly allowedHosts?: readonly string[];
  /** Told when the HTTP listener failed to accept (and was restarted). */
  readonly onError?: (error: Error) => void;
}

/**
 * Serves `endpoint` with `Deno.serve`: an upgrade on its path offering `<protocol>.sp.nanomsg.org`
 * becomes a pipe (given to `accept`); another path is 404, a missing or other subprotocol 400,
 * as NNG answers. A browser page (an `Origin` header) from an origin not allowed, or a `Host`
 * name not allowed (DNS rebinding), is refused with 403 before anything else: a request is code
 * to `rsock serve`, and any page can open a WebSocket to 127.0.0.1. NNG's own clients send no
 * `Origin`.
 */
export function listenWebSocket(
  endpoint: WebSocketEndpoint,
  protocol: Protocol,
  accept: (socket: WebSocket, remote: string) => void,
  options: WebSocketListenOptions = {},
): WebSocketListener {
  const name = subprotocol(protocol);
  const sockets = new Set<WebSocket>();
  const hostOk = hostCheck(endpoint.hostname, options.allowedHosts ?? []);
  const originOk = originCheck(options.allowedOrigins ?? []);
  let server: HttpListener;
  try {
    server = serveHttp({ hostname: endpoint.hostname, port: endpoint.port }, (request, info) => {
      if (!hostOk(request)) {
        return new Response("Forbidden: unknown host name (see allowedHosts)\n", { status: 403 });
      }
      if (!originOk(request)) {
        return new Response(
          `Forbidden: pages from ${request.headers.get("origin")} may not connect ` +
            "(see allowedOrigins)\n",
          { status: 403 },
        );
      }
      if (new URL(request.url).pathname !== endpoint.path) {
        return new Response(`no SP endpoint here; this one is at ${endpoint.path}\n`, {
          status: 404,
        });
      }
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("expected a WebSocket upgrade\n", { status: 400 });
      }
      const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
        .map((item) => item.trim());
      if (!offered.includes(name)) {
        return new Response(`expected Sec-WebSocket-Protocol: ${name}\n`, { status: 400 });
      }
      const addr = info.remoteAddr as Deno.NetAddr;
      const remote = `${addr.hostname}:${addr.port}`;
      const upgraded = upgradeOrRefuse(request, { protocol: name });
      if (upgraded instanceof Response) return upgraded;
      const { socket, response } = upgraded;
      sockets.add(socket);
      socket.addEventListener("close", () => sockets.delete(socket), { once: true });
      accept(socket, remote);
      return response;
    }, {
      name: formatUrl(endpoint),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  } catch (error) {
    throw new ConnectionError(
      `Cannot listen on "${formatUrl(endpoint)}": ${describeNetworkError(error)}`,
      { cause: error },
    );
  }
  return {
    port: (server.addr as Deno.NetAddr).port,
    async close() {
      for (const socket of sockets) socket.close(1001, "going away");
      await server.shutdown();
    },
  };
}

/** Opens a WebSocket to `endpoint`, offering the peer's subprotocol, and waits until it is open. */
export function dialWebSocket(endpoint: WebSocketEndpoint, protocol: Protocol): Promise<WebSocket> {
  const url = formatUrl(endpoint);
  const socket = new WebSocket(url, subprotocol(PEER[protocol]));
  socket.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    const opened = () => {
      socket.removeEventListener("error", failed);
      resolve(socket);
    };
    const failed = (event: Event) => {
      socket.removeEventListener("open", opened);
      const message = event instanceof ErrorEvent ? event.message : "the handshake failed";
      reject(new ConnectionError(`Cannot connect to "${url}": ${message}`));
    };
    socket.addEventListener("open", opened, { once: true });
    socket.addEventListener("error", failed, { once: true });
  });
}
