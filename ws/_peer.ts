/**
 * What the server's clients and the client share: one open `WebSocket` with rsock's size limit,
 * backpressure and close handling on top.
 *
 * @module
 */

import { ConnectionError } from "../_internal/errors.ts";

/** A message: text arrives as a string, binary as bytes. */
export type WsData = string | Uint8Array;

/**
 * What is known of a received message, the counterpart of the frame `HEADER` R's `receive`
 * callback gets. Deno reassembles fragments, so this describes the whole message.
 */
export interface WsHeader {
  /** 1 for text, 2 for binary (the WebSocket opcode of the first frame). */
  readonly opcode: 1 | 2;
  /** True for a binary message. */
  readonly binary: boolean;
  /** Payload size in bytes (UTF-8 bytes for text). */
  readonly length: number;
}

/** How a connection ended. */
export interface WsCloseInfo {
  /** The close code (1005 when the peer gave none, 1006 when the connection broke). */
  readonly code: number;
  /** The close reason, possibly empty. */
  readonly reason: string;
  /** True when the closing handshake completed. */
  readonly wasClean: boolean;
}

/**
 * Close codes rsock sends, named (RFC 6455 section 7.4.1).
 *
 * @example
 * ```ts
 * import { CloseCode, createServer } from "@x/rsock/ws";
 * await using server = createServer({ port: 0 });
 * for (const client of server.clients) client.close(CloseCode.goingAway, "maintenance");
 * ```
 */
export const CloseCode = {
  /** Normal closure. */
  normal: 1000,
  /** Server going away (shutdown). */
  goingAway: 1001,
  /** Policy violation (here: a reader too slow for the backpressure bound). */
  policyViolation: 1008,
  /** Message too big for the configured limit. */
  messageTooBig: 1009,
  /** The server hit an error (here: a callback threw). */
  internalError: 1011,
  /** Try again later (here: the event queue of an unread iterator is full). */
  tryAgainLater: 1013,
} as const;

/**
 * The default largest message: 16 MiB, R's `websockets_max_buffer_size`.
 *
 * @example
 * ```ts
 * import { createServer, DEFAULT_MAX_MESSAGE_SIZE } from "@x/rsock/ws";
 * await using server = createServer({ port: 0, maxMessageSize: 4 * DEFAULT_MAX_MESSAGE_SIZE });
 * ```
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 16_777_216;
/**
 * The highest allowed `maxMessageSize`, 64 MiB less one byte: Deno 2.9.6 fails a connection
 * without a close frame on any message of 64 MiB (67108864 bytes) or more, before rsock sees
 * it (measured: 67108863 bytes arrive, 67108864 drop the connection with code 0 at both ends).
 * rsock's clean 1009 can only happen below that; larger messages are Deno's abrupt failure
 * whatever the limit.
 *
 * @example
 * ```ts
 * import { createServer, MAX_MESSAGE_SIZE_LIMIT } from "@x/rsock/ws";
 * await using server = createServer({ port: 0, maxMessageSize: MAX_MESSAGE_SIZE_LIMIT });
 * ```
 */
export const MAX_MESSAGE_SIZE_LIMIT = 64 * 1_048_576 - 1;
/**
 * The default bound on unsent bytes per connection before backpressure applies: 4 MiB.
 *
 * @example
 * ```ts
 * import { createServer, DEFAULT_MAX_BUFFERED } from "@x/rsock/ws";
 * await using server = createServer({ port: 0, maxBufferedAmount: DEFAULT_MAX_BUFFERED / 4 });
 * ```
 */
export const DEFAULT_MAX_BUFFERED = 4 * 1_048_576;
/**
 * The default bound on writes waiting for room per connection: 256 MiB. Writes that are not
 * awaited queue past `maxBufferedAmount`; past this bound the peer counts as one that does not
 * read, and its connection is closed with 1008 (4008 from the client).
 *
 * @example
 * ```ts
 * import { createServer, DEFAULT_MAX_QUEUED_BYTES } from "@x/rsock/ws";
 * await using server = createServer({ port: 0, maxQueuedBytes: DEFAULT_MAX_QUEUED_BYTES / 4 });
 * ```
 */
export const DEFAULT_MAX_QUEUED_BYTES = 256 * 1_048_576;

const encoder = new TextEncoder();

export function checkMaxMessageSize(size: number | undefined): number {
  const value = size ?? DEFAULT_MAX_MESSAGE_SIZE;
  if (!Number.isInteger(value) || value < 1 || value > MAX_MESSAGE_SIZE_LIMIT) {
    throw new RangeError(
      `maxMessageSize must be an integer from 1 to ${MAX_MESSAGE_SIZE_LIMIT} (below Deno's ` +
        `own abrupt failure at 64 MiB); got ${size}`,
    );
  }
  return value;
}

export function checkMaxBuffered(size: number | undefined): number {
  const value = size ?? DEFAULT_MAX_BUFFERED;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`maxBufferedAmount must be a positive integer; got ${size}`);
  }
  return value;
}

export function checkMaxQueued(size: number | undefined): number {
  const value = size ?? DEFAULT_MAX_QUEUED_BYTES;
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`maxQueuedBytes must be an integer of 0 or more; got ${size}`);
  }
  return value;
}

// Codes an endpoint may put in a close frame (RFC 6455 7.4 and IANA's registry): 1004-1006
// and 1015 are reserved for reports, never sent. Deno's server side accepts any code and then
// breaks the connection (the peer sees code 0), so rsock checks before closing.
const SENDABLE_BY_SERVER = new Set([
  1000,
  1001,
  1002,
  1003,
  1007,
  1008,
  1009,
  1010,
  1011,
  1012,
  1013,
  1014,
]);

/** Checks a close code and reason before they reach the socket: a RangeError says why. */
export function checkClose(code: number, reason: string, side: "server" | "client"): void {
  const application = Number.isInteger(code) && code >= 3000 && code <= 4999;
  if (side === "client" && code !== 1000 && !application) {
    throw new RangeError(`a client may close with 1000 or 3000-4999 only; got ${code}`);
  }
  if (side === "server" && !SENDABLE_BY_SERVER.has(code) && !application) {
    throw new RangeError(
      `close code ${code} cannot be sent; expected 1000-1003, 1007-1014 or 3000-4999`,
    );
  }
  const length = encoder.encode(reason).length;
  if (length > 123) {
    throw new RangeError(`close reason of ${length} UTF-8 bytes exceeds the 123-byte limit`);
  }
}

class TextHeader implements WsHeader {
  readonly opcode = 1 as const;
  readonly binary = false;
  #text: string;
  #length: number | undefined;
  constructor(text: string, length: number | undefined) {
    this.#text = text;
    this.#length = length;
  }
  get length(): number {
    return this.#length ??= encoder.encode(this.#text).length;
  }
}

/** Decodes a `MessageEvent`'s data into rsock's data and header, or the size over `limit`. */
export function decodeMessage(
  data: unknown,
  limit: number,
): { data: WsData; header: WsHeader } | { tooLarge: number } {
  if (typeof data === "string") {
    // A UTF-16 unit is 1 to 3 UTF-8 bytes: only strings that might cross the limit are encoded
    // to count; others count lazily, when a callback reads the header's length.
    if (data.length * 3 <= limit) return { data, header: new TextHeader(data, undefined) };
    const length = data.length > limit ? data.length : encoder.encode(data).length;
    if (length > limit) return { tooLarge: length };
    return { data, header: new TextHeader(data, length) };
  }
  const bytes = data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(0);
  if (bytes.length > limit) return { tooLarge: bytes.length };
  return { data: bytes, header: { opcode: 2, binary: true, length: bytes.length } };
}

const RESOLVED: Promise<void> = Promise.resolve();
const ignore = () => {};
// The drain waiter's pauses: 1 ms while bytes move, doubling to 16 ms while the peer reads
// nothing, so a stalled peer costs about 60 wake-ups a second, not a core.
const FIRST_PAUSE_MS = 1;
const LONGEST_PAUSE_MS = 16;
// Consecutive waiting writes without a signal share one promise, settled when the last of them
// is handed over: a burst of writes allocates one promise per this many, not one each.
const SHARED_SETTLE = 256;

/** A rejected promise that is not reported as unhandled; an `await` still sees the error. */
function quietRejection(error: unknown): Promise<void> {
  const promise = Promise.reject(error);
  promise.catch(ignore);
  return promise;
}

/** How waiting writes end: one write with a signal, or a run of writes without. */
class Settle {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  /** Set for a write with a signal (it is then the only write of its Settle). */
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Its size, for a write with a signal. */
  size = 0;
  /** Aborted or rejected: its writes are skipped. */
  gone = false;
  constructor() {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.promise = promise;
    this.resolve = resolve;
    this.reject = reject;
  }
  /** Rejects without an unhandled-rejection report (nobody may await it). */
  fail(error: unknown): void {
    this.gone = true;
    this.release();
    this.promise.catch(ignore);
    this.reject(error);
  }
  release(): void {
    if (this.onAbort !== undefined) {
      this.signal?.removeEventListener("abort", this.onAbort);
      this.onAbort = undefined;
    }
  }
}

/** How a {@linkcode WriteQueue} is bounded and named. */
export interface WriteQueueOptions {
  /** Bytes in the socket's own buffer past which writes wait (`maxBufferedAmount`). */
  readonly bound: number;
  /** Bytes of waiting writes past which the peer counts as not reading (`maxQueuedBytes`). */
  readonly limit: number;
  /** Names the peer in errors: `client 3`, `ws://127.0.0.1:7681/`. */
  readonly what: string;
  /** Closes the connection when the limit is passed (1008, or 4008 from a client). */
  readonly overflow: (reason: string) => void;
}

/**
 * The writes of one connection: each goes to the socket at once while its buffer holds at most
 * `bound` bytes, else waits in one FIFO queue that one timer drains in call order. Deno's
 * `WebSocket` has no drain event, so that timer polls `bufferedAmount`; being one per
 * connection, a write costs the same however many wait before it.
 */
export class WriteQueue {
  readonly #socket: WebSocket;
  readonly #options: WriteQueueOptions;
  // The waiting writes, in order, from #head: their data, sizes and Settle (none for a
  // broadcast, which nobody awaits). Parallel arrays: no object per write.
  #data: (WsData | undefined)[] = [];
  #sizes: number[] = [];
  #settles: (Settle | undefined)[] = [];
  #head = 0;
  /** The Settle that later writes without a signal may join, and how many it has. */
  #open: Settle | undefined;
  #openCount = 0;
  /** Writes waiting and not aborted. */
  #count = 0;
  /** Their bytes (UTF-16 units for text). */
  #bytes = 0;
  /**
   * Bytes that surely fit in the socket's buffer without asking it (an op call): its room when
   * last read, less what was sent since. The buffer only shrinks meanwhile, so this errs low.
   */
  #credit = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pause = FIRST_PAUSE_MS;
  #lastBuffered = 0;

  constructor(socket: WebSocket, options: WriteQueueOptions) {
    this.#socket = socket;
    this.#options = options;
    socket.addEventListener("close", () => this.#failAll(this.#closedError()), { once: true });
  }

  /** Bytes written and not yet handed to the network: the socket's buffer and the queue. */
  get unsent(): number {
    return this.#socket.bufferedAmount + this.#bytes;
  }

  /**
   * Sends `data` now if the socket has room and nothing waits, else queues it. Resolves when
   * it is handed to the socket; rejects (unreported when not awaited) if the connection
   * closes first or `signal` aborts while it waits.
   */
  write(data: WsData, signal?: AbortSignal): Promise<void> {
    const socket = this.#socket;
    if (socket.readyState !== WebSocket.OPEN) return quietRejection(this.#closedError());
    const size = typeof data === "string" ? data.length : data.byteLength;
    // The common case (room, nothing waiting) shares one settled promise: no allocation per
    // message, which the 1 KiB throughput bench shows.
    if (this.#count === 0 && this.#room(data, size)) {
      socket.send(data as string | Uint8Array<ArrayBuffer>);
      return RESOLVED;
    }
    if (signal?.aborted) return quietRejection(signal.reason);
    const refused = this.#admit(size);
    if (refused !== undefined) return quietRejection(refused);
    let settle = this.#open;
    if (signal !== undefined) {
      settle = new Settle();
      settle.signal = signal;
      settle.size = size;
      const own = settle;
      settle.onAbort = () => this.#abort(own);
      signal.addEventListener("abort", settle.onAbort, { once: true });
      this.#open = undefined;
    } else if (settle === undefined || this.#openCount >= SHARED_SETTLE) {
      settle = this.#open = new Settle();
      this.#openCount = 0;
    }
    this.#openCount++;
    this.#push(data, size, settle);
    return settle.promise;
  }

  /**
   * Sends `data` now or queues it behind the writes already waiting, for a broadcast: nobody
   * awaits it, so nothing reports its fate. Past `limit` it closes the peer only when `close`
   * is true (the broadcast's `slowClient: "close"`); otherwise the message is skipped and the
   * peer keeps what already waits. Returns whether the message was sent or queued.
   */
  offer(data: WsData, close: boolean): boolean {
    const socket = this.#socket;
    if (socket.readyState !== WebSocket.OPEN) return false;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (this.#count === 0 && this.#room(data, size)) {
      socket.send(data as string | Uint8Array<ArrayBuffer>);
      return true;
    }
    if (!close && this.#bytes + size > this.#options.limit) return false;
    if (this.#admit(size) !== undefined) return false;
    this.#open = undefined;
    this.#push(data, size, undefined);
    return true;
  }

  /**
   * Whether `data` (of `size` bytes, UTF-16 units for text) may go to the socket now: it keeps
   * the buffer within the bound, or the buffer is empty (a message larger than the bound). On
   * yes its bytes are taken from the credit, text at 3 per unit (the most UTF-8 needs).
   */
  #room(data: WsData, size: number): boolean {
    const cost = typeof data === "string" ? size * 3 : size;
    if (cost <= this.#credit) {
      this.#credit -= cost;
      return true;
    }
    const buffered = this.#socket.bufferedAmount;
    this.#credit = this.#options.bound - buffered;
    if (buffered + size > this.#options.bound && buffered !== 0) return false;
    this.#credit -= cost;
    return true;
  }

  /**
   * Lets `size` more bytes wait, or returns why not: past `limit` the peer counts as one that
   * does not read, so it is closed and every waiting write fails.
   */
  #admit(size: number): ConnectionError | undefined {
    const { limit, what, overflow } = this.#options;
    const waiting = this.#bytes + size;
    if (waiting <= limit) return undefined;
    const error = new ConnectionError(
      `Cannot write to ${what}: ${waiting} bytes would wait for a peer that does not read, ` +
        `over maxQueuedBytes (${limit}); the connection is closed`,
    );
    overflow(`too slow: ${waiting} bytes wait to be sent, bound ${limit}`);
    this.#failAll(error);
    return error;
  }

  // Held, not copied (a burst of writes would double its memory): the caller leaves the bytes
  // unchanged until the write resolves, as with Node's `socket.write`.
  #push(data: WsData, size: number, settle: Settle | undefined): void {
    this.#data.push(data);
    this.#sizes.push(size);
    this.#settles.push(settle);
    this.#count++;
    this.#bytes += size;
    if (this.#timer === undefined) {
      this.#pause = FIRST_PAUSE_MS;
      this.#lastBuffered = this.#socket.bufferedAmount;
      this.#timer = setTimeout(this.#drain, this.#pause);
    }
  }

  #drain = (): void => {
    this.#timer = undefined;
    const socket = this.#socket;
    if (socket.readyState !== WebSocket.OPEN) {
      this.#failAll(this.#closedError());
      return;
    }
    const bound = this.#options.bound;
    const buffered = socket.bufferedAmount;
    const moved = buffered < this.#lastBuffered;
    this.#credit = bound - buffered;
    let sent = false;
    const data = this.#data;
    const sizes = this.#sizes;
    const settles = this.#settles;
    while (this.#count > 0) {
      const at = this.#head;
      const settle = settles[at];
      if (settle?.gone) {
        data[at] = settles[at] = undefined;
        this.#head++;
        continue;
      }
      const size = sizes[at]!;
      const message = data[at]!;
      if (!this.#room(message, size)) break;
      data[at] = settles[at] = undefined;
      this.#head++;
      this.#count--;
      this.#bytes -= size;
      socket.send(message as string | Uint8Array<ArrayBuffer>);
      // A Settle ends with the last of its writes.
      if (settle !== undefined && settles[this.#head] !== settle) {
        if (settle === this.#open) this.#open = undefined;
        settle.release();
        settle.resolve();
      }
      sent = true;
    }
    if (this.#count === 0) {
      this.#reset();
      return;
    }
    // Amortized O(1): the consumed front is cut off once it is most of the arrays.
    if (this.#head > 1024 && this.#head * 2 > data.length) {
      this.#data = data.slice(this.#head);
      this.#sizes = sizes.slice(this.#head);
      this.#settles = settles.slice(this.#head);
      this.#head = 0;
    }
    this.#pause = sent || moved ? FIRST_PAUSE_MS : Math.min(this.#pause * 2, LONGEST_PAUSE_MS);
    this.#lastBuffered = bound - this.#credit;
    this.#timer = setTimeout(this.#drain, this.#pause);
  };

  #abort(settle: Settle): void {
    if (settle.gone) return;
    this.#count--;
    this.#bytes -= settle.size;
    settle.fail(settle.signal?.reason);
    if (this.#count === 0) this.#reset();
  }

  #failAll(error: Error): void {
    const settles = this.#settles;
    let last: Settle | undefined;
    for (let at = this.#head; at < settles.length; at++) {
      const settle = settles[at];
      if (settle === undefined || settle === last || settle.gone) continue;
      last = settle;
      settle.fail(error);
    }
    this.#reset();
  }

  #reset(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#data = [];
    this.#sizes = [];
    this.#settles = [];
    this.#head = 0;
    this.#open = undefined;
    this.#count = 0;
    this.#bytes = 0;
  }

  #closedError(): ConnectionError {
    return new ConnectionError(`Cannot write to ${this.#options.what}: the connection is closed`);
  }
}
