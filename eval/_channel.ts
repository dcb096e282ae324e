/**
 * The fast lane between the session and its worker: one `SharedArrayBuffer` carrying the code
 * of an evaluation to the worker and a small reply back, signalled with `Atomics` instead of
 * `postMessage`.
 *
 * Why: with a `postMessage` each way, the `1+1` round trip through `rsock serve` takes about 2×
 * the in-process one, and nearly all of the difference is the two thread hand-offs (a bare
 * `postMessage` ping-pong costs ~12 µs on a 2-core machine, where the whole in-process TCP
 * round trip is ~27 µs), mostly the time a sleeping thread takes to wake. So both sides watch
 * the buffer for a moment before they sleep: the worker for `SPIN_MS` after each answer (then
 * blocked on it for `HOT_MS`, then back to its event loop), the host for `HOST_SPIN_MS` after
 * each request; a watch that sees nothing turns watching off for `SPIN_BACKOFF` rounds (two
 * threads on one busy core must not hold it from each other). `session.evaluate("1+1")` in a
 * worker takes ~5 µs this way against ~18 µs by `postMessage` (in-process: ~3 µs). Anything
 * that does not fit — long code, a long reply, a value that is not a primitive, an evaluation
 * that called host functions (whose messages must arrive first) — goes by `postMessage`.
 *
 * @module
 */

/** Int32 slots of the header. */
export const SLOT = {
  /** Id of the latest request written (the worker watches it). */
  requestId: 0,
  /** Bytes of code in the request area. */
  requestLength: 1,
  /** Id of the latest request answered (the host watches it). */
  replyId: 2,
  /** Where the reply is: {@linkcode REPLY_IN_CHANNEL} or {@linkcode REPLY_BY_MESSAGE}. */
  replyKind: 3,
  /** Bytes of reply text in the reply area. */
  textLength: 4,
  /** Bit 0: error; bit 1: incomplete. */
  flags: 5,
  /** The value's kind: see {@linkcode VALUE}. */
  valueKind: 6,
  /** Bytes of a string value, after the text in the reply area. */
  valueLength: 7,
  /** 1 while the worker watches the channel (a request then needs no message to wake it). */
  watching: 8,
  /**
   * While an evaluation that may wait (`await`) runs: ticks of a timer in the worker. They stop
   * when the worker is stuck in synchronous code, go on while it waits in its event loop.
   */
  ticks: 9,
  /** 1 while an evaluation that may wait runs (then `ticks` is kept), else 0. */
  waiting: 10,
  /**
   * The id of the evaluation the worker runs, 0 between evaluations: a stop that finds another
   * one has a worker that did not start it yet, or is answering it.
   */
  running: 11,
} as const;

/** Kinds of values that travel in the channel; anything else makes the reply go by message. */
export const VALUE = { undefined: 0, null: 1, boolean: 2, number: 3, string: 4 } as const;

/** The reply is in the channel. */
export const REPLY_IN_CHANNEL = 1;
/** The reply comes by `postMessage` (it did not fit, or host calls went before it). */
export const REPLY_BY_MESSAGE = 2;

/** How long the worker watches the channel after an answer before it blocks on it. */
export const SPIN_MS = 0.2;
/** How long the worker then stays blocked on the channel before it returns to its loop. */
export const HOT_MS = 2;
/** How long the host watches for the reply before it waits for it asynchronously. */
export const HOST_SPIN_MS = 0.1;
/** The period of the worker's ticks (`SLOT.ticks`) while an evaluation that may wait runs. */
export const TICK_MS = 5;
/**
 * Rounds without watching after a watch that saw nothing. When the two threads share one
 * core (a busy machine), the watching side holds the core the other needs, and a round trip
 * grows from tens of µs to hundreds: after a miss, each side sleeps at once for this many
 * rounds, then tries watching again.
 */
export const SPIN_BACKOFF = 64;

/** Byte offset of the float64 that holds a number or boolean value. */
const NUMBER_OFFSET = 64;
const HEADER_BYTES = 128;
/** Largest code sent through the channel, in bytes. */
const REQUEST_CAPACITY = 65_536;
/** Largest reply (text and string value) sent through the channel, in bytes. */
const REPLY_CAPACITY = 65_536;
const REQUEST_OFFSET = HEADER_BYTES;
const REPLY_OFFSET = HEADER_BYTES + REQUEST_CAPACITY;

/** Views over one channel buffer. */
export interface Channel {
  readonly buffer: SharedArrayBuffer;
  readonly slots: Int32Array;
  readonly bytes: Uint8Array;
  readonly number: Float64Array;
}

/** A fresh channel, or views over the buffer of an existing one. */
export function channel(buffer = new SharedArrayBuffer(REPLY_OFFSET + REPLY_CAPACITY)): Channel {
  return {
    buffer,
    slots: new Int32Array(buffer, 0, 16),
    bytes: new Uint8Array(buffer),
    number: new Float64Array(buffer, NUMBER_OFFSET, 1),
  };
}

/** Watches `slots[slot]` until it is no longer `value` or `ms` pass; true when it changed. */
export function spinWhile(slots: Int32Array, slot: number, value: number, ms: number): boolean {
  const deadline = performance.now() + ms;
  while (Atomics.load(slots, slot) === value) {
    if (performance.now() > deadline) return false;
  }
  return true;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes `code` as request `id`; false when it does not fit (send it by message). */
export function writeRequest(ch: Channel, id: number, code: string): boolean {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: skip the encoding when it cannot fit.
  if (code.length * 3 > REQUEST_CAPACITY) return false;
  const { written } = encoder.encodeInto(
    code,
    ch.bytes.subarray(REQUEST_OFFSET, REQUEST_OFFSET + REQUEST_CAPACITY),
  );
  Atomics.store(ch.slots, SLOT.requestLength, written);
  Atomics.store(ch.slots, SLOT.requestId, id);
  return true;
}

/** The code of the latest request. */
export function readRequest(ch: Channel): string {
  const length = Atomics.load(ch.slots, SLOT.requestLength);
  return decoder.decode(ch.bytes.slice(REQUEST_OFFSET, REQUEST_OFFSET + length));
}

/** What a reply holds. */
export interface ChannelReply {
  readonly text: string;
  readonly error: boolean;
  readonly incomplete: boolean;
  readonly value: unknown;
}

function kindOf(value: unknown): number | undefined {
  if (value === undefined) return VALUE.undefined;
  if (value === null) return VALUE.null;
  if (typeof value === "boolean") return VALUE.boolean;
  if (typeof value === "number") return VALUE.number;
  if (typeof value === "string") return VALUE.string;
  return undefined;
}

/** Writes a reply into the channel; false when it does not fit. */
export function writeReply(ch: Channel, reply: ChannelReply): boolean {
  const kind = kindOf(reply.value);
  if (kind === undefined) return false;
  const valueText = kind === VALUE.string ? reply.value as string : "";
  if ((reply.text.length + valueText.length) * 3 > REPLY_CAPACITY) return false;
  const area = ch.bytes.subarray(REPLY_OFFSET, REPLY_OFFSET + REPLY_CAPACITY);
  const text = encoder.encodeInto(reply.text, area).written;
  const value = encoder.encodeInto(valueText, area.subarray(text)).written;
  if (kind === VALUE.number || kind === VALUE.boolean) ch.number[0] = Number(reply.value);
  Atomics.store(ch.slots, SLOT.textLength, text);
  Atomics.store(ch.slots, SLOT.valueLength, value);
  Atomics.store(ch.slots, SLOT.valueKind, kind);
  Atomics.store(ch.slots, SLOT.flags, (reply.error ? 1 : 0) | (reply.incomplete ? 2 : 0));
  return true;
}

/** Reads the reply written by {@linkcode writeReply}. */
export function readReply(ch: Channel): ChannelReply {
  const textLength = Atomics.load(ch.slots, SLOT.textLength);
  const valueLength = Atomics.load(ch.slots, SLOT.valueLength);
  const area = ch.bytes.subarray(REPLY_OFFSET, REPLY_OFFSET + textLength + valueLength);
  const flags = Atomics.load(ch.slots, SLOT.flags);
  const kind = Atomics.load(ch.slots, SLOT.valueKind);
  const value = kind === VALUE.null
    ? null
    : kind === VALUE.boolean
    ? ch.number[0] !== 0
    : kind === VALUE.number
    ? ch.number[0]
    : kind === VALUE.string
    ? decoder.decode(area.slice(textLength))
    : undefined;
  return {
    text: decoder.decode(area.slice(0, textLength)),
    error: (flags & 1) !== 0,
    incomplete: (flags & 2) !== 0,
    value,
  };
}
