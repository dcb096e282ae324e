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

const encoder = new TextEncoder();
const POLL_MS = 2;

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

/** Waits until `socket.bufferedAmount` is below `bound`, the socket closes, or `signal` aborts. */
export async function waitForRoom(
  socket: WebSocket,
  bound: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  // Deno's WebSocket has no drain event, so poll: the wait only happens when a peer reads
  // slower than we write, where a few milliseconds of latency do not matter.
  while (socket.bufferedAmount >= bound && socket.readyState === WebSocket.OPEN) {
    signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const RESOLVED: Promise<void> = Promise.resolve();

/** Sends `data` after waiting for room; rejects with ConnectionError once closed. */
export function sendWithBackpressure(
  socket: WebSocket,
  data: WsData,
  bound: number,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  // The common case (room, open) sends at once and shares one settled promise: no async
  // function frame per message, which the 1 KiB throughput bench shows.
  if (socket.readyState === WebSocket.OPEN && socket.bufferedAmount < bound) {
    socket.send(data as string | Uint8Array<ArrayBuffer>);
    return RESOLVED;
  }
  return sendLater(socket, data, bound, what, signal);
}

async function sendLater(
  socket: WebSocket,
  data: WsData,
  bound: number,
  what: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await waitForRoom(socket, bound, signal);
  if (socket.readyState !== WebSocket.OPEN) {
    throw new ConnectionError(`Cannot write to ${what}: the connection is closed`);
  }
  socket.send(data as string | Uint8Array<ArrayBuffer>);
}
