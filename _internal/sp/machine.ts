/**
 * What protocol state machines share: the operations the SP core calls on every machine
 * ({@linkcode ProtocolMachine}, as NNG's `core/protocol.h` lists the ops each protocol
 * implements), the message as a protocol hands it up (header apart from body, and the pipe it
 * came on), the send and receive a socket's application calls ({@linkcode SendRecvMachine}),
 * a bounded receive queue, and backtrace parsing for the protocols that route replies (rep0,
 * respondent0).
 *
 * @module
 */

import { ConnectionError, ProtocolError } from "../errors.ts";
import type { Pipe } from "./pipe.ts";
import { bounded, type WaitOptions } from "./wait.ts";

/**
 * What a protocol does with pipes and their messages: the operations the SP core (`SpCore`)
 * calls, one machine per socket. The core owns transports, handshakes, pipes and close; the
 * machine owns the protocol's state and every queue the application waits on.
 *
 * Every operation is called synchronously from the core's event handling and must not block:
 * it returns at once, and anything that has to wait (a send for a ready pipe, a recv for a
 * message) is a promise the machine hands the application, never the core. For one pipe the
 * calls come in this order: {@linkcode ProtocolMachine.added} once; then
 * {@linkcode ProtocolMachine.message}, {@linkcode ProtocolMachine.room} and
 * {@linkcode ProtocolMachine.drained} any number of times; then
 * {@linkcode ProtocolMachine.removed} once, after which the pipe is never named again.
 * {@linkcode ProtocolMachine.closing} comes once per socket.
 */
export interface ProtocolMachine {
  /**
   * Registers a pipe that passed the SP handshake (NNG's `pipe_start`), before any message
   * from it. The machine may refuse it by returning an Error (pair0 and pair1 when already
   * paired): the core then closes the pipe, reports why through `onError`, and never
   * calls {@linkcode ProtocolMachine.removed} for it. Returns undefined to accept it; from
   * then on the pipe counts in `pipeCount` and the machine may send on it. Not called once
   * the socket is closing.
   */
  added(pipe: Pipe): Error | undefined;
  /**
   * Forgets a pipe that was added and is now gone (NNG's `pipe_close`): the peer closed, its
   * connection failed, the machine or the core closed it, or the socket is closing (then after
   * {@linkcode ProtocolMachine.closing}). Called exactly once per accepted pipe, with
   * `pipe.closed` already true; no other operation names the pipe afterwards. The machine drops
   * every reference to it, settles whatever waited on it (req0 sends a request in flight on
   * another pipe), and may take back through `pipe.takeUnsent()` the messages the pipe never
   * wrote, to send them on another one (push0, raw req0, pair).
   */
  removed(pipe: Pipe): void;
  /**
   * Takes one whole message from `pipe` as its peer framed it: the SP header words (backtrace,
   * request or survey id) followed by the body, in one buffer, in the order the pipe received
   * them. The buffer is the machine's to keep (it may come from the socket's buffer pool; the
   * door gives it back only once the application is done with it). The machine queues it,
   * hands it to a waiting receiver, or discards it; a malformed message (a header cut short)
   * is reported through the core and may close its pipe. It never refuses one here: it asks
   * the core to stop reading through {@linkcode ProtocolMachine.room}, and one read from the
   * connection can carry several messages, so a queue may go past its bound by that many.
   */
  message(pipe: Pipe, payload: Uint8Array): void;
  /**
   * Everything queued on `pipe` was written to its connection: it is ready for more (NNG's
   * send completion on a pipe). Senders waiting for a ready pipe (push0, pair, req0) go on,
   * and messages kept back for want of one are sent.
   */
  drained(pipe: Pipe): void;
  /**
   * Backpressure: asked after each read from a stream pipe (tcp, ipc, tls+tcp) and before each
   * message of a WebSocket pipe. Returns a promise the core waits on before reading more from
   * `pipe` (a full receive queue, or a peer that does not read its replies), or undefined to
   * go on. A WebSocket cannot stop reading, so a message arriving while this returns a promise
   * is dropped instead. Not asked once the socket is closing.
   */
  room(pipe: Pipe): Promise<void> | undefined;
  /**
   * The socket is closing (NNG's `sock_close`): called once, after the linger let queued
   * messages out and after every pipe was told to close, before their
   * {@linkcode ProtocolMachine.removed} calls. Fails every waiting and later send and receive
   * with `reason` (a {@linkcode ConnectionError} naming the socket); the core wakes its own
   * waits (`waitForPipes`, `flush`).
   */
  closing(reason: Error): void;
}

/** A message as protocols see it: SP header words apart from the body. */
export interface SpMessage {
  /** Header bytes (a raw socket's routing words; empty on cooked sockets that hide them). */
  readonly header: Uint8Array;
  readonly body: Uint8Array;
  /** The id of the pipe it came on (0 when sent by the application). */
  readonly pipe: number;
}

/**
 * A protocol machine the application sends and receives whole messages through (NNG's
 * `sock_send` and `sock_recv`): every `@x/rsock/nng` protocol. req0 and rep0 are plain
 * {@linkcode ProtocolMachine}s whose application side is requests and replies on contexts.
 */
export interface SendRecvMachine extends ProtocolMachine {
  /**
   * Sends one message (NNG's `sock_send`): picks the pipe (round-robin, every pipe, the one
   * `pipe` names, or the one a raw `header` routes to) and queues it there, or waits for a
   * ready pipe within `options`. `header` and `pipe` matter only where the protocol routes by
   * them; a protocol that cannot send rejects with a TypeError.
   */
  send(message: SpMessage, options: WaitOptions): Promise<void>;
  /**
   * Waits within `options` for the next message for the application (NNG's `sock_recv`); a
   * cooked socket's `header` is empty, a raw socket's holds the routing words. A protocol that
   * cannot receive rejects with a TypeError.
   */
  recv(options: WaitOptions): Promise<SpMessage>;
}

/** An empty header. */
export const NO_HEADER: Uint8Array = new Uint8Array(0);

/** A received message from `pipe` with no header. */
export function bodyOnly(pipe: Pipe, body: Uint8Array): SpMessage {
  return { header: NO_HEADER, body, pipe: pipe.id };
}

/** A u32 as 4 big-endian bytes. */
export function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0);
  return bytes;
}

/** The u32 at `offset` of `bytes` (big-endian). */
export function readU32(bytes: Uint8Array, offset = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0);
}

/** NNG's default `ttl-max`: backtrace words a rep0/respondent0 accepts. */
export const TTL_MAX = 8;

/**
 * Splits a request or survey into its backtrace (words up to and including the first with its
 * top bit set) and body. A message that runs out before such a word is malformed: the pipe is
 * dropped, as NNG does; one needing more than {@linkcode TTL_MAX} words is only discarded.
 */
export function splitBacktrace(
  pipe: Pipe,
  payload: Uint8Array,
  what: string,
): { header: Uint8Array; body: Uint8Array } | ProtocolError & { dropPipe: boolean } {
  let offset = 0;
  for (let hops = 1;; hops++) {
    if (hops > TTL_MAX) {
      return Object.assign(
        new ProtocolError(
          `pipe ${pipe.id} (${pipe.remote}) sent a ${what} with more than ${TTL_MAX} backtrace ` +
            "hops (message dropped)",
        ),
        { dropPipe: false },
      );
    }
    if (payload.length - offset < 4) {
      return Object.assign(
        new ProtocolError(
          `pipe ${pipe.id} (${pipe.remote}) sent a ${what} without a complete backtrace; ` +
            "expected 4-byte words ending in one with its top bit set (pipe dropped)",
        ),
        { dropPipe: true },
      );
    }
    const top = payload[offset]!;
    offset += 4;
    if (top & 0x80) break;
  }
  return { header: payload.subarray(0, offset), body: payload.subarray(offset) };
}

/** Bytes of received messages one queue holds before it counts as full. */
export const QUEUE_BYTES = 16 * 1024 * 1024;

/**
 * A bounded FIFO of received messages with waiting readers: full at `capacity` messages or
 * {@linkcode QUEUE_BYTES} bytes, whichever comes first (one message always fits).
 */
export class MessageQueue {
  readonly capacity: number;
  #bytes = 0;
  #items: SpMessage[] = [];
  #head = 0;
  #readers: PromiseWithResolvers<SpMessage>[] = [];
  #rooms: (() => void)[] = [];
  #failed: Error | undefined;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Messages waiting. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** True when no more fit. */
  get full(): boolean {
    return this.size >= this.capacity || (this.size > 0 && this.#bytes >= QUEUE_BYTES);
  }

  /** Hands `message` to a waiting reader or queues it (the caller checked {@linkcode full}). */
  push(message: SpMessage): void {
    const reader = this.#readers.shift();
    if (reader !== undefined) reader.resolve(message);
    else {
      this.#items.push(message);
      this.#bytes += message.body.length + message.header.length;
    }
  }

  /** Queues `message`, discarding the oldest when full (NNG's sub0); true if one was dropped. */
  pushDroppingOldest(message: SpMessage): boolean {
    let dropped = false;
    if (this.full) {
      this.#take();
      dropped = true;
    }
    this.push(message);
    return dropped;
  }

  /** A promise to wait on while full (readers make room), or undefined. */
  room(): Promise<void> | undefined {
    if (!this.full || this.#failed !== undefined) return undefined;
    return new Promise((resolve) => this.#rooms.push(resolve));
  }

  /** Takes the next message, waiting for one within `options`. */
  take(options: WaitOptions, what: string): Promise<SpMessage> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const item = this.#take();
    if (item !== undefined) return Promise.resolve(item);
    const reader = Promise.withResolvers<SpMessage>();
    this.#readers.push(reader);
    return bounded(reader.promise, options, what, () => {
      const at = this.#readers.indexOf(reader);
      if (at !== -1) this.#readers.splice(at, 1);
    });
  }

  /** Discards what is queued (a new survey makes old answers stale). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#wakeRooms();
  }

  /** Fails the readers waiting now with `reason`; queued messages stay readable. */
  failReaders(reason: Error): void {
    for (const reader of this.#readers.splice(0)) reader.reject(reason);
  }

  /** Fails every waiting and later reader with `reason`. */
  fail(reason: Error = new ConnectionError("the socket is closed")): void {
    this.#failed ??= reason;
    for (const reader of this.#readers.splice(0)) reader.reject(this.#failed);
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#wakeRooms();
  }

  #take(): SpMessage | undefined {
    if (this.size === 0) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head] = undefined as unknown as SpMessage;
    this.#head++;
    this.#bytes -= item.body.length + item.header.length;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.#rooms.length > 0 && !this.full) this.#wakeRooms();
    return item;
  }

  #wakeRooms(): void {
    for (const wake of this.#rooms.splice(0)) wake();
  }
}

/**
 * Senders waiting for a pipe to become ready (push0, pair0/1 with no peer yet): resolved in
 * order as pipes drain or appear.
 */
export class ReadyWaiters {
  #waiters: PromiseWithResolvers<void>[] = [];
  #failed: Error | undefined;

  /** Waits until {@linkcode ReadyWaiters.wake} (or fails with the close reason). */
  wait(options: WaitOptions, what: string): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const waiter = Promise.withResolvers<void>();
    this.#waiters.push(waiter);
    return bounded(waiter.promise, options, what, () => {
      const at = this.#waiters.indexOf(waiter);
      if (at !== -1) this.#waiters.splice(at, 1);
    });
  }

  /** Wakes every waiter; each re-checks for a ready pipe. */
  wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
  }

  /** Fails every waiting and later sender. */
  fail(reason: Error): void {
    this.#failed ??= reason;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(reason);
  }
}
