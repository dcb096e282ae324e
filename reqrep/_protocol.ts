/**
 * REQ and REP sockets: the SP socket driving the req0 or rep0 state machine, contexts over
 * them, and `socket()` that opens one. Bytes in and out only; modes live elsewhere.
 *
 * @module
 */

import { ProtocolError } from "../_internal/errors.ts";
import { checkSerialConfig } from "../_internal/modes.ts";
import {
  bounded,
  type CoreOptions,
  type Pipe,
  SpCore,
  type WaitOptions,
} from "../_internal/sp/core.ts";
import { BufferPool } from "../_internal/sp/buffer_pool.ts";
import { SpSocket } from "../_internal/sp/socket.ts";
import { type ReceivedRequest, Rep0 } from "./_rep0.ts";
import { type PendingRequest, Req0 } from "./_req0.ts";
import type { Protocol } from "./_wire.ts";

export { DEFAULT_MAX_SP_MESSAGE_BYTES, type WaitOptions } from "../_internal/sp/core.ts";

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

/** Options of {@linkcode ScalabilitySocket}. */
export interface SocketOptions extends CoreOptions {
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
}

/**
 * A REQ or REP socket: an {@linkcode SpSocket} (pipes, listeners, dialers) with the req0 or
 * rep0 state. Use {@linkcode ScalabilitySocket.context} for independent request/reply state
 * machines.
 *
 * @example
 * ```ts
 * import { socket } from "@x/rsock/reqrep";
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
 * console.log(rep.urls[0]); // "tcp://127.0.0.1:41234", the port it got
 * ```
 */
export class ScalabilitySocket extends SpSocket {
  /** `"req"` or `"rep"`. */
  readonly protocol: Protocol;
  readonly #core: SpCore;
  readonly #req: Req0 | undefined;
  readonly #rep: Rep0 | undefined;
  readonly #pool: BufferPool;
  #defaultContext: Context | undefined;

  /** @internal Use `socket()`. */
  constructor(protocol: Protocol, options: SocketOptions) {
    const serial = checkSerialConfig(options.serial);
    const core = new SpCore(protocol === "req" ? "req0" : "rep0", options);
    const pool = new BufferPool();
    core.useAllocator((length) => pool.allocate(length));
    let req: Req0 | undefined;
    let rep: Rep0 | undefined;
    if (protocol === "req") {
      req = new Req0(core, options.resendInterval ?? DEFAULT_RESEND_INTERVAL);
      core.attach(req);
    } else {
      const maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
      if (!Number.isSafeInteger(maxPendingBytes) || maxPendingBytes < 0) {
        throw new RangeError(`maxPendingBytes must be a whole number >= 0, got ${maxPendingBytes}`);
      }
      rep = new Rep0(core, maxPendingBytes);
      core.attach(rep);
    }
    super(core, serial);
    this.protocol = protocol;
    this.#core = core;
    this.#req = req;
    this.#rep = rep;
    this.#pool = pool;
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

  /**
   * @internal Queues a reply on its pipe without waiting for the peer; undefined when the
   * pipe's queue was full and the reply was dropped.
   */
  sendReply(pipe: Pipe, parts: readonly Uint8Array[]): Promise<void> | undefined {
    if (this.#rep === undefined) throw new TypeError("replies are sent from a rep socket");
    return this.#rep.sendReply(pipe, parts);
  }

  /** @internal A signal that aborts once `pipe` is gone (REP). */
  pipeGone(pipe: Pipe): AbortSignal {
    if (this.#rep === undefined) throw new TypeError("requests are received on a rep socket");
    return this.#rep.watch(pipe);
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

  /**
   * @internal REP: who sent the request last received here (its pipe's id and peer), with a
   * signal that aborts once that pipe is gone: the requester can no longer get a reply.
   * Undefined before a request or after its reply.
   */
  requester():
    | { readonly pipe: number; readonly remote: string; readonly gone: AbortSignal }
    | undefined {
    const received = this.#received;
    if (received === undefined) return undefined;
    const { pipe } = received;
    return { pipe: pipe.id, remote: pipe.remote, gone: this.socket.pipeGone(pipe) };
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

/** A socket or one of its contexts: anything `send`/`recv` work on. */
export type Target = ScalabilitySocket | Context;

/** The context `send`/`recv` use on `target`: a socket's default one, or the context itself. */
export function contextOf(target: Target): Context {
  return target instanceof ScalabilitySocket ? target.defaultContext : target;
}

/**
 * Opens a REQ or REP socket, like nanonext's `socket("req", listen = …)`: it listens on and/or
 * dials the given URLs before it resolves. A dial with nothing listening fails at once with a
 * {@linkcode ConnectionError} naming the address (set `retryFirstDial` to wait for the peer).
 *
 * @example
 * ```ts
 * import { socket } from "@x/rsock/reqrep";
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
 * console.log(rep.urls[0]); // tcp://127.0.0.1:<port>
 * ```
 */
export async function socket(
  protocol: "req" | "rep",
  options: SocketOptions = {},
): Promise<ScalabilitySocket> {
  if (protocol !== "req" && protocol !== "rep") {
    throw new TypeError(`protocol must be "req" or "rep", got ${JSON.stringify(protocol)}`);
  }
  const sock = new ScalabilitySocket(protocol, options);
  await sock.start(options);
  return sock;
}
