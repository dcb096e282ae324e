/**
 * The family socket: the SP socket (`_internal/sp/socket.ts`) driving one protocol machine,
 * with nanonext's shape (`send`, `recv`, `subscribe`, `context`, survey time) on top.
 *
 * @module
 */

import { ProtocolError } from "../_internal/errors.ts";
import {
  type CoreOptions,
  DEFAULT_MAX_SP_MESSAGE_BYTES,
  SpCore,
  type WaitOptions,
} from "../_internal/sp/core.ts";
import { BufferPool } from "../_internal/sp/buffer_pool.ts";
import type { SendRecvMachine, SpMessage } from "../_internal/sp/machine.ts";
import {
  decodeReceived,
  type RecvOptions,
  type SendOptions as SpSendOptions,
  SpSocket,
} from "../_internal/sp/socket.ts";
import type { SpProtocol } from "../_internal/sp/wire.ts";
import { checkSerialConfig, encodeBody, type SerialConfig } from "../_internal/modes.ts";
import { Bus0, type SlowPeerPolicy } from "./_bus0.ts";
import { checkSlowReaderPolicy } from "./_held_sends.ts";
import type { Buffers } from "./_options.ts";
import { Pair0 } from "./_pair0.ts";
import { Pair1 } from "./_pair1.ts";
import { Pub0, type SlowSubscriberPolicy } from "./_pub0.ts";
import { Pull0 } from "./_pull0.ts";
import { Push0 } from "./_push0.ts";
import { RawReq0 } from "./_req0_raw.ts";
import { type RespondContext, Respondent0 } from "./_respondent0.ts";
import { Sub0 } from "./_sub0.ts";
import { DEFAULT_SURVEY_TIME, type SurveyContext, Surveyor0 } from "./_surveyor0.ts";

export type { RecvOptions } from "../_internal/sp/socket.ts";

/**
 * A protocol by nanonext's name: `"pair"` (pair0), `"pair1"`, `"poly"` (pair1 polyamorous),
 * `"pub"`, `"sub"`, `"push"`, `"pull"`, `"surveyor"`, `"respondent"`, `"bus"`; `"req"` and
 * `"rep"` here only raw, for devices (cooked request/reply is `@x/rsock/reqrep`).
 */
export type SocketProtocol =
  | "pair"
  | "pair1"
  | "poly"
  | "pub"
  | "sub"
  | "push"
  | "pull"
  | "surveyor"
  | "respondent"
  | "bus"
  | "req"
  | "rep";

const WAITS_FOR_PIPE = new Set<SocketProtocol>(["push", "pair", "pair1", "req"]);

/** The SP protocol on the wire for each of nanonext's socket names. */
export const WIRE: Record<SocketProtocol, SpProtocol> = {
  pair: "pair0",
  pair1: "pair1",
  poly: "pair1",
  pub: "pub0",
  sub: "sub0",
  push: "push0",
  pull: "pull0",
  surveyor: "surveyor0",
  respondent: "respondent0",
  bus: "bus0",
  req: "req0",
  rep: "rep0",
};

/**
 * The default largest message accepted from the wire, 64 MiB.
 *
 * @deprecated Use `DEFAULT_MAX_SP_MESSAGE_BYTES`, the same value under a name of its own:
 * `@x/rsock/socket`'s `DEFAULT_MAX_MESSAGE_BYTES` is a plain socket's 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_SP_MESSAGE_BYTES } from "@x/rsock/nng";
 * const limit = DEFAULT_MAX_SP_MESSAGE_BYTES; // 67108864, what this name also holds
 * ```
 */
export const DEFAULT_MAX_MESSAGE_BYTES: number = DEFAULT_MAX_SP_MESSAGE_BYTES;

/** Options of {@linkcode socket}. */
export interface SocketOptions extends CoreOptions {
  /**
   * Raw mode (NNG's `nng_*_open_raw`): headers are handed up and taken as given, for devices.
   * @default {false}
   */
  readonly raw?: boolean;
  /** Surveyor: milliseconds a survey takes answers. @default {1000} */
  readonly surveyTime?: number;
  /** Sub: topics to subscribe to at once (see {@linkcode Socket.subscribe}). */
  readonly subscribe?: string | Uint8Array | readonly (string | Uint8Array)[];
  /**
   * Messages waiting on one pipe before it counts as full: pub then drops that pipe's oldest,
   * bus and poly the new one; push, pair and raw req wait or pick another pipe. Writes go out
   * while the program waits (on I/O or a timer): a publisher that sends more than this in one
   * loop without ever yielding fills every queue and its subscribers miss messages (unless
   * `slowSubscriber`, or bus's `slowPeer`, is `"wait"`).
   * @default {16} for push, pair, pair1 and raw req; {1024} for pub, bus and poly
   */
  readonly sendBuffer?: number;
  /**
   * Pub and sub: what a slow subscriber costs. `"drop"`, as NNG: a pub send to a subscriber
   * whose pipe is full (`sendBuffer` messages not yet written) discards that pipe's oldest
   * message and goes on, and a sub whose application has `recvBuffer` messages unread discards
   * its oldest, so a slow subscriber never slows the publisher. `"wait"`: a pub send waits
   * until that pipe has written its queue, and a sub stops reading its pipes until the
   * application reads, so with both ends waiting every subscriber gets every message at the
   * pace of the slowest (`rsock pub` without `--drop-slow`, and `rsock sub`); a subscriber that
   * stops reading then stops the publisher. A sub on `ws://` or `wss://` cannot stop reading
   * (the WebSocket API has no pause): there a message that finds its queue full is discarded.
   * @default {"drop"}
   */
  readonly slowSubscriber?: SlowSubscriberPolicy;
  /**
   * Bus: what a slow peer costs. `"drop"`, as NNG: a send to a peer whose pipe is full
   * (`sendBuffer` messages not yet written) skips that peer and goes on, so a slow peer never
   * slows the sender. `"wait"`: a send waits until every pipe it goes to has room, so every
   * peer gets every message at the pace of the slowest (`rsock bus` without `--drop-slow`); a
   * peer that stops reading then stops the sender. Receiving, a bus socket whose application
   * has `recvBuffer` messages unread stops reading its pipes, whatever the policy.
   * @default {"drop"}
   */
  readonly slowPeer?: SlowPeerPolicy;
  /**
   * Messages received and not yet read: sub then drops the oldest (with `slowSubscriber:
   * "wait"` it stops reading instead), the others stop reading their pipes until there is room.
   * @default {1024}
   */
  readonly recvBuffer?: number;
  /**
   * A received message's bytes stay valid only until the next receive on this socket, when
   * their buffer is reused for a later message instead of allocating fresh memory for each
   * (measured: about half of 1 MiB push/pull throughput is fresh allocation). @default {false}
   */
  readonly borrowBuffers?: boolean;
}

/** Options of {@linkcode Socket.send}. */
export interface SendOptions extends SpSendOptions {
  /** Poly: the pipe to send to (a received message's `pipe`); 0 or absent picks the first. */
  readonly pipe?: number;
}

/** A received message: SP header words (raw sockets), body, and the pipe it came on. */
export type Message = SpMessage;

/** Encodes a topic: strings as UTF-8 without a terminating NUL, bytes as they are. */
export function topicBytes(topic: string | Uint8Array): Uint8Array {
  return typeof topic === "string" ? new TextEncoder().encode(topic) : topic;
}

function checkCount(value: number | undefined, name: string, fallback: number): number {
  const count = value ?? fallback;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(`${name} must be a whole number >= 1, got ${count}`);
  }
  return count;
}

/**
 * A surveyor or respondent context: its own survey (or the survey it answers), so one socket
 * can run several at once, like nanonext's `context()`.
 *
 * @example
 * ```ts
 * import { socket } from "@x/rsock/nng";
 * await using surveyor = await socket("surveyor", { listen: "tcp://127.0.0.1:0" });
 * const ctx = surveyor.context();
 * await ctx.send("status?", { mode: "raw" });
 * const first = await ctx.recv({ mode: "string" }).catch(() => undefined); // undefined: nobody answered in time
 * ```
 */
export class Context {
  readonly #inner: SurveyContext | RespondContext;
  readonly #serial: SerialConfig;

  /** @internal Use `socket.context()`. */
  constructor(inner: SurveyContext | RespondContext, serial: SerialConfig = {}) {
    this.#inner = inner;
    this.#serial = serial;
  }

  /** Sends bytes: a survey (surveyor) or the answer to the last survey received (respondent). */
  sendBytes(body: Uint8Array, options: WaitOptions = {}): Promise<void> {
    return this.#inner.send(body, options);
  }

  /** Receives the next answer (surveyor) or survey (respondent). */
  recvMessage(options: WaitOptions = {}): Promise<Message> {
    return this.#inner.recv(options);
  }

  /** Encodes `data` in `mode` and sends it, as nanonext's `send()` on a context. */
  send(data: unknown, options: SendOptions = {}): Promise<void> {
    return this.sendBytes(
      encodeBody(data, options.mode ?? "serial", undefined, this.#serial),
      options,
    );
  }

  /** Receives and decodes, as nanonext's `recv()` on a context. */
  async recv(options: RecvOptions = {}): Promise<unknown> {
    return decodeReceived((await this.recvMessage(options)).body, options, this.#serial).value;
  }
}

/**
 * One socket of the NNG family: listens and dials on `tcp://`, `ipc://`, `ws://`,
 * `tls+tcp://` and `wss://`, speaking one protocol. Open it with {@linkcode socket}.
 *
 * @example Work spread over pullers, each job to one of them
 * ```ts
 * import { socket } from "@x/rsock/nng";
 * await using push = await socket("push", { listen: "tcp://127.0.0.1:0" });
 * await using pull = await socket("pull", { dial: push.urls[0]! });
 * await push.sendBytes(new TextEncoder().encode("job 1"));
 * const { body } = await pull.recvMessage({ timeout: 1000 });
 * ```
 */
export class Socket extends SpSocket implements AsyncIterable<Message> {
  /** nanonext's protocol name. */
  readonly protocol: SocketProtocol;
  /** True for a raw socket (headers visible, for devices). */
  readonly raw: boolean;
  /**
   * True when received bytes are lent (the `borrowBuffers` option): valid only until the next
   * receive, so whatever forwards them must copy them first.
   */
  readonly borrowBuffers: boolean;
  readonly #machine: SendRecvMachine;
  readonly #pool: BufferPool | undefined;
  #lent: Uint8Array | undefined;

  /** @internal Use {@linkcode socket}. */
  constructor(protocol: SocketProtocol, options: SocketOptions) {
    if (!Object.hasOwn(WIRE, protocol)) {
      throw new TypeError(
        `protocol must be one of ${Object.keys(WIRE).join(", ")}; got ${JSON.stringify(protocol)}`,
      );
    }
    const raw = options.raw ?? false;
    if ((protocol === "req" || protocol === "rep") && !raw) {
      throw new TypeError(
        `a cooked ${protocol} socket lives in @x/rsock/reqrep; here only { raw: true } (devices)`,
      );
    }
    const buffers: Buffers = {
      // A sender that waits for a ready pipe keeps few messages on one: a puller that dies
      // loses what waited on it (as NNG's push loses its one in flight), and a slow one gets
      // skipped sooner. Droppers (pub, bus, poly) queue deep so bursts are not cut.
      send: checkCount(options.sendBuffer, "sendBuffer", WAITS_FOR_PIPE.has(protocol) ? 16 : 1024),
      recv: checkCount(options.recvBuffer, "recvBuffer", 1024),
    };
    const slowSubscriber = checkSlowReaderPolicy(options.slowSubscriber, "slowSubscriber");
    const slowPeer = checkSlowReaderPolicy(options.slowPeer, "slowPeer");
    const surveyTime = options.surveyTime ?? DEFAULT_SURVEY_TIME;
    if (!(surveyTime >= 0)) throw new RangeError(`surveyTime must be >= 0, got ${surveyTime}`);
    const serial = checkSerialConfig(options.serial);
    const core = new SpCore(WIRE[protocol], options);
    const pool = options.borrowBuffers === true ? new BufferPool() : undefined;
    if (pool !== undefined) core.useAllocator((length) => pool.allocate(length));
    const machines: Record<SocketProtocol, () => SendRecvMachine> = {
      pair: () => new Pair0(core, buffers),
      pair1: () => new Pair1(core, buffers, { raw, poly: false }),
      poly: () => new Pair1(core, buffers, { raw, poly: true }),
      pub: () => new Pub0(core, buffers, slowSubscriber),
      sub: () => new Sub0(core, buffers, { raw, slowSubscriber }),
      push: () => new Push0(core, buffers),
      pull: () => new Pull0(core, buffers),
      surveyor: () => new Surveyor0(core, buffers, { raw, surveyTime }),
      respondent: () => new Respondent0(core, buffers, { raw }),
      bus: () => new Bus0(core, buffers, { raw, slowPeer }),
      req: () => new RawReq0(core, buffers),
      rep: () => new Respondent0(core, buffers, { raw: true, what: "request" }),
    };
    const machine = machines[protocol]();
    core.attach(machine);
    super(core, serial);
    this.protocol = protocol;
    this.raw = raw;
    this.borrowBuffers = pool !== undefined;
    this.#machine = machine;
    this.#pool = pool;
    const topics = options.subscribe;
    if (topics !== undefined) {
      for (const topic of Array.isArray(topics) ? topics : [topics]) this.subscribe(topic);
    }
  }

  /**
   * Messages a pub (or bus) socket did not give some subscriber (or peer) because its queue was
   * full, or a sub socket discarded because they were not read in time.
   */
  get dropped(): number {
    const machine = this.#machine;
    return machine instanceof Pub0 || machine instanceof Sub0 || machine instanceof Bus0
      ? machine.dropped
      : 0;
  }

  /**
   * Sends a pub socket with `slowSubscriber: "wait"` (or a bus socket with `slowPeer: "wait"`)
   * held back because a reader's pipe was full, counted as each wait begins (so right after a
   * `send` call it tells whether that send waits).
   */
  get heldBack(): number {
    const machine = this.#machine;
    return machine instanceof Pub0 || machine instanceof Bus0 ? machine.heldBack : 0;
  }

  /** Sends one message of raw bytes (with `header` on raw sockets). */
  sendBytes(
    body: Uint8Array,
    options: WaitOptions & { readonly header?: Uint8Array; readonly pipe?: number } = {},
  ): Promise<void> {
    return this.#machine.send({
      header: options.header ?? new Uint8Array(0),
      body,
      pipe: options.pipe ?? 0,
    }, options);
  }

  /** Sends a whole message as received (header included), as a device forwards it. */
  sendMessage(message: Message, options: WaitOptions = {}): Promise<void> {
    return this.#machine.send(message, options);
  }

  /** Receives the next message, header (raw sockets) and pipe included. */
  async recvMessage(options: WaitOptions = {}): Promise<Message> {
    if (this.#pool === undefined) return this.#machine.recv(options);
    if (this.#lent !== undefined) this.#pool.release(this.#lent);
    this.#lent = undefined;
    const message = await this.#machine.recv(options);
    this.#lent = message.body;
    return message;
  }

  /**
   * Encodes `data` in `mode` and sends it, as nanonext's `send()`. In `"raw"` mode a string is
   * sent as its UTF-8 bytes and a closing NUL (`"hi"` → `hi\0`), nanonext's string convention;
   * the `rsock` commands send a line without it (`hi`), as nngcat does. R reads either with
   * `recv(s, mode = "character")`; {@linkcode Socket.sendBytes} sends bytes as they are.
   */
  send(data: unknown, options: SendOptions = {}): Promise<void> {
    return this.sendBytes(
      encodeBody(data, options.mode ?? "serial", undefined, this.serial),
      options,
    );
  }

  /** Receives and decodes, as nanonext's `recv()`. */
  async recv(options: RecvOptions = {}): Promise<unknown> {
    return decodeReceived((await this.recvMessage(options)).body, options, this.serial).value;
  }

  /**
   * Sub: receives messages whose body starts with `topic` (a string is matched as its UTF-8
   * bytes, without a NUL; `""` matches everything), as nanonext's `subscribe()`.
   */
  subscribe(topic: string | Uint8Array): void {
    this.#sub("subscribe").subscribe(topicBytes(topic));
  }

  /** Sub: stops receiving `topic`; false if it was not subscribed. */
  unsubscribe(topic: string | Uint8Array): boolean {
    return this.#sub("unsubscribe").unsubscribe(topicBytes(topic));
  }

  #sub(what: string): Sub0 {
    if (!(this.#machine instanceof Sub0)) {
      throw new TypeError(`${what} works on a sub socket, not ${this.protocol}`);
    }
    return this.#machine;
  }

  /** Surveyor: milliseconds a survey takes answers (nanonext's `survey_time()`). */
  get surveyTime(): number {
    return this.#machine instanceof Surveyor0 ? this.#machine.surveyTime : 0;
  }

  set surveyTime(ms: number) {
    if (!(this.#machine instanceof Surveyor0)) {
      throw new TypeError(`survey time is set on a surveyor socket, not ${this.protocol}`);
    }
    if (!(ms >= 0)) throw new RangeError(`surveyTime must be >= 0, got ${ms}`);
    this.#machine.surveyTime = ms;
  }

  /** Surveyor, respondent: a new context with its own survey state (nanonext's `context()`). */
  context(): Context {
    const machine = this.#machine;
    if (this.raw || !(machine instanceof Surveyor0 || machine instanceof Respondent0)) {
      throw new ProtocolError(
        `contexts exist on cooked surveyor and respondent sockets (req/rep: @x/rsock/reqrep), not ${
          this.raw ? "raw " : ""
        }${this.protocol}`,
      );
    }
    return new Context(machine.context(), this.serial);
  }

  /** Receives messages until the socket closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    while (!this.closed) {
      try {
        yield await this.recvMessage();
      } catch (error) {
        if (this.closed) return;
        throw error;
      }
    }
  }
}
