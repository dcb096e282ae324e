/**
 * REQ0 and REP0 state machines over any number of pipes: request ids, backtraces, contexts,
 * resend, load balancing, reconnecting dialers. Bytes in and out only; modes live elsewhere.
 *
 * @module
 */

import { acceptConnections } from "../_internal/accept.ts";
import { ConnectionError, ProtocolError, TimeoutError } from "../_internal/errors.ts";
import { dialOnce, openListener, type PipeEvents, runPipe, type SpPipe as Pipe } from "./_pipe.ts";
import {
  dialWebSocket,
  listenWebSocket,
  runWebSocketPipe,
  type WebSocketListener,
} from "./_websocket.ts";
import { BufferPool, type Endpoint, formatUrl, parseUrl, type Protocol } from "./_wire.ts";

/**
 * The default largest message accepted from the wire: 64 MiB (NNG has no limit; mangos 1 MiB).
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_SP_MESSAGE_BYTES, socket } from "@x/rsock/reqrep";
 * await using rep = await socket("rep", {
 *   listen: "tcp://127.0.0.1:0",
 *   maxMessageBytes: DEFAULT_MAX_SP_MESSAGE_BYTES / 64, // 1 MiB, like mangos
 * });
 * ```
 */
export const DEFAULT_MAX_SP_MESSAGE_BYTES = 64 * 1024 * 1024;
/**
 * NNG's and nanonext's default resend interval of an unanswered request.
 *
 * @example
 * ```ts
 * import { DEFAULT_RESEND_INTERVAL, socket } from "@x/rsock/reqrep";
 * await using req = await socket("req", {
 *   dial: "tcp://127.0.0.1:5555",
 *   resendInterval: DEFAULT_RESEND_INTERVAL / 6, // 10 s
 * });
 * ```
 */
export const DEFAULT_RESEND_INTERVAL = 60_000;
/**
 * The default bound of replies waiting to be written to one REP pipe: 16 MiB. A peer that
 * stops reading costs at most this (plus one reply), and never holds a context.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_PENDING_BYTES, socket } from "@x/rsock/reqrep";
 * // Let slow readers of large replies fall behind by up to 64 MiB each.
 * await using rep = await socket("rep", {
 *   listen: "tcp://127.0.0.1:0",
 *   maxPendingBytes: 4 * DEFAULT_MAX_PENDING_BYTES,
 * });
 * ```
 */
export const DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024;
const TTL_MAX = 8; // NNG's ttl-max: backtrace words a REP accepts
const MAX_QUEUED_REQUESTS = 4096;

/** Options of {@linkcode ScalabilitySocket}. */
export interface SocketOptions {
  /** URLs to listen on (`tcp://127.0.0.1:5555`, `ipc:///tmp/x.ipc`, `ws://127.0.0.1:5556/sp`). */
  readonly listen?: string | readonly string[];
  /**
   * URLs to dial; a dialer reconnects with backoff when its peer goes away. A first dial that
   * fails (nothing listening) makes `socket()` throw at once, as `nng_dial` and `nngcat` do,
   * unless `retryFirstDial` is set.
   */
  readonly dial?: string | readonly string[];
  /**
   * Keep redialing when the first dial fails, instead of throwing: for a peer that may start
   * later (nanonext's default, `dial(autostart = TRUE)`). @default {false}
   */
  readonly retryFirstDial?: boolean;
  /** Largest message accepted; a larger length prefix drops the pipe. @default {67108864} */
  readonly maxMessageBytes?: number;
  /**
   * REP: the most reply bytes that may wait for one pipe whose peer is slow to read. A reply
   * that would go past it is dropped (reported once per pipe through `onError`); the
   * REQ peer resends after its resend interval (as it does for any lost reply). A reply goes
   * out whatever its size when nothing is waiting. While a pipe's queue is full, no more of
   * its requests are read (TCP, IPC) or they are dropped (WebSocket, which cannot pause).
   * Sending never waits for the peer, so a peer that never reads cannot hold a context or
   * stall other peers. @default {16777216}
   */
  readonly maxPendingBytes?: number;
  /** REQ: resend an unanswered request after this many ms (0: never). @default {60000} */
  readonly resendInterval?: number;
  /** First redial delay in ms; doubles per failure up to `reconnectMaximum`. @default {100} */
  readonly reconnectMinimum?: number;
  /** Longest redial delay in ms. @default {2000} */
  readonly reconnectMaximum?: number;
  /**
   * The mode of the `ipc://` socket files this socket listens on, like NNG's
   * `NNG_OPT_IPC_PERMISSIONS`: `0o600` lets only this user connect. The file is created with
   * it (needs `--allow-sys=umask`), not changed afterwards. Unset: the process umask decides.
   */
  readonly ipcPermissions?: number;
  /**
   * How long {@linkcode ScalabilitySocket.close} lets messages already sent (a last reply)
   * be written before it closes their pipes anyway, in ms: close never waits longer on a
   * peer. @default {1000}
   */
  readonly linger?: number;
  /**
   * Told why a pipe was dropped or a message discarded, and why a listener could not accept a
   * connection (a client reset before it was accepted, or no file descriptors left; each such
   * kind once per listener). The socket goes on: only its close stops a listener.
   *
   * @default {undefined} (nothing is reported)
   */
  readonly onError?: (error: Error) => void;
  /**
   * `ws://` listeners: browser origins (`"https://app.example"`, `"*"` for any) whose pages may
   * connect. A request without `Origin` (nngcat, R, Deno: not a browser) is always accepted;
   * any other browser page is refused with 403, since every page can reach 127.0.0.1.
   * @default {[]}
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * `ws://` listeners: further `Host` names accepted besides `localhost`, IP addresses and the
   * bound hostname; others get 403, so a site made to resolve to 127.0.0.1 (DNS rebinding)
   * cannot connect. @default {[]}
   */
  readonly allowedHosts?: readonly string[];
  /** Closes the socket when aborted. */
  readonly signal?: AbortSignal;
}

/** Per-wait options. */
export interface WaitOptions {
  /** Milliseconds to wait before failing with a {@linkcode TimeoutError}. */
  readonly timeout?: number;
  /** Stops waiting when aborted. */
  readonly signal?: AbortSignal;
}

interface PendingRequest {
  readonly id: number;
  readonly idBytes: Uint8Array;
  readonly body: Uint8Array;
  pipe: Pipe | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly reply: PromiseWithResolvers<Uint8Array>;
}

interface ReceivedRequest {
  readonly pipe: Pipe;
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

/** Waits for `promise`, bounded by `options`; `cancel` runs when the wait is given up. */
function bounded<T>(
  promise: Promise<T>,
  options: WaitOptions,
  what: string,
  cancel: () => void,
): Promise<T> {
  const { timeout, signal } = options;
  if (timeout === undefined && signal === undefined) return promise;
  signal?.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      cancel();
      reject(signal!.reason);
    };
    if (timeout !== undefined && timeout >= 0) {
      timer = setTimeout(() => {
        done();
        cancel();
        reject(new TimeoutError(`${what}: no answer within ${timeout} ms`));
      }, timeout);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then((value) => {
      done();
      resolve(value);
    }, (error) => {
      done();
      reject(error);
    });
  });
}

/**
 * A REQ or REP socket: pipes, listeners, dialers and the protocol state. Use
 * {@linkcode ScalabilitySocket.context} for independent request/reply state machines.
 *
 * @example
 * ```ts
 * import { socket } from "@x/rsock/reqrep";
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
 * console.log(rep.urls[0]); // "tcp://127.0.0.1:41234", the port it got
 * ```
 */
export class ScalabilitySocket implements AsyncDisposable {
  /** `"req"` or `"rep"`. */
  readonly protocol: Protocol;
  readonly #maxMessageBytes: number;
  readonly #maxPendingBytes: number;
  readonly #linger: number;
  readonly #ipcPermissions: number | undefined;
  readonly #resendInterval: number;
  readonly #reconnectMinimum: number;
  readonly #reconnectMaximum: number;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #allowedOrigins: readonly string[];
  readonly #allowedHosts: readonly string[];
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => void this.close();
  readonly #pipes: Pipe[] = [];
  #nextPipe = 0;
  readonly #listeners: Deno.Listener[] = [];
  readonly #tasks = new Set<Promise<void>>();
  readonly #urls: string[] = [];
  #closing: Promise<void> | undefined;
  readonly #stop = new AbortController();
  // Aborted after the linger: closes every pipe, mid-handshake ones included.
  readonly #closePipes = new AbortController();
  #pipeWaiters: (() => void)[] = [];
  // REQ
  #nextId = (0x80000000 | Math.floor(Math.random() * 0x7fffffff)) >>> 0;
  readonly #pending = new Map<number, PendingRequest>();
  readonly #unsent: PendingRequest[] = [];
  // REP
  readonly #requests: ReceivedRequest[] = [];
  #requestWaiters: PromiseWithResolvers<ReceivedRequest>[] = [];
  #roomWaiters: (() => void)[] = [];
  #defaultContext: Context | undefined;
  readonly #pool = new BufferPool();
  readonly #webSocketListeners: WebSocketListener[] = [];
  // REP pipes whose reply queue was full: reported once per pipe, not once per dropped reply.
  readonly #fullPipes = new WeakSet<Pipe>();

  /** @internal Use `socket()`. */
  constructor(protocol: Protocol, options: SocketOptions) {
    this.protocol = protocol;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_SP_MESSAGE_BYTES;
    if (!Number.isSafeInteger(this.#maxMessageBytes) || this.#maxMessageBytes < 0) {
      throw new RangeError(
        `maxMessageBytes must be a whole number >= 0, got ${this.#maxMessageBytes}`,
      );
    }
    this.#maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    if (!Number.isSafeInteger(this.#maxPendingBytes) || this.#maxPendingBytes < 0) {
      throw new RangeError(
        `maxPendingBytes must be a whole number >= 0, got ${this.#maxPendingBytes}`,
      );
    }
    this.#linger = options.linger ?? 1000;
    this.#ipcPermissions = options.ipcPermissions;
    if (
      this.#ipcPermissions !== undefined &&
      !(Number.isInteger(this.#ipcPermissions) && this.#ipcPermissions >= 0 &&
        this.#ipcPermissions <= 0o777)
    ) {
      throw new RangeError(
        `ipcPermissions must be a file mode 0 to 0o777, got ${this.#ipcPermissions}`,
      );
    }
    if (!(this.#linger >= 0)) throw new RangeError(`linger must be >= 0 ms, got ${this.#linger}`);
    this.#resendInterval = options.resendInterval ?? DEFAULT_RESEND_INTERVAL;
    this.#reconnectMinimum = options.reconnectMinimum ?? 100;
    this.#reconnectMaximum = Math.max(options.reconnectMaximum ?? 2000, this.#reconnectMinimum);
    this.#onError = options.onError;
    this.#allowedOrigins = options.allowedOrigins ?? [];
    this.#allowedHosts = options.allowedHosts ?? [];
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** The URLs listened on, with real ports once bound (`tcp://127.0.0.1:0` → the port). */
  get urls(): readonly string[] {
    return this.#urls;
  }

  /** Number of connected peers. */
  get pipeCount(): number {
    return this.#pipes.length;
  }

  /** Resolves when at least `count` peers are connected. */
  async waitForPipes(count = 1, options: WaitOptions = {}): Promise<void> {
    while (this.#pipes.length < count) {
      this.#checkOpen();
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#pipeWaiters.push(resolve);
      await bounded(promise, options, `waiting for ${count} peer(s)`, () => {});
    }
  }

  /**
   * Listens on `url` (`tcp://host:port`, port 0 picks one; `ipc:///path`;
   * `ws://host:port/path`).
   */
  async listen(url: string): Promise<string> {
    this.#checkOpen();
    const endpoint = parseUrl(url);
    if (endpoint.transport === "ws") {
      const listener = listenWebSocket(endpoint, this.protocol, (socket, remote) => {
        this.#track(this.#serveWebSocket(socket, remote));
      }, {
        allowedOrigins: this.#allowedOrigins,
        allowedHosts: this.#allowedHosts,
        onError: (error) => this.#report(error),
      });
      this.#webSocketListeners.push(listener);
      const boundUrl = formatUrl({ ...endpoint, port: listener.port });
      this.#urls.push(boundUrl);
      return boundUrl;
    }
    const listener = await openListener(endpoint, this.#ipcPermissions);
    this.#listeners.push(listener);
    const addr = listener.addr;
    const bound: Endpoint = addr.transport === "tcp"
      ? { transport: "tcp", hostname: addr.hostname, port: addr.port }
      : endpoint;
    const boundUrl = formatUrl(bound);
    this.#urls.push(boundUrl);
    const transport = endpoint.transport === "ipc" ? "ipc" : "tcp";
    this.#track(acceptConnections(listener, (conn) => {
      this.#track(this.#serveConn(conn, transport));
    }, { signal: this.#stop.signal, name: boundUrl, onError: (error) => this.#report(error) }));
    return boundUrl;
  }

  /**
   * Dials `url` and keeps a pipe to it: when the peer goes away it redials after a delay that
   * doubles from `reconnectMinimum` to `reconnectMaximum`. Resolves after the first attempt.
   * If that attempt failed (nothing listening: refused at once), it throws a
   * {@linkcode ConnectionError} naming the address and stops, as `nng_dial` does; with
   * `wait: false` it resolves instead and keeps redialing until a peer is there (nanonext's
   * `dial(autostart = TRUE)`).
   */
  async dial(url: string, options: { wait?: boolean } = {}): Promise<void> {
    this.#checkOpen();
    const endpoint = parseUrl(url);
    const wait = options.wait ?? true;
    const first = Promise.withResolvers<void>();
    const stop = this.#stop.signal;
    this.#track((async () => {
      let delay = this.#reconnectMinimum;
      let attempt = 0;
      while (!stop.aborted) {
        let conn: Deno.Conn | WebSocket | undefined;
        try {
          conn = await unlessStopped<Deno.Conn | WebSocket>(
            endpoint.transport === "ws"
              ? dialWebSocket(endpoint, this.protocol)
              : dialOnce(endpoint),
            stop,
          );
        } catch (error) {
          if (attempt++ === 0) {
            first.reject(error);
            if (wait) return;
          }
        }
        if (conn !== undefined) {
          if (attempt++ === 0) first.resolve();
          delay = this.#reconnectMinimum;
          await (conn instanceof WebSocket
            ? this.#serveWebSocket(conn, formatUrl(endpoint))
            : this.#serveConn(conn, endpoint.transport === "ipc" ? "ipc" : "tcp"));
        }
        if (stop.aborted) break;
        await sleep(delay * (0.5 + Math.random() / 2), stop);
        delay = Math.min(delay * 2, this.#reconnectMaximum);
      }
      first.reject(new ConnectionError(`the ${this.protocol} socket is closed`));
    })());
    try {
      await first.promise;
    } catch (error) {
      if (wait) throw error;
    }
  }

  /** A new context: its own request/reply state over this socket's pipes (nanonext `context()`). */
  context(): Context {
    this.#checkOpen();
    return new Context(this);
  }

  /** The socket's own context, used by `send`/`recv` on the socket itself. */
  get defaultContext(): Context {
    return this.#defaultContext ??= new Context(this);
  }

  /** Closes every pipe, listener and dialer; pending waits fail with a ConnectionError. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  /** Same as {@linkcode ScalabilitySocket.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** True once {@linkcode ScalabilitySocket.close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  async #close(): Promise<void> {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#stop.abort();
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch {
        // closed
      }
    }
    const pipes = [...this.#pipes];
    if (this.#linger > 0 && pipes.some((pipe) => pipe.queuedBytes > 0)) {
      // A reply sent just before close() is usually written at once; a peer that does not read
      // gets `linger` ms, no more.
      const gaveUp = Promise.withResolvers<void>();
      const timer = setTimeout(gaveUp.resolve, this.#linger);
      await Promise.race([Promise.all(pipes.map((pipe) => pipe.flushed())), gaveUp.promise]);
      clearTimeout(timer);
    }
    this.#closePipes.abort();
    for (const pipe of [...this.#pipes]) pipe.close();
    await Promise.all(this.#webSocketListeners.map((listener) => listener.close()));
    const closed = new ConnectionError(`the ${this.protocol} socket is closed`);
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reply.reject(closed);
    }
    this.#pending.clear();
    this.#unsent.length = 0;
    for (const waiter of this.#requestWaiters) waiter.reject(closed);
    this.#requestWaiters = [];
    for (const wake of this.#roomWaiters) wake();
    for (const wake of this.#pipeWaiters) wake();
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
    for (const listener of this.#listeners) {
      const addr = listener.addr;
      if (addr.transport === "unix") await Deno.remove(addr.path).catch(() => {});
    }
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) {
      throw new ConnectionError(`the ${this.protocol} socket is closed`);
    }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  #report(error: Error): void {
    try {
      this.#onError?.(error);
    } catch {
      // a failing logger must not stop the socket
    }
  }

  #serveConn(conn: Deno.Conn, framing: "tcp" | "ipc"): Promise<void> {
    if (this.#closing !== undefined) {
      conn.close();
      return Promise.resolve();
    }
    return runPipe(
      conn,
      framing,
      this.protocol,
      this.#maxMessageBytes,
      this.#pipeEvents(),
      (length) => this.#pool.allocate(length),
    );
  }

  #serveWebSocket(socket: WebSocket, remote: string): Promise<void> {
    if (this.#closing !== undefined) {
      const closed = new Promise<void>((resolve) =>
        socket.addEventListener("close", () => resolve(), { once: true })
      );
      socket.close(1001, "going away");
      return closed;
    }
    return runWebSocketPipe(socket, remote, this.#maxMessageBytes, this.#pipeEvents());
  }

  /** How every pipe, whatever its transport, reports to this socket. */
  #pipeEvents(): PipeEvents {
    return {
      opened: (pipe) => {
        this.#pipes.push(pipe);
        const waiters = this.#pipeWaiters;
        this.#pipeWaiters = [];
        for (const wake of waiters) wake();
        this.#flushUnsent();
      },
      message: (pipe, payload) => {
        if (this.protocol === "req") this.#onReply(pipe, payload);
        else this.#onRequest(pipe, payload);
      },
      closed: (pipe, reason) => {
        const index = this.#pipes.indexOf(pipe);
        if (index !== -1) this.#pipes.splice(index, 1);
        if (reason !== undefined && this.#closing === undefined) {
          this.#report(
            new ConnectionError(`pipe ${pipe.id} (${pipe.remote}) dropped: ${reason.message}`, {
              cause: reason,
            }),
          );
        }
        if (this.protocol === "req") this.#requeueFrom(pipe);
      },
      room: (pipe) => this.#waitForRoom(pipe),
      stop: this.#closePipes.signal,
    };
  }

  // ---- REQ ----

  /**
   * @internal Gives a received message's buffer back for reuse; only for messages nothing
   * can see any more (decoded copies taken, reply sent).
   */
  releaseBuffer(bytes: Uint8Array): void {
    this.#pool.release(bytes);
  }

  /** @internal Starts a request: assigns an id and sends it on a pipe (or queues it). */
  startRequest(body: Uint8Array): PendingRequest {
    this.#checkOpen();
    if (this.protocol !== "req") throw new TypeError("requests are sent from a req socket");
    let id = this.#nextId;
    while (this.#pending.has(id)) id = id === 0xffffffff ? 0x80000000 : id + 1;
    this.#nextId = id === 0xffffffff ? 0x80000000 : id + 1;
    const idBytes = new Uint8Array(4);
    new DataView(idBytes.buffer).setUint32(0, id);
    const pending: PendingRequest = {
      id,
      idBytes,
      body,
      pipe: undefined,
      timer: undefined,
      reply: Promise.withResolvers<Uint8Array>(),
    };
    pending.reply.promise.catch(() => {});
    this.#pending.set(id, pending);
    this.#transmit(pending);
    return pending;
  }

  /** @internal Forgets a request (cancelled, timed out, or superseded). */
  cancelRequest(pending: PendingRequest): void {
    clearTimeout(pending.timer);
    this.#pending.delete(pending.id);
    const at = this.#unsent.indexOf(pending);
    if (at !== -1) this.#unsent.splice(at, 1);
  }

  #pickPipe(): Pipe | undefined {
    if (this.#pipes.length === 0) return undefined;
    const pipe = this.#pipes[this.#nextPipe % this.#pipes.length]!;
    this.#nextPipe = (this.#nextPipe + 1) % this.#pipes.length;
    return pipe;
  }

  #transmit(pending: PendingRequest): void {
    clearTimeout(pending.timer);
    const pipe = this.#pickPipe();
    pending.pipe = pipe;
    if (pipe === undefined) {
      this.#unsent.push(pending);
      return;
    }
    pipe.send([pending.idBytes, pending.body]).catch(() => {
      // The pipe broke; its close handler requeues what was on it.
    });
    if (this.#resendInterval > 0) {
      pending.timer = setTimeout(() => {
        if (this.#pending.get(pending.id) === pending) this.#transmit(pending);
      }, this.#resendInterval);
    }
  }

  #flushUnsent(): void {
    const unsent = this.#unsent.splice(0);
    for (const pending of unsent) {
      if (this.#pending.get(pending.id) === pending) this.#transmit(pending);
    }
  }

  #requeueFrom(pipe: Pipe): void {
    // NNG resends at once what was outstanding on a lost pipe, with the same id.
    for (const pending of this.#pending.values()) {
      if (pending.pipe === pipe && this.#closing === undefined) this.#transmit(pending);
    }
  }

  #onReply(pipe: Pipe, payload: Uint8Array): void {
    if (payload.length < 4) {
      this.#report(
        new ProtocolError(
          `pipe ${pipe.id} (${pipe.remote}) sent a ${payload.length}-byte reply; a reply starts with a 4-byte request id (pipe dropped)`,
        ),
      );
      pipe.close();
      return;
    }
    const id = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
    const pending = this.#pending.get(id);
    if (pending === undefined) return; // stale or unknown id: NNG drops it silently
    clearTimeout(pending.timer);
    this.#pending.delete(id);
    pending.reply.resolve(payload.subarray(4));
  }

  // ---- REP ----

  #onRequest(pipe: Pipe, payload: Uint8Array): void {
    let offset = 0;
    for (let hops = 1;; hops++) {
      if (hops > TTL_MAX) {
        this.#report(
          new ProtocolError(
            `pipe ${pipe.id} (${pipe.remote}) sent a request with more than ${TTL_MAX} backtrace hops (message dropped)`,
          ),
        );
        return;
      }
      if (payload.length - offset < 4) {
        this.#report(
          new ProtocolError(
            `pipe ${pipe.id} (${pipe.remote}) sent a request without a request id (pipe dropped)`,
          ),
        );
        pipe.close();
        return;
      }
      const top = payload[offset]!;
      offset += 4;
      if (top & 0x80) break;
    }
    const request = { pipe, header: payload.slice(0, offset), body: payload.subarray(offset) };
    const waiter = this.#requestWaiters.shift();
    if (waiter !== undefined) waiter.resolve(request);
    else this.#requests.push(request);
  }

  /**
   * @internal Queues a reply on its pipe without waiting for the peer: resolves when it is
   * written (or the pipe broke), or returns undefined when the pipe's queue is full and the
   * reply was dropped.
   */
  sendReply(pipe: Pipe, parts: readonly Uint8Array[]): Promise<void> | undefined {
    let size = 0;
    for (const part of parts) size += part.length;
    const queued = pipe.queuedBytes;
    if (queued > 0 && queued + size > this.#maxPendingBytes) {
      if (!this.#fullPipes.has(pipe)) {
        this.#fullPipes.add(pipe);
        this.#report(
          new ConnectionError(
            `pipe ${pipe.id} (${pipe.remote}) is not reading its replies: ${queued} bytes ` +
              `wait for it (maxPendingBytes ${this.#maxPendingBytes}); its replies are dropped ` +
              "until it reads",
          ),
        );
      }
      return undefined;
    }
    return pipe.send(parts).catch(() => {
      // The peer went away: NNG drops the reply too.
    });
  }

  #waitForRoom(pipe: Pipe): Promise<void> | undefined {
    if (
      this.protocol === "rep" && this.#closing === undefined && pipe.queuedBytes > 0 &&
      pipe.queuedBytes >= this.#maxPendingBytes
    ) {
      // A peer that does not read its replies gets no more of its requests read (or run)
      // until it does; the others are read as before.
      return pipe.flushed();
    }
    if (this.#requests.length < MAX_QUEUED_REQUESTS || this.#closing !== undefined) {
      return undefined;
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#roomWaiters.push(resolve);
    return promise;
  }

  /** @internal Takes the next request, waiting for one. */
  nextRequest(options: WaitOptions): Promise<ReceivedRequest> {
    this.#checkOpen();
    if (this.protocol !== "rep") throw new TypeError("requests are received on a rep socket");
    const request = this.#requests.shift();
    if (this.#roomWaiters.length > 0 && this.#requests.length < MAX_QUEUED_REQUESTS) {
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const wake of waiters) wake();
    }
    if (request !== undefined) return Promise.resolve(request);
    const waiter = Promise.withResolvers<ReceivedRequest>();
    this.#requestWaiters.push(waiter);
    return bounded(waiter.promise, options, "rep recv", () => {
      const at = this.#requestWaiters.indexOf(waiter);
      if (at !== -1) this.#requestWaiters.splice(at, 1);
    });
  }
}

/**
 * One request/reply state machine on a socket (nanonext's `context()`): a REQ context has one
 * outstanding request, a REP context answers the request it last received. Many contexts let
 * one socket have many requests in flight.
 *
 * @example
 * ```ts
 * import { request, socket } from "@x/rsock/reqrep";
 * await using req = await socket("req", { dial: "tcp://127.0.0.1:5555" });
 * // Two requests in flight on one socket, one per context:
 * const [a, b] = await Promise.all([request(req.context(), 1), request(req.context(), 2)]);
 * ```
 */
export class Context {
  /** The socket this context runs on. */
  readonly socket: ScalabilitySocket;
  #request: PendingRequest | undefined;
  #received: ReceivedRequest | undefined;
  #lent: Uint8Array | undefined;
  #written: Promise<void> = Promise.resolve();

  /** @internal Use `socket.context()`. */
  constructor(socket: ScalabilitySocket) {
    this.socket = socket;
  }

  /**
   * REQ: sends a request (a new one replaces an unanswered earlier one, whose reply will be
   * dropped). REP: queues the reply to the request last received on its pipe and resolves at
   * once; a reply to a gone peer, or to one whose queue is full (`maxPendingBytes`), is dropped.
   */
  sendBytes(body: Uint8Array, options: WaitOptions = {}): Promise<void> {
    try {
      this.#send(body, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  #send(body: Uint8Array, options: WaitOptions): void {
    if (this.socket.protocol === "req") {
      if (this.#lent !== undefined) {
        this.socket.releaseBuffer(this.#lent);
        this.#lent = undefined;
      }
      if (this.#request !== undefined) this.socket.cancelRequest(this.#request);
      this.#request = this.socket.startRequest(body);
      return;
    }
    const received = this.#received;
    if (received === undefined) {
      throw new ProtocolError("no request to reply to: recv() one on this context first");
    }
    this.#received = undefined;
    options.signal?.throwIfAborted();
    if (received.pipe.closed) return; // NNG: the requester is gone, the reply is dropped
    this.#written = this.socket.sendReply(received.pipe, [received.header, body]) ??
      Promise.resolve();
  }

  /**
   * @internal Settles when the last reply sent on this context has left (written, dropped or
   * its pipe gone): only then may its bytes be reused.
   */
  written(): Promise<void> {
    return this.#written;
  }

  /** @internal Lends a reply's buffer to the caller until the next request on this context. */
  lend(bytes: Uint8Array): void {
    this.#lent = bytes;
  }

  /** REQ: waits for the reply to the last request. REP: waits for the next request. */
  async recvBytes(options: WaitOptions = {}): Promise<Uint8Array> {
    if (this.socket.protocol === "req") {
      const pending = this.#request;
      if (pending === undefined) {
        throw new ProtocolError("no request outstanding: send() one on this context first");
      }
      try {
        return await bounded(pending.reply.promise, options, "req recv", () => {
          this.socket.cancelRequest(pending);
        });
      } finally {
        if (this.#request === pending) this.#request = undefined;
      }
    }
    const request = await this.socket.nextRequest(options);
    this.#received = request;
    return request.body;
  }
}

/**
 * Settles with `attempt`, or with undefined as soon as `signal` aborts: closing a socket never
 * waits for a connect in flight. A connection that arrives after that is closed.
 */
function unlessStopped<T extends Deno.Conn | WebSocket>(
  attempt: Promise<T>,
  signal: AbortSignal,
): Promise<T | undefined> {
  if (signal.aborted) {
    attempt.then((conn) => conn.close(), () => {});
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      attempt.then((conn) => conn.close(), () => {});
      resolve(undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    attempt.then((conn) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) conn.close();
      resolve(signal.aborted ? undefined : conn);
    }, (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
