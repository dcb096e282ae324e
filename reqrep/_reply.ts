/**
 * The replier's side: `reply()` answers one request (a NUL byte when it fails), `serve()` keeps
 * answering on many contexts, and `isNulByte()` recognises the error reply.
 *
 * @module
 */

import { ConnectionError, TimeoutError } from "../_internal/errors.ts";
import {
  decodeBody,
  encodeBody,
  likeFor,
  type RecvMode,
  type SendMode,
  type SerialConfig,
} from "../_internal/modes.ts";
import { serialize } from "../serial/mod.ts";
import { contextOf, type ScalabilitySocket, type Target, type WaitOptions } from "./_protocol.ts";

/** The function a REP server runs on each request; may be async. */
export type Executor = (data: unknown) => unknown | Promise<unknown>;

/** Options of {@linkcode reply} and {@linkcode serve}. */
export interface ReplyOptions extends WaitOptions {
  /** How the incoming message is decoded. @default {"serial"} */
  readonly recvMode?: RecvMode;
  /** How the outgoing value is encoded. @default {"serial"} */
  readonly sendMode?: SendMode;
  /** Told why a request got the NUL-byte error reply. */
  readonly onError?: (error: unknown) => void;
  /**
   * With `recvMode: "raw"`: the request's bytes are valid only until `execute` settles and the
   * reply is sent; then their buffer is reused for a later request instead of allocating fresh
   * memory for each (about a third more throughput for 1 MiB echoes, measured in
   * `bench/reqrep_bench.ts`). Other modes always decode into copies and recycle on their own.
   * @default {false}
   */
  readonly borrowBuffers?: boolean;
}

/** The error reply: a true 00 byte (nanonext leaves the byte uninitialised). */
function nulReply(mode: SendMode, serial: SerialConfig): Uint8Array {
  if (mode === "raw") return new Uint8Array([0]);
  const { format, version } = serial.serialize ?? {};
  return serialize(new Uint8Array([0]), {
    ...(format === undefined ? {} : { format }),
    ...(version === undefined ? {} : { version }),
  });
}

/**
 * Waits for one request on `ctx`, runs `execute` on it and sends back the result, like
 * nanonext's `reply()`. In serial mode a reply derived from the request (the request's value,
 * edited, or one of its shape: a scalar for a scalar, an array of its length, an object with all its
 * keys) keeps the request's R type and attributes; one built from scratch is converted by the
 * plain rules (`{ a: 1 }` is always a named list). If converting the request, `execute` or
 * encoding the result fails, the
 * requester gets a single NUL byte. `timeout` bounds the wait for the request; the reply is
 * queued on the requester's pipe without waiting for the peer to read it (see the socket's
 * `maxPendingBytes`), so a peer that never reads cannot hold the context.
 *
 * @example
 * ```ts
 * import { reply, socket } from "@x/rsock/reqrep";
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:5555" });
 * await reply(rep.context(), (x) => (x as number) + 1, { recvMode: "double", sendMode: "raw" });
 * ```
 */
export async function reply(
  ctx: Target,
  execute: Executor,
  options: ReplyOptions = {},
): Promise<void> {
  const context = contextOf(ctx);
  const wait: WaitOptions = {
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  const bytes = await context.recvBytes(wait);
  const sendMode = options.sendMode ?? "serial";
  const recvMode = options.recvMode ?? "serial";
  let body: Uint8Array;
  let reusable = options.borrowBuffers === true;
  const serial = context.socket.serial;
  try {
    const decoded = decodeBody(bytes, recvMode, serial);
    reusable ||= recvMode !== "raw" && decoded.warning === undefined;
    const result = await execute(decoded.value);
    // The request's R type and attributes go only to a reply derived from it.
    body = encodeBody(result, sendMode, likeFor(result, decoded.value, decoded.like), serial);
  } catch (error) {
    options.onError?.(error);
    body = nulReply(sendMode, serial);
  }
  await context.sendBytes(body, wait);
  // Only once the reply is written (an echo sends the request's own bytes), and without
  // waiting for that here: a peer that never reads must not hold this context.
  if (reusable) context.written().then(() => context.socket.releaseBuffer(bytes));
}

/** Options of {@linkcode serve}. */
export interface ServeOptions extends ReplyOptions {
  /** Requests answered at once, each on its own context. @default {16} */
  readonly concurrency?: number;
}

/**
 * Replies forever on a REP socket until `signal` aborts or the socket closes: the serving loop
 * around {@linkcode reply}, with `concurrency` contexts answering in parallel.
 *
 * @example
 * ```ts
 * import { serve, socket } from "@x/rsock/reqrep";
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:5555" });
 * const controller = new AbortController();
 * const serving = serve(rep, (x) => x, { signal: controller.signal });
 * controller.abort();
 * await serving;
 * ```
 */
export async function serve(
  sock: ScalabilitySocket,
  execute: Executor,
  options: ServeOptions = {},
): Promise<void> {
  const concurrency = options.concurrency ?? 16;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a whole number >= 1, got ${concurrency}`);
  }
  const { timeout: _timeout, ...rest } = options;
  const worker = async () => {
    const ctx = sock.context();
    while (!options.signal?.aborted && !sock.closed) {
      try {
        await reply(ctx, execute, rest);
      } catch (error) {
        if (options.signal?.aborted || sock.closed) return;
        if (error instanceof TimeoutError) continue;
        if (error instanceof ConnectionError) return;
        options.onError?.(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * True for the error reply of a `reply()` server: a length-1 raw vector. A real nanonext server
 * leaves that byte uninitialised, so any length-1 raw reply counts, not only `00`.
 *
 * @example
 * ```ts
 * import { isNulByte } from "@x/rsock/reqrep";
 * isNulByte(new Uint8Array([0])); // true
 * isNulByte("ok");                // false
 * ```
 */
export function isNulByte(value: unknown): boolean {
  return value instanceof Uint8Array && value.length === 1;
}
