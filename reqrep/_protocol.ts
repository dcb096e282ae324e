/**
 * REQ and REP sockets: the SP core (transports, pipes, dialers, bounds) driving the req0 or
 * rep0 state machine, and contexts over them. Bytes in and out only; modes live elsewhere.
 *
 * @module
 */

import { ProtocolError } from "../_internal/errors.ts";
import {
  bounded,
  type CoreOptions,
  DEFAULT_MAX_MESSAGE_BYTES,
  SpCore,
  type WaitOptions,
} from "../_internal/sp/core.ts";
import { BufferPool } from "../_internal/sp/buffer_pool.ts";
import { type ReceivedRequest, Rep0 } from "./_rep0.ts";
import { type PendingRequest, Req0 } from "./_req0.ts";
import type { Protocol } from "./_wire.ts";

export type { WaitOptions } from "../_internal/sp/core.ts";

/** The default largest message accepted from the wire: 64 MiB (NNG has no limit; mangos 1 MiB). */
export const DEFAULT_MAX_SP_MESSAGE_BYTES: number = DEFAULT_MAX_MESSAGE_BYTES;
/** NNG's and nanonext's default resend interval of an unanswered request. */
export const DEFAULT_RESEND_INTERVAL = 60_000;

/** Options of {@linkcode ScalabilitySocket}. */
export interface SocketOptions extends CoreOptions {
  /** REQ: resend an unanswered request after this many ms (0: never). @default {60000} */
  readonly resendInterval?: number;
}

/**
 * A REQ or REP socket: pipes, listeners, dialers and the protocol state. Use
 * {@linkcode ScalabilitySocket.context} for independent request/reply state machines.
 */
export class ScalabilitySocket implements AsyncDisposable {
  /** `"req"` or `"rep"`. */
  readonly protocol: Protocol;
  readonly #core: SpCore;
  readonly #req: Req0 | undefined;
  readonly #rep: Rep0 | undefined;
  readonly #pool = new BufferPool();
  #defaultContext: Context | undefined;

  /** @internal Use `socket()`. */
  constructor(protocol: Protocol, options: SocketOptions) {
    this.protocol = protocol;
    this.#core = new SpCore(protocol === "req" ? "req0" : "rep0", options);
    this.#core.useAllocator((length) => this.#pool.allocate(length));
    if (protocol === "req") {
      this.#req = new Req0(this.#core, options.resendInterval ?? DEFAULT_RESEND_INTERVAL);
      this.#core.attach(this.#req);
    } else {
      this.#rep = new Rep0(this.#core);
      this.#core.attach(this.#rep);
    }
  }

  /** The URLs listened on, with real ports once bound (`tcp://127.0.0.1:0` → the port). */
  get urls(): readonly string[] {
    return this.#core.urls;
  }

  /** Number of connected peers. */
  get pipeCount(): number {
    return this.#core.pipes.size;
  }

  /** Resolves when at least `count` peers are connected. */
  waitForPipes(count = 1, options: WaitOptions = {}): Promise<void> {
    return this.#core.waitForPipes(count, options);
  }

  /**
   * Listens on `url` (`tcp://host:port`, port 0 picks one; `ipc:///path`;
   * `ws://host:port/path`; `tls+tcp://` and `wss://` with `tls` options).
   */
  listen(url: string): Promise<string> {
    return this.#core.listen(url);
  }

  /**
   * Dials `url` and keeps a pipe to it: when the peer goes away (or is not there yet) it
   * redials after a delay that doubles from `reconnectMinimum` to `reconnectMaximum`.
   * Resolves after the first attempt; throws if that attempt failed and `wait` is true.
   */
  dial(url: string, options: { wait?: boolean } = {}): Promise<void> {
    return this.#core.dial(url, options);
  }

  /** A new context: its own request/reply state over this socket's pipes (nanonext `context()`). */
  context(): Context {
    this.#core.checkOpen();
    return new Context(this);
  }

  /** The socket's own context, used by `send`/`recv` on the socket itself. */
  get defaultContext(): Context {
    return this.#defaultContext ??= new Context(this);
  }

  /** Closes every pipe, listener and dialer; pending waits fail with a ConnectionError. Idempotent. */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** Same as {@linkcode ScalabilitySocket.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** True once {@linkcode ScalabilitySocket.close} was called. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * @internal Gives a received message's buffer back for reuse; only for messages nothing
   * can see any more (decoded copies taken, reply sent).
   */
  releaseBuffer(bytes: Uint8Array): void {
    this.#pool.release(bytes);
  }

  /** @internal Starts a request: assigns an id and sends it on a pipe (or queues it). */
  startRequest(body: Uint8Array): PendingRequest {
    if (this.#req === undefined) throw new TypeError("requests are sent from a req socket");
    return this.#req.start(body);
  }

  /** @internal Forgets a request (cancelled, timed out, or superseded). */
  cancelRequest(pending: PendingRequest): void {
    this.#req?.cancel(pending);
  }

  /** @internal Takes the next request, waiting for one. */
  nextRequest(options: WaitOptions): Promise<ReceivedRequest> {
    this.#core.checkOpen();
    if (this.#rep === undefined) throw new TypeError("requests are received on a rep socket");
    return this.#rep.next(options);
  }
}

/**
 * One request/reply state machine on a socket (nanonext's `context()`): a REQ context has one
 * outstanding request, a REP context answers the request it last received. Many contexts let
 * one socket have many requests in flight.
 */
export class Context {
  /** The socket this context runs on. */
  readonly socket: ScalabilitySocket;
  #request: PendingRequest | undefined;
  #received: ReceivedRequest | undefined;
  #lent: Uint8Array | undefined;

  /** @internal Use `socket.context()`. */
  constructor(socket: ScalabilitySocket) {
    this.socket = socket;
  }

  /**
   * REQ: sends a request (a new one replaces an unanswered earlier one, whose reply will be
   * dropped). REP: sends the reply to the request last received, resolving once it is written.
   */
  async sendBytes(body: Uint8Array, options: WaitOptions = {}): Promise<void> {
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
    if (received.pipe.closed) return; // NNG: the requester is gone, the reply is dropped
    const written = new Promise<void>((resolve, reject) => {
      received.pipe.send([received.header, body], (error) => error ? reject(error) : resolve());
    });
    await bounded(written, options, "rep send", () => {});
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
