/**
 * The SP WebSocket mapping (`ws://` and `wss://`): no SP header and no length prefix; one binary
 * WebSocket message is one SP message. The dialer offers its peer's protocol as the subprotocol
 * (`rep.sp.nanomsg.org` from a REQ), the listener accepts only its own. Built on `Deno.serve` +
 * `Deno.upgradeWebSocket` and the `WebSocket` client (with a `Deno.HttpClient` for `wss://`).
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import { type HttpListener, serveHttp } from "../http_serve.ts";
import { hostCheck, originCheck } from "../web_origin.ts";
import { upgradeOrRefuse } from "../ws_upgrade.ts";
import {
  ConnectionError,
  describeNetworkError,
  MessageTooLargeError,
  ProtocolError,
} from "../errors.ts";
import { newPipeId, type Pipe, type PipeEvents } from "./pipe.ts";
import type { SpListener, TlsOptions } from "./transport.ts";
import { type Endpoint, formatUrl, SP_PROTOCOLS, type SpProtocol } from "./wire.ts";

/** A `ws://` or `wss://` endpoint. */
export type WebSocketEndpoint = Extract<Endpoint, { transport: "ws" | "wss" }>;

// The WebSocket API has no write completion; past this backlog a pipe counts as full.
const BUSY_BYTES = 4 * 1024 * 1024;
// The drain waiter's pauses: 1 ms while bytes move, doubling to 16 ms while the peer reads
// nothing, so a stalled peer costs about 60 wake-ups a second.
const FIRST_PAUSE_MS = 1;
const LONGEST_PAUSE_MS = 16;

/** The subprotocol that names an SP protocol on a WebSocket: `rep.sp.nanomsg.org`. */
export function subprotocol(protocol: SpProtocol): string {
  return `${SP_PROTOCOLS[protocol].wsName}.sp.nanomsg.org`;
}

function peerSubprotocol(protocol: SpProtocol): string {
  const peer = SP_PROTOCOLS[protocol].peer;
  const entry = Object.values(SP_PROTOCOLS).find((info) => info.id === peer)!;
  return `${entry.wsName}.sp.nanomsg.org`;
}

/** One WebSocket connection to a peer. */
class WebSocketPipe implements Pipe {
  readonly id: number = newPipeId();
  readonly remote: string;
  readonly #socket: WebSocket;
  readonly #onDrained: () => void;
  #closed = false;
  /**
   * The one drain waiter while the socket has a backlog: Deno's WebSocket has no drain event,
   * so a timer polls `bufferedAmount`, one per pipe however many messages wait above it.
   */
  #waiter: ReturnType<typeof setTimeout> | undefined;
  #pause = FIRST_PAUSE_MS;
  #lastBacklog = 0;
  /** Reported full (past BUSY_BYTES) and not yet told that room came back. */
  #full = false;

  constructor(socket: WebSocket, remote: string, onDrained: () => void) {
    this.#socket = socket;
    this.remote = remote;
    this.#onDrained = onDrained;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.readyState >= WebSocket.CLOSING;
  }

  get queuedBytes(): number {
    return this.#socket.bufferedAmount;
  }

  flushed(): Promise<void> {
    // The WebSocket sends its close frame after what it has buffered.
    return Promise.resolve();
  }

  dropOldest(): boolean {
    return false; // what the WebSocket buffered is out of reach
  }

  get queued(): number {
    const backlog = this.#socket.bufferedAmount;
    if (backlog === 0) return 0;
    // No per-message count exists; report "full" past the byte bound and wait for the drain.
    if (this.#waiter === undefined) {
      this.#pause = FIRST_PAUSE_MS;
      this.#lastBacklog = backlog;
      this.#waiter = setTimeout(this.#poll, this.#pause);
    }
    if (backlog < BUSY_BYTES) return 1;
    this.#full = true;
    return Number.MAX_SAFE_INTEGER;
  }

  // Senders waiting on a full pipe are told as soon as it has room again, not only once it is
  // empty: the socket keeps bytes to send while they refill it. Flushes are told when empty.
  #poll = (): void => {
    this.#waiter = undefined;
    if (this.closed) return;
    const backlog = this.#socket.bufferedAmount;
    if (backlog === 0) {
      this.#full = false;
      this.#onDrained();
      return;
    }
    if (this.#full && backlog < BUSY_BYTES) {
      this.#full = false;
      this.#onDrained();
    }
    // The drained handler may have sent more and started a waiter through `queued`.
    if (this.#waiter !== undefined || this.closed) return;
    const moved = backlog < this.#lastBacklog;
    this.#pause = moved ? FIRST_PAUSE_MS : Math.min(this.#pause * 2, LONGEST_PAUSE_MS);
    this.#lastBacklog = this.#socket.bufferedAmount;
    this.#waiter = setTimeout(this.#poll, this.#pause);
  };

  #stopWaiting(): void {
    if (this.#waiter === undefined) return;
    clearTimeout(this.#waiter);
    this.#waiter = undefined;
  }

  takeUnsent(): Uint8Array[][] {
    return []; // handed straight to the WebSocket: nothing waits here
  }

  send(parts: readonly Uint8Array[], written?: (error?: Error) => void): void {
    if (this.closed) {
      written?.(new ConnectionError(`pipe ${this.id} to ${this.remote} is closed`));
      return;
    }
    // WebSocket.send copies the bytes: the parts are free again at once.
    this.#socket.send(parts.length === 1 ? parts[0]! : concatBytes(parts));
    written?.();
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    this.#closed = true;
    // No drain waiter outlives the pipe (a closed pipe's timer would hold the process).
    this.#stopWaiting();
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
 * when the socket has no room a message is dropped instead of queued.
 */
export function runWebSocketPipe(
  socket: WebSocket,
  remote: string,
  maxMessageBytes: number,
  events: PipeEvents,
): Promise<void> {
  socket.binaryType = "arraybuffer";
  const pipe: WebSocketPipe = new WebSocketPipe(socket, remote, () => events.drained(pipe));
  const { promise, resolve } = Promise.withResolvers<void>();
  let reason: Error | undefined;
  let opened = false;
  const open = () => {
    const refused = events.opened(pipe);
    if (refused !== undefined) {
      reason = refused;
      pipe.close(1008, "refused");
      return;
    }
    opened = true;
  };
  if (socket.readyState === WebSocket.OPEN) open();
  else socket.addEventListener("open", open, { once: true });
  socket.addEventListener("message", (event: MessageEvent) => {
    if (pipe.closed || !opened) return;
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
    if (opened || reason !== undefined) events.closed(pipe, reason);
    resolve();
  }, { once: true });
  return promise;
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
 * Serves `endpoint` with `Deno.serve` (HTTPS for `wss://`): an upgrade on its path offering
 * `<protocol>.sp.nanomsg.org` becomes a pipe (given to `accept`); another path is 404, a
 * missing or other subprotocol 400, as NNG answers. A browser page (an `Origin` header) from
 * an origin not allowed, or a `Host` name not allowed (DNS rebinding), is refused with 403
 * before anything else: a request may be code to `rsock serve`, and any page can open a
 * WebSocket to 127.0.0.1. NNG's own clients send no `Origin`.
 */
export function listenWebSocket(
  endpoint: WebSocketEndpoint,
  protocol: SpProtocol,
  tlsOptions: TlsOptions,
  accept: (socket: WebSocket, remote: string) => void,
  options: WebSocketListenOptions = {},
): SpListener {
  const name = subprotocol(protocol);
  const sockets = new Set<WebSocket>();
  const where = formatUrl(endpoint);
  let tlsPart: { cert: string; key: string } | undefined;
  if (endpoint.transport === "wss") {
    if (tlsOptions.cert === undefined || tlsOptions.key === undefined) {
      throw new TypeError(
        `listening on "${where}" needs a certificate and its key (tls: { cert, key } in PEM)`,
      );
    }
    if (tlsOptions.ca !== undefined) {
      throw new TypeError(
        `"${where}": Deno.serve cannot require client certificates; use tls+tcp:// for that`,
      );
    }
    tlsPart = { cert: tlsOptions.cert, key: tlsOptions.key };
  }
  const hostOk = hostCheck(endpoint.hostname, options.allowedHosts ?? []);
  const originOk = originCheck(options.allowedOrigins ?? []);
  const handler = (request: Request, info: Deno.ServeHandlerInfo<Deno.Addr>): Response => {
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
    // A malformed handshake gets a 400, not a 500 and a stack trace per request.
    const upgraded = upgradeOrRefuse(request, { protocol: name });
    if (upgraded instanceof Response) return upgraded;
    const { socket, response } = upgraded;
    sockets.add(socket);
    socket.addEventListener("close", () => sockets.delete(socket), { once: true });
    accept(socket, remote);
    return response;
  };
  let server: HttpListener;
  try {
    // ws:// runs on the shared HTTP server that restarts when its accept loop dies; wss:// on
    // Deno.serve with the certificate (that helper has no TLS).
    server = tlsPart === undefined
      ? serveHttp({ hostname: endpoint.hostname, port: endpoint.port }, handler, {
        name: where,
        ...(options.onError === undefined ? {} : { onError: options.onError }),
      })
      : Deno.serve({
        hostname: endpoint.hostname,
        port: endpoint.port,
        onListen: () => {},
        ...tlsPart,
      }, handler);
  } catch (error) {
    throw new ConnectionError(`Cannot listen on "${where}": ${describeNetworkError(error)}`, {
      cause: error,
    });
  }
  return {
    url: formatUrl({ ...endpoint, port: (server.addr as Deno.NetAddr).port }),
    async close() {
      for (const socket of sockets) socket.close(1001, "going away");
      await server.shutdown();
    },
  };
}

/** Opens a WebSocket to `endpoint`, offering the peer's subprotocol, and waits until it is open. */
export function dialWebSocket(
  endpoint: WebSocketEndpoint,
  protocol: SpProtocol,
  tlsOptions: TlsOptions,
): Promise<WebSocket> {
  const url = formatUrl(endpoint);
  let client: Deno.HttpClient | undefined;
  if (endpoint.transport === "wss") {
    if (tlsOptions.insecure === true) {
      return Promise.reject(
        new TypeError(`"${url}": insecure dialing is supported on tls+tcp:// only`),
      );
    }
    const ca = tlsOptions.ca === undefined
      ? {}
      : { caCerts: typeof tlsOptions.ca === "string" ? [tlsOptions.ca] : [...tlsOptions.ca] };
    client = tlsOptions.cert !== undefined && tlsOptions.key !== undefined
      ? Deno.createHttpClient({ ...ca, cert: tlsOptions.cert, key: tlsOptions.key })
      : Deno.createHttpClient(ca);
  }
  const socket = new WebSocket(url, {
    protocols: [peerSubprotocol(protocol)],
    ...(client === undefined ? {} : { client }),
  });
  socket.binaryType = "arraybuffer";
  if (client !== undefined) {
    const owned = client;
    socket.addEventListener("close", () => owned.close(), { once: true });
  }
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
