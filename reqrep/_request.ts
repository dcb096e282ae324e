/**
 * Values in and out of REQ and REP sockets with nanonext's modes: `send()`, `recv()` and the
 * requester's `request()`.
 *
 * @module
 */

import { encodeBody, type RecvMode, type SendMode } from "../_internal/modes.ts";
import { decodeReceived, type RecvOptions, type SendOptions } from "../_internal/sp/socket.ts";
import { contextOf, type Target, type WaitOptions } from "./_protocol.ts";

/**
 * Sends `data` on a socket or context, like nanonext's `send()`: on REQ a request, on REP the
 * reply to the request last received there.
 *
 * @example
 * ```ts
 * import { recv, send, socket } from "@x/rsock/reqrep";
 * await using req = await socket("req", { dial: "tcp://127.0.0.1:5555" });
 * await send(req, [1.5, 2], { mode: "raw" }); // 16 bytes: two little-endian doubles
 * ```
 */
export function send(target: Target, data: unknown, options: SendOptions = {}): Promise<void> {
  const context = contextOf(target);
  const body = encodeBody(data, options.mode ?? "serial", undefined, context.socket.serial);
  return context.sendBytes(body, options);
}

/**
 * Receives on a socket or context, like nanonext's `recv()`, converting with `mode`.
 *
 * @example
 * ```ts
 * import { recv, socket } from "@x/rsock/reqrep";
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:5555" });
 * const text = await recv(rep, { mode: "string", timeout: 1000 });
 * ```
 */
export async function recv(target: Target, options: RecvOptions = {}): Promise<unknown> {
  const context = contextOf(target);
  const bytes = await context.recvBytes(options);
  const { value, warned } = decodeReceived(bytes, options, context.socket.serial);
  // Decoded modes copy out of the message, so its buffer can serve the next one.
  if (!warned && (options.mode ?? "serial") !== "raw") context.socket.releaseBuffer(bytes);
  return value;
}

/** Options of {@linkcode request}. */
export interface RequestOptions extends WaitOptions {
  /** How the outgoing value is encoded. @default {"serial"} */
  readonly sendMode?: SendMode;
  /** How the incoming message is decoded. @default {"serial"} */
  readonly recvMode?: RecvMode;
  /** Told when the reply did not fit `recvMode` and comes back raw. */
  readonly onWarning?: (message: string) => void;
  /**
   * With `recvMode: "raw"`: the reply's bytes are valid only until the next request on the
   * same context, when their buffer is reused instead of allocating fresh memory per reply.
   * @default {false}
   */
  readonly borrowBuffers?: boolean;
}

/**
 * Sends a request on a REQ context and waits for its reply, like nanonext's `request()`.
 * A server whose `execute` failed answers a single NUL byte: test with {@linkcode isNulByte}.
 *
 * @example
 * ```ts
 * import { request, socket } from "@x/rsock/reqrep";
 * await using req = await socket("req", { dial: "tcp://127.0.0.1:5555" });
 * const sum = await request(req.context(), [1, 2, 3], { timeout: 5000 });
 * ```
 */
export async function request(
  ctx: Target,
  data: unknown,
  options: RequestOptions = {},
): Promise<unknown> {
  const context = contextOf(ctx);
  const serial = context.socket.serial;
  await context.sendBytes(encodeBody(data, options.sendMode ?? "serial", undefined, serial));
  const recvMode = options.recvMode ?? "serial";
  if (recvMode === "raw" && options.borrowBuffers === true) {
    const bytes = await context.recvBytes(options);
    context.lend(bytes);
    return bytes;
  }
  return recv(context, {
    mode: recvMode,
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
  });
}
