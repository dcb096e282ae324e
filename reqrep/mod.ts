/**
 * Request/reply on the NNG scalability protocols (REQ0/REP0), wire-compatible with NNG,
 * `nngcat`, nanonext, pynng and mangos, with nanonext's API shape: `socket()`, `context()`,
 * `send()`/`recv()` with modes, `request()` and `reply()`. Transports: `tcp://host:port`,
 * `ipc:///path` (a Unix socket), `ws://host:port/path` (SP over WebSocket), and over TLS
 * `tls+tcp://host:port` and `wss://host:port/path` (the `tls` option: certificates, CA,
 * `insecure`), listened on or dialed by either side; dialers reconnect. The sockets run on the
 * same SP core as the rest of the family (`@x/rsock/nng`).
 *
 * Values travel as R serialization (`"serial"`, the default: an R process reads them with
 * nanonext) or as raw bytes (`"raw"`); the R codec is re-exported here (`serialize`,
 * `unserialize`, `simplify`, …).
 *
 * @example A Deno REP server that an R nanonext client can call
 * ```ts
 * import { reply, socket } from "@x/rsock/reqrep";
 *
 * await using rep = await socket("rep", { listen: "tcp://127.0.0.1:5555" });
 * const ctx = rep.context();
 * await reply(ctx, (x) => (x as number) + 1); // R: request(context(s), 41) → 42
 * ```
 *
 * @example A request with raw modes (what `nngcat --rep --data pong` answers)
 * ```ts
 * import { request, socket } from "@x/rsock/reqrep";
 *
 * await using req = await socket("req", { dial: "tcp://127.0.0.1:5555" });
 * const answer = await request(req.context(), "ping", { sendMode: "raw", recvMode: "string", timeout: 1000 });
 * ```
 *
 * @module
 */

import { ConnectionError, TimeoutError } from "../_internal/errors.ts";
import { serialize } from "../serial/mod.ts";
import { decodeBody, encodeBody, type RecvMode, type SendMode } from "../_internal/modes.ts";
import { decodeReceived, type RecvOptions, type SendOptions } from "../_internal/sp/socket.ts";
import {
  type Context,
  ScalabilitySocket,
  type SocketOptions,
  type WaitOptions,
} from "./_protocol.ts";

export * from "../serial/mod.ts";
export {
  ConnectionError,
  MessageTooLargeError,
  ProtocolError,
  TimeoutError,
} from "../_internal/errors.ts";
export { checkRecvMode, checkSendMode, type RecvMode, type SendMode } from "../_internal/modes.ts";
export { type Endpoint, formatUrl, parseUrl, type Protocol } from "./_wire.ts";
export type { CoreOptions, TlsOptions } from "../_internal/sp/core.ts";
export { type RecvOptions, type SendOptions, SpSocket } from "../_internal/sp/socket.ts";
export {
  Context,
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_SP_MESSAGE_BYTES,
  DEFAULT_RESEND_INTERVAL,
  ScalabilitySocket,
  type SocketOptions,
  type WaitOptions,
} from "./_protocol.ts";

/** A socket or one of its contexts: anything `send`/`recv` work on. */
export type Target = ScalabilitySocket | Context;

function contextOf(target: Target): Context {
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
  return contextOf(target).sendBytes(encodeBody(data, options.mode ?? "serial"), options);
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
  const { value, warned } = decodeReceived(bytes, options);
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
  await context.sendBytes(encodeBody(data, options.sendMode ?? "serial"));
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
function nulReply(mode: SendMode): Uint8Array {
  return mode === "raw" ? new Uint8Array([0]) : serialize(new Uint8Array([0]));
}

/**
 * Waits for one request on `ctx`, runs `execute` on it and sends back the result, like
 * nanonext's `reply()`. If converting the request, `execute` or encoding the result fails, the
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
  try {
    const decoded = decodeBody(bytes, recvMode);
    reusable ||= recvMode !== "raw" && decoded.warning === undefined;
    body = encodeBody(await execute(decoded.value), sendMode, decoded.like);
  } catch (error) {
    options.onError?.(error);
    body = nulReply(sendMode);
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
