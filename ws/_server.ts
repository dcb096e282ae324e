/**
 * The WebSocket server: R `websockets`' `create_server` on `Deno.serve` +
 * `Deno.upgradeWebSocket`.
 *
 * @module
 */

import { AsyncQueue } from "../_internal/async_queue.ts";
import { ConnectionError, describeNetworkError } from "../_internal/errors.ts";
import { type HttpListener, serveHttp } from "../_internal/http_serve.ts";
import { upgradeOrRefuse } from "../_internal/ws_upgrade.ts";
import {
  checkClose,
  checkMaxBuffered,
  checkMaxMessageSize,
  checkMaxQueued,
  CloseCode,
  decodeMessage,
  WriteQueue,
  type WsCloseInfo,
  type WsData,
  type WsHeader,
} from "./_peer.ts";

/**
 * The default port, as R's `create_server(port = 7681)`.
 *
 * @example
 * ```ts
 * import { createServer, DEFAULT_WS_PORT } from "@x/rsock/ws";
 * await using server = createServer({ port: DEFAULT_WS_PORT });
 * ```
 */
export const DEFAULT_WS_PORT = 7681;

/** One connected client, as the server sees it (R's `WS` environment). */
export interface WsServerClient {
  /** Server-unique number, from 1, in order of connection. */
  readonly id: number;
  /** The upgrade request: its headers are R's `HEADER` of the handshake. */
  readonly request: Request;
  /** `host:port` of the peer, or `unix` for a Unix socket peer. */
  readonly remoteAddress: string;
  /** The negotiated subprotocol, or `""` when none was chosen. */
  readonly protocol: string;
  /**
   * Bytes written to this client and not yet handed to the network: those in the socket's
   * buffer and those of writes waiting for room.
   */
  readonly bufferedAmount: number;
  /** True until the connection starts closing. */
  readonly open: boolean;
  /**
   * Sends one message (string as text, bytes as binary), like R's `websocket_write`: at once
   * while the socket's buffer has room within the server's `maxBufferedAmount`, else after the
   * writes already waiting, in call order. See {@linkcode WsServer.write}.
   */
  write(data: WsData, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Starts the closing handshake with `code` (default 1000) and `reason`. A code that cannot
   * be sent (1004-1006, 1015, outside 1000-4999) or a reason over 123 UTF-8 bytes is a
   * RangeError. Only the first call counts.
   */
  close(code?: number, reason?: string): void;
}

/**
 * The callbacks of a server, R's `set_callback` names. A callback may be async: a throw or a
 * rejected promise closes that client with 1011 and goes to the `error` option.
 */
export interface WsServerCallbacks {
  /** A client connected (R's `established(WS)`). */
  established?: (client: WsServerClient) => unknown;
  /** A client's connection ended (R's `closed(WS)`). */
  closed?: (client: WsServerClient, info: WsCloseInfo) => unknown;
  /** A message arrived (R's `receive(DATA, WS, HEADER)`). */
  receive?: (data: WsData, client: WsServerClient, header: WsHeader) => unknown;
  /** A plain HTTP request (R's `static(socket, header)`); without it such requests get 404. */
  static?: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
}

/** Everything that happens on a server, for scripts that pump events (R's `service()`). */
export type WsServerEvent =
  | { readonly type: "established"; readonly client: WsServerClient }
  | {
    readonly type: "receive";
    readonly client: WsServerClient;
    readonly data: WsData;
    readonly header: WsHeader;
  }
  | { readonly type: "closed"; readonly client: WsServerClient; readonly info: WsCloseInfo };

/**
 * What to do when a broadcast finds a client with more than `maxBufferedAmount` bytes unsent,
 * or whose waiting writes the message would take past `maxQueuedBytes`: `"close"` it with code
 * 1008 (the default: every remaining client still gets every message, in order), or `"drop"`
 * the message for that client only (a broadcast then closes no one).
 */
export type SlowClientPolicy = "close" | "drop";

/** Decides an upgrade before it happens: `false` refuses with 403, a `Response` is sent as is. */
export type UpgradeHook = (
  request: Request,
  info: Deno.ServeHandlerInfo,
) => boolean | Response | void | Promise<boolean | Response | void>;

/** Options for {@linkcode createServer}. */
export interface WsServerOptions extends WsServerCallbacks {
  /** TCP port; 0 picks a free one. @default {7681} */
  port?: number;
  /** Address to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** Serve on this Unix socket path instead of TCP. */
  path?: string;
  /** Plain HTTP handler, R's `webpage` argument; same as the `static` callback. */
  webpage?: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  /**
   * Subprotocols the server speaks, in its order of preference, or a function choosing one of
   * the client's offers. The first offer the server speaks wins; none chosen means none sent.
   */
  protocols?: readonly string[] | ((offered: string[], request: Request) => string | undefined);
  /**
   * Largest message in bytes; a larger one closes its connection with 1009 (R truncates
   * instead). At most 64 MiB less one byte: Deno fails messages of 64 MiB and more itself,
   * dropping the connection without a close frame. @default {16777216}
   */
  maxMessageSize?: number;
  /**
   * Bytes in a client's socket buffer past which a write waits in that client's queue and
   * `broadcast` applies `slowClient`. @default {4194304}
   */
  maxBufferedAmount?: number;
  /**
   * Bytes of writes waiting for room per client (writes not awaited pile up here) past which
   * that client counts as not reading: it is closed with 1008 and its waiting writes reject
   * with ConnectionError. Awaiting each write keeps at most one waiting. @default {268435456}
   */
  maxQueuedBytes?: number;
  /**
   * What `broadcast` does to a client above `maxBufferedAmount`, or one the message would take
   * past `maxQueuedBytes`. @default {"close"}
   */
  slowClient?: SlowClientPolicy;
  /**
   * Seconds between heartbeat pings; a client that does not answer in time is disconnected
   * (Deno's `idleTimeout`). 0 disables. @default {120}
   */
  idleTimeout?: number;
  /** Accepts or refuses an upgrade before it happens (origin, token). */
  upgrade?: UpgradeHook;
  /** Events an unread {@linkcode WsServer.events} iterator may hold. @default {1024} */
  maxQueuedEvents?: number;
  /**
   * Called when a callback throws or its promise rejects; that client is closed with 1011
   * first. Without it the error is reported as uncaught (`reportError`), so bugs stay visible.
   */
  error?: (error: unknown, client: WsServerClient) => void;
  /**
   * Told when the listener could not accept connections. Deno's HTTP server stops for good
   * when its accept fails (out of file descriptors); this server then starts listening again
   * on the same address, after pauses from 10 ms up to 1 s, so clients are refused meanwhile
   * instead of queued. Each kind of error is told once, not per occurrence.
   *
   * @default {undefined} (nothing is reported)
   */
  onAcceptError?: (error: Error) => void;
  /** Closes the server (gracefully) when aborted. */
  signal?: AbortSignal;
}

/** Options for {@linkcode WsServer.close}. */
export interface WsCloseOptions {
  /** Close code sent to every client. @default {1001} */
  code?: number;
  /** Close reason sent to every client. @default {"server shutting down"} */
  reason?: string;
  /** Milliseconds to wait for clients to finish the closing handshake. @default {2000} */
  timeout?: number;
}

class Client implements WsServerClient {
  readonly id: number;
  readonly request: Request;
  readonly remoteAddress: string;
  readonly socket: WebSocket;
  readonly queue: WriteQueue;
  // Deno's server-side WebSocket leaves `protocol` empty, so keep what was negotiated.
  readonly protocol: string;
  #closeRequested = false;
  constructor(
    id: number,
    request: Request,
    remoteAddress: string,
    socket: WebSocket,
    protocol: string,
    bounds: { bound: number; limit: number },
  ) {
    this.id = id;
    this.protocol = protocol;
    this.request = request;
    this.remoteAddress = remoteAddress;
    this.socket = socket;
    this.queue = new WriteQueue(socket, {
      ...bounds,
      what: `client ${id}`,
      overflow: (reason) => this.close(CloseCode.policyViolation, reason),
    });
  }
  get bufferedAmount(): number {
    return this.queue.unsent;
  }
  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }
  write(data: WsData, options?: { signal?: AbortSignal }): Promise<void> {
    // Its own queue: the server's lookup only guards against another server's clients.
    return this.queue.write(data, options?.signal);
  }
  close(code: number = CloseCode.normal, reason = ""): void {
    // Only the first close counts: a second close() on Deno's server-side socket while the
    // first is in flight fails the connection (code 0) instead of finishing the handshake.
    checkClose(code, reason, "server");
    if (this.#closeRequested) return;
    this.#closeRequested = true;
    try {
      this.socket.close(code, reason);
    } catch {
      // The socket already closed.
    }
  }
}

function formatAddress(addr: Deno.Addr): string {
  if (addr.transport === "tcp" || addr.transport === "udp") {
    return addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }
  return "unix";
}

function offeredProtocols(request: Request): string[] {
  const header = request.headers.get("sec-websocket-protocol");
  if (header === null) return [];
  return header.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * A running WebSocket server (R's server environment from `create_server`). Create it with
 * {@linkcode createServer}.
 *
 * @example Pump events yourself, like R's `service()`
 * ```ts
 * import { createServer } from "@x/rsock/ws";
 *
 * await using server = createServer({ port: 0 });
 * for await (const event of server) {
 *   if (event.type === "receive") server.broadcast(event.data);
 * }
 * ```
 */
export class WsServer implements AsyncDisposable, AsyncIterable<WsServerEvent> {
  /** The TCP port (0 for a Unix socket). */
  readonly port: number;
  /** The bound address, or the Unix socket path. */
  readonly hostname: string;
  /** The Unix socket path, or undefined for TCP. */
  readonly path: string | undefined;
  /** Resolves once the server has fully stopped. */
  readonly finished: Promise<void>;
  readonly #callbacks: WsServerCallbacks;
  readonly #http: HttpListener;
  readonly #clients = new Map<number, Client>();
  readonly #options: WsServerOptions;
  readonly #maxMessageSize: number;
  readonly #maxBuffered: number;
  readonly #maxQueued: number;
  readonly #slowClient: SlowClientPolicy;
  #nextId = 1;
  #queue: AsyncQueue<WsServerEvent> | undefined;
  #closing: Promise<void> | undefined;
  #clientsGone: (() => void) | undefined;

  /** Use {@linkcode createServer}. */
  constructor(options: WsServerOptions = {}) {
    this.#options = options;
    this.#maxMessageSize = checkMaxMessageSize(options.maxMessageSize);
    this.#maxBuffered = checkMaxBuffered(options.maxBufferedAmount);
    this.#maxQueued = checkMaxQueued(options.maxQueuedBytes);
    this.#slowClient = options.slowClient ?? "close";
    if (this.#slowClient !== "close" && this.#slowClient !== "drop") {
      throw new TypeError(`slowClient must be "close" or "drop"; got "${this.#slowClient}"`);
    }
    this.#callbacks = {};
    for (const name of ["established", "closed", "receive", "static"] as const) {
      const callback = options[name];
      if (callback !== undefined) this.setCallback(name, callback);
    }
    if (options.webpage !== undefined && options.static === undefined) {
      this.#callbacks.static = options.webpage;
    }
    const handler = (request: Request, info: Deno.ServeHandlerInfo) => this.#handle(request, info);
    const where = options.path ?? `${options.hostname ?? "127.0.0.1"}:${options.port ?? 7681}`;
    try {
      this.#http = serveHttp(
        options.path !== undefined ? { path: options.path, transport: "unix" } : {
          port: options.port ?? DEFAULT_WS_PORT,
          hostname: options.hostname ?? "127.0.0.1",
        },
        handler,
        {
          name: `WebSocket server ${where}`,
          ...(options.onAcceptError === undefined ? {} : { onError: options.onAcceptError }),
        },
      );
    } catch (error) {
      throw new ConnectionError(`Cannot listen on "${where}": ${describeNetworkError(error)}`, {
        cause: error,
      });
    }
    const addr = this.#http.addr;
    if (addr.transport === "unix") {
      this.port = 0;
      this.hostname = addr.path;
      this.path = addr.path;
    } else {
      this.port = (addr as Deno.NetAddr).port;
      this.hostname = (addr as Deno.NetAddr).hostname;
      this.path = undefined;
    }
    this.finished = this.#http.finished;
    options.signal?.addEventListener("abort", () => void this.close(), { once: true });
  }

  /** `ws://host:port/` of this server (TCP only). */
  get url(): string {
    const host = this.hostname.includes(":") ? `[${this.hostname}]` : this.hostname;
    return `ws://${host}:${this.port}/`;
  }

  /** The connected clients, in order of connection (R's `server$client_sockets`). */
  get clients(): readonly WsServerClient[] {
    return [...this.#clients.values()];
  }

  /**
   * Sets or replaces one callback, like R's `set_callback(name, f, server)`; `undefined`
   * removes it.
   */
  setCallback<K extends keyof WsServerCallbacks>(name: K, callback: WsServerCallbacks[K]): void {
    if (!["established", "closed", "receive", "static"].includes(name)) {
      throw new TypeError(
        `unknown callback "${name}"; expected established, closed, receive or static`,
      );
    }
    if (callback === undefined) delete this.#callbacks[name];
    else this.#callbacks[name] = callback;
  }

  /**
   * Sends one message to `client` (R's `websocket_write(data, WS)`). It goes to the socket at
   * once while that keeps the socket's buffer within `maxBufferedAmount`; otherwise it waits in
   * the client's queue, and messages leave in call order. Resolves once handed to the socket.
   *
   * Writes need not be awaited: a loop of writes costs the same per write however many wait.
   * Bytes that wait are held, not copied: leave them unchanged until the write resolves.
   * Up to 256 waiting writes in a row without a signal share one promise, settled when the
   * last of them is handed over, so such a run fails as a whole if the client closes midway.
   * Awaiting each write paces the writer to the reader; writes not awaited that pile up past
   * `maxQueuedBytes` for a client that does not read close it with 1008.
   *
   * Rejects with ConnectionError when the client is gone or goes before the message is sent
   * (not reported as unhandled when nobody awaits it), or with the signal's reason when
   * `signal` aborts while the message waits (the message is then not sent).
   */
  write(
    data: WsData,
    client: WsServerClient,
    options?: { signal?: AbortSignal },
  ): Promise<void> {
    const known = this.#clients.get(client.id);
    if (known === undefined || known !== client) {
      return Promise.reject(
        new ConnectionError(`Cannot write to client ${client.id}: it is not connected`),
      );
    }
    return known.queue.write(data, options?.signal);
  }

  /**
   * Sends one message to every open client (R's `websocket_broadcast`) without waiting; for
   * each it goes after that client's waiting writes. A client with more than
   * `maxBufferedAmount` bytes unsent (its `bufferedAmount`), or whose waiting writes the
   * message would take past `maxQueuedBytes`, is closed with 1008 or skipped, per
   * `slowClient`, so one reader that stalls never stalls the others nor grows memory past
   * those bounds. Returns the number of clients the message was sent or queued for.
   */
  broadcast(data: WsData): number {
    let sent = 0;
    for (const client of this.#clients.values()) {
      if (client.socket.readyState !== WebSocket.OPEN) continue;
      const unsent = client.queue.unsent;
      if (unsent >= this.#maxBuffered) {
        if (this.#slowClient === "close") {
          client.close(
            CloseCode.policyViolation,
            `too slow: ${unsent} bytes unsent, bound ${this.#maxBuffered}`,
          );
        }
        continue;
      }
      if (client.queue.offer(data, this.#slowClient === "close")) sent++;
    }
    return sent;
  }

  /**
   * The server's events as an async iterable, for scripts that pump events themselves (R's
   * `service()`). One consumer at a time; events are queued only while it iterates, and a
   * client whose message finds the queue full is closed with 1013.
   */
  events(): AsyncIterableIterator<WsServerEvent> {
    if (this.#queue !== undefined && !this.#queue.done) {
      throw new TypeError("the server's events already have a consumer");
    }
    const queue = new AsyncQueue<WsServerEvent>(this.#options.maxQueuedEvents ?? 1024, () => {
      if (this.#queue === queue) this.#queue = undefined;
    });
    this.#queue = queue;
    if (this.#closing !== undefined) queue.close();
    return queue;
  }

  /** Same as {@linkcode WsServer.events}: `for await (const event of server)`. */
  [Symbol.asyncIterator](): AsyncIterator<WsServerEvent> {
    return this.events();
  }

  /**
   * Shuts down gracefully (R's `websocket_close(server)`): stops accepting, closes every
   * client with 1001, waits up to `timeout` ms for their closing handshakes, then stops.
   * Idempotent.
   */
  close(options: WsCloseOptions = {}): Promise<void> {
    if (this.#closing === undefined) {
      try {
        checkClose(
          options.code ?? CloseCode.goingAway,
          options.reason ?? "server shutting down",
          "server",
        );
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#closing ??= this.#shutdown(options);
  }

  /** Closes gracefully, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(options: WsCloseOptions): Promise<void> {
    const code = options.code ?? CloseCode.goingAway;
    const reason = options.reason ?? "server shutting down";
    const gone = this.#clients.size === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.#clientsGone = resolve);
    for (const client of this.#clients.values()) client.close(code, reason);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      gone,
      new Promise((resolve) => timer = setTimeout(resolve, options.timeout ?? 2000)),
    ]);
    clearTimeout(timer);
    // Clients that did not answer in time (a peer that never reads) are cut by the shutdown.
    await this.#http.shutdown();
    this.#queue?.close();
  }

  /** Runs a callback; a throw or rejection closes its client with 1011 and is reported. */
  #guard(client: Client, run: () => unknown): void {
    try {
      const result = run();
      if (result instanceof Promise) result.catch((error) => this.#fail(client, error));
    } catch (error) {
      this.#fail(client, error);
    }
  }

  #fail(client: Client, error: unknown): void {
    if (client.open) client.close(CloseCode.internalError, "internal error in a callback");
    const handler = this.#options.error;
    if (handler !== undefined) handler(error, client);
    else reportError(error);
  }

  #emit(event: WsServerEvent): void {
    const queue = this.#queue;
    if (queue === undefined) return;
    if (queue.full && event.type === "receive") {
      event.client.close(CloseCode.tryAgainLater, "event queue full: the server reads too slowly");
      return;
    }
    queue.push(event);
  }

  async #handle(request: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    const isUpgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
    if (!isUpgrade) {
      const handler = this.#callbacks.static;
      if (handler === undefined) return new Response("Not Found\n", { status: 404 });
      return await handler(request, info);
    }
    if (this.#closing !== undefined) {
      return new Response("server shutting down\n", { status: 503 });
    }
    const hook = this.#options.upgrade;
    if (hook !== undefined) {
      const verdict = await hook(request, info);
      if (verdict instanceof Response) return verdict;
      if (verdict === false) return new Response("Forbidden\n", { status: 403 });
    }
    const offered = offeredProtocols(request);
    const chooser = this.#options.protocols;
    let protocol: string | undefined;
    if (typeof chooser === "function") protocol = chooser(offered, request);
    else if (chooser !== undefined) protocol = chooser.find((p) => offered.includes(p));
    if (protocol !== undefined && !offered.includes(protocol)) {
      throw new TypeError(`protocols chose "${protocol}", which the client did not offer`);
    }
    const upgradeOptions: Deno.UpgradeWebSocketOptions = {
      idleTimeout: this.#options.idleTimeout ?? 120,
    };
    if (protocol !== undefined) upgradeOptions.protocol = protocol;
    // remoteAddr is unreadable once the request is upgraded.
    const remoteAddress = formatAddress(info.remoteAddr);
    const upgraded = upgradeOrRefuse(request, upgradeOptions);
    if (upgraded instanceof Response) return upgraded;
    const { socket, response } = upgraded;
    socket.binaryType = "arraybuffer";
    const client = new Client(
      this.#nextId++,
      request,
      remoteAddress,
      socket,
      protocol ?? "",
      { bound: this.#maxBuffered, limit: this.#maxQueued },
    );
    socket.onopen = () => {
      this.#clients.set(client.id, client);
      const established = this.#callbacks.established;
      if (established !== undefined) this.#guard(client, () => established(client));
      this.#emit({ type: "established", client });
      // Upgraded just as the shutdown began: the shutdown's close loop has already run.
      if (this.#closing !== undefined) client.close(CloseCode.goingAway, "server shutting down");
    };
    socket.onmessage = (event) => {
      const decoded = decodeMessage(event.data, this.#maxMessageSize);
      if ("tooLarge" in decoded) {
        client.close(
          CloseCode.messageTooBig,
          `message of ${decoded.tooLarge} bytes exceeds the ${this.#maxMessageSize}-byte limit`,
        );
        return;
      }
      const receive = this.#callbacks.receive;
      if (receive !== undefined) {
        // Inlined #guard: the per-message path allocates no closure (measured in the bench).
        try {
          const result = receive(decoded.data, client, decoded.header);
          if (result instanceof Promise) result.catch((error) => this.#fail(client, error));
        } catch (error) {
          this.#fail(client, error);
        }
      }
      // Build the event only for an iterating consumer: most servers use callbacks alone.
      if (this.#queue !== undefined) {
        this.#emit({ type: "receive", client, data: decoded.data, header: decoded.header });
      }
    };
    socket.onerror = () => {
      // The close event that follows reports the outcome; this only keeps errors from being
      // reported as uncaught.
    };
    socket.onclose = (event) => {
      if (!this.#clients.delete(client.id)) return;
      const info: WsCloseInfo = {
        code: event.code,
        reason: event.reason,
        wasClean: event.wasClean,
      };
      const closed = this.#callbacks.closed;
      if (closed !== undefined) this.#guard(client, () => closed(client, info));
      this.#emit({ type: "closed", client, info });
      if (this.#clients.size === 0) this.#clientsGone?.();
    };
    return response;
  }
}

/**
 * Starts a WebSocket server, like R's `create_server(port, webpage)` with its callbacks set
 * at creation (or later with {@linkcode WsServer.setCallback}). It answers websocket upgrades
 * and, through `webpage`/`static`, plain HTTP. Several servers run side by side on distinct
 * ports; `path` serves on a Unix socket.
 *
 * @example Echo server
 * ```ts
 * import { createServer } from "@x/rsock/ws";
 *
 * await using server = createServer({
 *   port: 0,
 *   receive(data, client) {
 *     client.write(data);
 *   },
 * });
 * console.log(`listening on ${server.url}`);
 * ```
 */
export function createServer(options: WsServerOptions = {}): WsServer {
  return new WsServer(options);
}
