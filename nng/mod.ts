/**
 * The NNG scalability protocols in nanonext's shape, wire-compatible with NNG, `nngcat`,
 * nanonext, pynng and mangos: `socket("pub" | "sub" | "push" | "pull" | "surveyor" |
 * "respondent" | "pair" | "pair1" | "poly" | "bus")`, `send`/`recv` with nanonext's modes,
 * `subscribe`, survey contexts, and `device()` to relay between raw sockets. Transports:
 * `tcp://`, `ipc://`, `ws://`, and over TLS `tls+tcp://` and `wss://` (server certificates are
 * verified unless `tls.insecure`; a `tls+tcp://` listener given `tls.ca` admits only clients
 * whose certificate that CA signed). Request/reply keeps its own door, `@x/rsock/reqrep`.
 *
 * @example Fan progress out to any number of monitors
 * ```ts
 * import { socket } from "@x/rsock/nng";
 *
 * await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0" });
 * await using sub = await socket("sub", { dial: pub.urls[0]!, subscribe: "progress" });
 * await sub.waitForPipes();
 * await pub.waitForPipes();
 * await pub.send("progress 50%", { mode: "raw" });
 * console.log(await sub.recv({ mode: "string", timeout: 1000 })); // "progress 50%"
 * ```
 *
 * @module
 */

import { SP_PROTOCOLS } from "../_internal/sp/wire.ts";
import {
  type Context,
  type Message,
  type RecvOptions,
  type SendOptions,
  Socket,
  type SocketOptions,
  type SocketProtocol,
  WIRE,
} from "./_socket.ts";

export {
  ConnectionError,
  MessageTooLargeError,
  ProtocolError,
  TimeoutError,
} from "../_internal/errors.ts";
export type { TlsOptions } from "../_internal/sp/transport.ts";
export type { RecvMode, SendMode, SerialConfig, SerialWriteOptions } from "../_internal/modes.ts";
export type { CoreOptions, WaitOptions } from "../_internal/sp/core.ts";
export { SpSocket } from "../_internal/sp/socket.ts";
export { DEFAULT_MAX_SP_MESSAGE_BYTES } from "../_internal/sp/core.ts";
export { DEFAULT_SURVEY_TIME } from "./_surveyor0.ts";
export type { SlowPeerPolicy } from "./_bus0.ts";
export type { SlowReaderPolicy } from "./_held_sends.ts";
export type { SlowSubscriberPolicy } from "./_pub0.ts";
export {
  Context,
  DEFAULT_MAX_MESSAGE_BYTES,
  type Message,
  type RecvOptions,
  type SendOptions,
  Socket,
  type SocketOptions,
  type SocketProtocol,
} from "./_socket.ts";

/**
 * Opens a socket of the NNG family, like nanonext's `socket(protocol, listen =, dial =)`: it
 * listens on and dials the given URLs before it resolves.
 *
 * @example
 * ```ts
 * import { socket } from "@x/rsock/nng";
 * await using pull = await socket("pull", { listen: "ipc:///tmp/work.ipc" });
 * await using push = await socket("push", { dial: "ipc:///tmp/work.ipc" });
 * await push.send(new Uint8Array([1, 2, 3]), { mode: "raw" });
 * const job = await pull.recv({ mode: "raw", timeout: 1000 }); // Uint8Array [1, 2, 3]
 * ```
 */
export async function socket(
  protocol: SocketProtocol,
  options: SocketOptions = {},
): Promise<Socket> {
  const sock = new Socket(protocol, options);
  await sock.start(options);
  return sock;
}

/**
 * Sends `data` on a socket or context, like nanonext's `send()`.
 *
 * @example
 * ```ts
 * import { send, socket } from "@x/rsock/nng";
 * await using pub = await socket("pub", { listen: "tcp://127.0.0.1:0" });
 * await send(pub, "weather sunny", { mode: "raw" });
 * ```
 */
export function send(
  target: Socket | Context,
  data: unknown,
  options: SendOptions = {},
): Promise<void> {
  return target.send(data, options);
}

/**
 * Receives on a socket or context, converting with `mode`, like nanonext's `recv()`.
 *
 * @example
 * ```ts
 * import { recv, socket } from "@x/rsock/nng";
 * await using pull = await socket("pull", { listen: "tcp://127.0.0.1:0" });
 * const text = await recv(pull, { mode: "string", timeout: 100 }).catch(() => undefined);
 * ```
 */
export function recv(target: Socket | Context, options: RecvOptions = {}): Promise<unknown> {
  return target.recv(options);
}

/**
 * Subscribes a sub socket to `topic`, like nanonext's `subscribe()`.
 *
 * @example
 * ```ts
 * import { socket, subscribe } from "@x/rsock/nng";
 * await using sub = await socket("sub", { dial: "tcp://127.0.0.1:5560" });
 * subscribe(sub, "weather");
 * ```
 */
export function subscribe(sub: Socket, topic: string | Uint8Array): void {
  sub.subscribe(topic);
}

/**
 * Unsubscribes a sub socket from `topic`, like nanonext's `unsubscribe()`.
 *
 * @example
 * ```ts
 * import { socket, unsubscribe } from "@x/rsock/nng";
 * await using sub = await socket("sub", { dial: "tcp://127.0.0.1:5560", subscribe: "a" });
 * unsubscribe(sub, "a"); // true
 * ```
 */
export function unsubscribe(sub: Socket, topic: string | Uint8Array): boolean {
  return sub.unsubscribe(topic);
}

const SENDS = new Set<SocketProtocol>([
  "pair",
  "pair1",
  "poly",
  "pub",
  "push",
  "surveyor",
  "respondent",
  "bus",
  "req",
  "rep",
]);
const RECEIVES = new Set<SocketProtocol>([
  "pair",
  "pair1",
  "poly",
  "sub",
  "pull",
  "surveyor",
  "respondent",
  "bus",
  "req",
  "rep",
]);

function wireOf(sock: Socket): { id: number; peer: number } {
  return SP_PROTOCOLS[WIRE[sock.protocol]];
}

/**
 * Relays messages between two raw sockets in both directions (where each can send and the other
 * receive) until either closes or `signal` aborts, like NNG's `nng_device()` and nanonext's
 * `device()`: a raw rep facing REQ clients with a raw req facing REP workers makes a broker; a raw
 * sub with a raw pub makes a forwarder.
 *
 * @example A REQ/REP broker
 * ```ts
 * import { device, socket } from "@x/rsock/nng";
 * await using front = await socket("rep", { raw: true, listen: "tcp://0.0.0.0:5555" });
 * await using back = await socket("req", { raw: true, listen: "tcp://0.0.0.0:5556" });
 * const controller = new AbortController();
 * const relaying = device(front, back, { signal: controller.signal });
 * controller.abort();
 * await relaying;
 * ```
 */
export async function device(
  a: Socket,
  b: Socket,
  options: { readonly signal?: AbortSignal } = {},
): Promise<void> {
  if (!a.raw || !b.raw) {
    throw new TypeError("device() relays between raw sockets: open both with { raw: true }");
  }
  if (wireOf(a).peer !== wireOf(b).id) {
    throw new TypeError(
      `device() needs peer protocols; ${a.protocol} does not talk to ${b.protocol}`,
    );
  }
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  const relay = async (from: Socket, to: Socket) => {
    if (!RECEIVES.has(from.protocol) || !SENDS.has(to.protocol)) return;
    while (!stop.signal.aborted && !from.closed && !to.closed) {
      let message: Message;
      try {
        message = await from.recvMessage({ signal: stop.signal });
        // Lent bytes are reused by the next receive, while a large body is still being written
        // uncopied: forward a copy.
        if (from.borrowBuffers) message = { ...message, body: message.body.slice() };
        await to.sendMessage(message, { signal: stop.signal });
      } catch (error) {
        if (stop.signal.aborted || from.closed || to.closed) break;
        // A message the other side cannot take (malformed raw header) is dropped, not fatal.
        if (error instanceof TypeError) throw error;
      }
    }
    stop.abort();
  };
  try {
    await Promise.all([relay(a, b), relay(b, a)]);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}
