/**
 * The SP socket core every protocol runs on: listeners and dialers over tcp, ipc, tls+tcp, ws
 * and wss, redialing with backoff; the set of pipes; bounds; close. A protocol state machine
 * ({@linkcode ProtocolMachine}) plugs in and sees only pipes and messages, as NNG's
 * `src/sp/protocol/<family>/` files see its core.
 *
 * @module
 */

import { ConnectionError } from "../errors.ts";
import type { SerialConfig } from "../modes.ts";
import type { ProtocolMachine } from "./machine.ts";
import { type Pipe, type PipeEvents, runStreamPipe } from "./pipe.ts";
import { dialStream, listenStream, type SpListener, type TlsOptions } from "./transport.ts";
import { dialWebSocket, listenWebSocket, runWebSocketPipe } from "./websocket.ts";
import { bounded, type WaitOptions } from "./wait.ts";
import { parseUrl, type SpProtocol } from "./wire.ts";
import { pause } from "../pause.ts";

export type { Pipe } from "./pipe.ts";
export { bounded, type WaitOptions } from "./wait.ts";
export type { TlsOptions } from "./transport.ts";

/**
 * The default largest message an SP socket (`@x/rsock/nng`, `@x/rsock/reqrep`) accepts from
 * the wire: 64 MiB (NNG has no limit; mangos 1 MiB). Not `@x/rsock/socket`'s
 * `DEFAULT_MAX_MESSAGE_BYTES`, the 1 MiB of a plain socket's line or read.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_SP_MESSAGE_BYTES, socket } from "@x/rsock/nng";
 * await using pull = await socket("pull", {
 *   listen: "tcp://127.0.0.1:0",
 *   maxMessageBytes: DEFAULT_MAX_SP_MESSAGE_BYTES / 64, // 1 MiB, like mangos
 * });
 * ```
 */
export const DEFAULT_MAX_SP_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Options of the socket core, shared by every protocol. */
export interface CoreOptions {
  /** URLs to listen on (`tcp://127.0.0.1:5555`, `ipc:///tmp/x.ipc`, `ws://…/sp`, `tls+tcp://…`). */
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
  /** First redial delay in ms; doubles per failure up to `reconnectMaximum`. @default {100} */
  readonly reconnectMinimum?: number;
  /** Longest redial delay in ms. @default {2000} */
  readonly reconnectMaximum?: number;
  /** Certificates and verification for `tls+tcp://` and `wss://`. */
  readonly tls?: TlsOptions;
  /**
   * The mode of the `ipc://` socket files this socket listens on, like NNG's
   * `NNG_OPT_IPC_PERMISSIONS`: `0o600` lets only this user connect. The file is created with
   * it (needs `--allow-sys=umask`), not changed afterwards. Unset: the process umask decides.
   */
  readonly ipcPermissions?: number;
  /**
   * How long `close()` lets messages already sent (a last reply) be written before it closes
   * their pipes anyway, in ms: close never waits longer on a peer. @default {1000}
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
  /**
   * R serialization hooks and bounds for every message this socket sends or receives in
   * `"serial"` mode, like nanonext's `opt(s, "serial") <- serial_config(…)`: R's refhooks
   * (`unserialize.persistentReference`, `serialize.persistentName`) and the reader's bounds
   * (`unserialize.maxElements`, `maxExpandedElements`, `maxDepth`). See {@linkcode SerialConfig}.
   * @default {{}} (the codec's defaults; persistent references stay typed nodes)
   */
  readonly serial?: SerialConfig;
}

/** Splits `listen`/`dial` option values into a list. */
export function urlList(urls: string | readonly string[] | undefined): readonly string[] {
  return urls === undefined ? [] : typeof urls === "string" ? [urls] : urls;
}

/** Pipes, listeners and dialers of one socket, driving one protocol machine. */
export class SpCore {
  readonly protocol: SpProtocol;
  readonly #maxMessageBytes: number;
  readonly #reconnectMinimum: number;
  readonly #reconnectMaximum: number;
  readonly #tls: TlsOptions;
  readonly #ipcPermissions: number | undefined;
  readonly #linger: number;
  readonly #allowedOrigins: readonly string[];
  readonly #allowedHosts: readonly string[];
  // Aborted after the linger: closes every pipe, mid-handshake ones included.
  readonly #closePipes = new AbortController();
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => void this.close();
  readonly #pipes = new Set<Pipe>();
  readonly #listeners: SpListener[] = [];
  readonly #tasks = new Set<Promise<void>>();
  readonly #urls: string[] = [];
  readonly #stop = new AbortController();
  #pipeWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #closing: Promise<void> | undefined;
  #machine: ProtocolMachine | undefined;
  #allocate: ((length: number) => Uint8Array) | undefined;

  constructor(protocol: SpProtocol, options: CoreOptions) {
    this.protocol = protocol;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_SP_MESSAGE_BYTES;
    if (!Number.isSafeInteger(this.#maxMessageBytes) || this.#maxMessageBytes < 0) {
      throw new RangeError(
        `maxMessageBytes must be a whole number >= 0, got ${this.#maxMessageBytes}`,
      );
    }
    this.#reconnectMinimum = options.reconnectMinimum ?? 100;
    this.#reconnectMaximum = Math.max(options.reconnectMaximum ?? 2000, this.#reconnectMinimum);
    this.#tls = options.tls ?? {};
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
    this.#linger = options.linger ?? 1000;
    this.#allowedOrigins = options.allowedOrigins ?? [];
    this.#allowedHosts = options.allowedHosts ?? [];
    if (!(this.#linger >= 0)) throw new RangeError(`linger must be >= 0 ms, got ${this.#linger}`);
    this.#onError = options.onError;
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Sets the protocol machine; called once, before any listen or dial. */
  attach(machine: ProtocolMachine): void {
    this.#machine = machine;
  }

  /** Sets where received messages' buffers come from (a pool that recycles them). */
  useAllocator(allocate: (length: number) => Uint8Array): void {
    this.#allocate = allocate;
  }

  get #protocolMachine(): ProtocolMachine {
    if (this.#machine === undefined) throw new TypeError("no protocol machine attached");
    return this.#machine;
  }

  /** The URLs listened on, with real ports once bound. */
  get urls(): readonly string[] {
    return this.#urls;
  }

  /** The connected pipes. */
  get pipes(): ReadonlySet<Pipe> {
    return this.#pipes;
  }

  /** True once {@linkcode SpCore.close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Throws a {@linkcode ConnectionError} once the socket is closed. */
  checkOpen(): void {
    if (this.#closing !== undefined) {
      throw new ConnectionError(`the ${this.protocol} socket is closed`);
    }
  }

  /** Tells the `onError` hook; a throwing hook does not stop the socket. */
  report(error: Error): void {
    try {
      this.#onError?.(error);
    } catch {
      // a failing logger must not stop the socket
    }
  }

  /** Resolves when at least `count` peers are connected. */
  async waitForPipes(count = 1, options: WaitOptions = {}): Promise<void> {
    while (this.#pipes.size < count) {
      this.checkOpen();
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#pipeWaiters.push(resolve);
      await bounded(promise, options, `waiting for ${count} peer(s)`, () => {
        const at = this.#pipeWaiters.indexOf(resolve);
        if (at !== -1) this.#pipeWaiters.splice(at, 1);
      });
    }
  }

  /**
   * Resolves once every pipe has written what was queued on it (before closing a socket that
   * just sent, so the last messages are not cut off with the connection).
   */
  async drain(options: WaitOptions = {}): Promise<void> {
    while ([...this.#pipes].some((pipe) => pipe.queued > 0 && !pipe.closed)) {
      this.checkOpen();
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#drainWaiters.push(resolve);
      await bounded(promise, options, "waiting for queued messages to be written", () => {
        const at = this.#drainWaiters.indexOf(resolve);
        if (at !== -1) this.#drainWaiters.splice(at, 1);
      });
    }
  }

  /** Listens on `url`; resolves to the bound URL (the real port when 0 was asked for). */
  async listen(url: string): Promise<string> {
    this.checkOpen();
    const endpoint = parseUrl(url);
    let listener: SpListener;
    if (endpoint.transport === "ws" || endpoint.transport === "wss") {
      listener = listenWebSocket(endpoint, this.protocol, this.#tls, (socket, remote) => {
        this.#track(this.#serveWebSocket(socket, remote));
      }, {
        allowedOrigins: this.#allowedOrigins,
        allowedHosts: this.#allowedHosts,
        onError: (error) => this.report(error),
      });
    } else {
      const framing = endpoint.transport === "ipc" ? "ipc" : "tcp";
      const accepting = {
        signal: this.#stop.signal,
        onError: (error: Error) => this.report(error),
      };
      listener = await listenStream(endpoint, this.#tls, this.#ipcPermissions, accepting, (
        stream,
        remote,
      ) => {
        if (this.#closing !== undefined) return stream.close();
        this.#track(
          runStreamPipe(
            stream,
            framing,
            remote,
            this.protocol,
            this.#maxMessageBytes,
            this.#events(),
            this.#allocate,
          ),
        );
      });
    }
    this.#listeners.push(listener);
    this.#urls.push(listener.url);
    return listener.url;
  }

  /**
   * Dials `url` and keeps a pipe to it: when the peer goes away it redials after a delay that
   * doubles from `reconnectMinimum` to `reconnectMaximum`. Resolves after the first attempt.
   * If that attempt failed (nothing listening: refused at once), it throws a
   * {@linkcode ConnectionError} naming the address and stops, as `nng_dial` does; with
   * `wait: false` it resolves instead and keeps redialing until a peer is there (nanonext's
   * `dial(autostart = TRUE)`).
   */
  async dial(url: string, options: { readonly wait?: boolean } = {}): Promise<void> {
    this.checkOpen();
    const endpoint = parseUrl(url);
    const wait = options.wait ?? true;
    const first = Promise.withResolvers<void>();
    first.promise.catch(() => {});
    const stop = this.#stop.signal;
    this.#track((async () => {
      let delay = this.#reconnectMinimum;
      let attempt = 0;
      while (!stop.aborted) {
        let serving: Promise<void> | undefined;
        try {
          if (endpoint.transport === "ws" || endpoint.transport === "wss") {
            const socket = await unlessStopped(
              dialWebSocket(endpoint, this.protocol, this.#tls),
              stop,
              (socket) => socket.close(),
            );
            if (socket !== undefined) serving = this.#serveWebSocket(socket, url);
          } else {
            const dialed = await unlessStopped(
              dialStream(endpoint, this.#tls),
              stop,
              (dialed) => dialed.stream.close(),
            );
            if (dialed !== undefined) {
              serving = runStreamPipe(
                dialed.stream,
                endpoint.transport === "ipc" ? "ipc" : "tcp",
                dialed.remote,
                this.protocol,
                this.#maxMessageBytes,
                this.#events(),
                this.#allocate,
              );
            }
          }
        } catch (error) {
          if (attempt++ === 0) {
            first.reject(error);
            if (wait || error instanceof TypeError) return;
          } else if (error instanceof TypeError) {
            this.report(error);
          }
        }
        if (serving !== undefined) {
          if (attempt++ === 0) first.resolve();
          delay = this.#reconnectMinimum;
          await serving;
        }
        if (stop.aborted) break;
        await pause(delay * (0.5 + Math.random() / 2), stop);
        delay = Math.min(delay * 2, this.#reconnectMaximum);
      }
      first.reject(new ConnectionError(`the ${this.protocol} socket is closed`));
    })());
    try {
      await first.promise;
    } catch (error) {
      if (wait || error instanceof TypeError) throw error;
    }
  }

  /** Closes every pipe, listener and dialer; pending waits fail. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#stop.abort();
    const closing = Promise.all(this.#listeners.map((listener) => listener.close()));
    const pipes = [...this.#pipes];
    if (this.#linger > 0 && pipes.some((pipe) => pipe.queuedBytes > 0)) {
      // A message sent just before close() is usually written at once; a peer that does not
      // read gets `linger` ms, no more.
      const gaveUp = Promise.withResolvers<void>();
      const timer = setTimeout(gaveUp.resolve, this.#linger);
      await Promise.race([Promise.all(pipes.map((pipe) => pipe.flushed())), gaveUp.promise]);
      clearTimeout(timer);
    }
    this.#closePipes.abort();
    for (const pipe of [...this.#pipes]) pipe.close();
    this.#machine?.closing(new ConnectionError(`the ${this.protocol} socket is closed`));
    for (const wake of this.#pipeWaiters.splice(0)) wake();
    for (const wake of this.#drainWaiters.splice(0)) wake();
    await closing;
    while (this.#tasks.size > 0) await Promise.all(this.#tasks);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  #serveWebSocket(socket: WebSocket, remote: string): Promise<void> {
    if (this.#closing !== undefined) {
      const closed = new Promise<void>((resolve) =>
        socket.addEventListener("close", () => resolve(), { once: true })
      );
      socket.close(1001, "going away");
      return closed;
    }
    return runWebSocketPipe(socket, remote, this.#maxMessageBytes, this.#events());
  }

  #events(): PipeEvents {
    const machine = this.#protocolMachine;
    return {
      opened: (pipe) => {
        if (this.#closing !== undefined) {
          return new ConnectionError(`the ${this.protocol} socket is closed`);
        }
        const refused = machine.added(pipe);
        if (refused !== undefined) return refused;
        this.#pipes.add(pipe);
        for (const wake of this.#pipeWaiters.splice(0)) wake();
        return undefined;
      },
      message: (pipe, payload) => machine.message(pipe, payload),
      drained: (pipe) => {
        machine.drained(pipe);
        for (const wake of this.#drainWaiters.splice(0)) wake();
      },
      closed: (pipe, reason) => {
        const known = this.#pipes.delete(pipe);
        if (reason !== undefined && this.#closing === undefined) {
          this.report(
            new ConnectionError(`pipe ${pipe.id} (${pipe.remote}) dropped: ${reason.message}`, {
              cause: reason,
            }),
          );
        }
        if (known) machine.removed(pipe);
        for (const wake of this.#drainWaiters.splice(0)) wake();
      },
      room: (pipe) => this.#closing === undefined ? machine.room(pipe) : undefined,
      stop: this.#closePipes.signal,
    };
  }
}

/**
 * Settles with `attempt`, or with undefined as soon as `signal` aborts: closing a socket never
 * waits for a connect in flight. A connection that arrives after that is closed.
 */
function unlessStopped<T>(
  attempt: Promise<T>,
  signal: AbortSignal,
  discard: (value: T) => void,
): Promise<T | undefined> {
  if (signal.aborted) {
    attempt.then(discard, () => {});
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      attempt.then(discard, () => {});
      resolve(undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    attempt.then((value) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) discard(value);
      resolve(signal.aborted ? undefined : value);
    }, (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
  });
}
