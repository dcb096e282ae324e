/**
 * SUB0: keeps the messages whose body starts with a subscribed topic (prefix match, byte for
 * byte; the empty topic matches all), as NNG filters at the subscriber. No header. When the
 * application reads too slowly the oldest queued message is discarded, so a slow subscriber
 * never slows its publisher; with `slowSubscriber: "wait"` the pipes are no longer read instead
 * until the application makes room, so nothing is lost here and the connection carries the
 * backpressure to the publisher. A raw sub socket keeps everything.
 *
 * @module
 */

import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  bodyOnly,
  MessageQueue,
  type SendRecvMachine,
  type SpMessage,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";
import type { SlowSubscriberPolicy } from "./_pub0.ts";

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The sub0 state machine. */
export class Sub0 implements SendRecvMachine {
  readonly #raw: boolean;
  readonly #wait: boolean;
  readonly #received: MessageQueue;
  #topics: Uint8Array[] = [];
  #dropped = 0;

  constructor(
    _core: SpCore,
    buffers: Buffers,
    options: { raw: boolean; slowSubscriber?: SlowSubscriberPolicy },
  ) {
    this.#raw = options.raw;
    this.#wait = options.slowSubscriber === "wait";
    this.#received = new MessageQueue(buffers.recv);
  }

  /** Messages discarded because the application did not read them in time. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Adds a topic (a body prefix); subscribing twice is the same as once. */
  subscribe(topic: Uint8Array): void {
    if (!this.#topics.some((known) => sameBytes(known, topic))) this.#topics.push(topic.slice());
  }

  /** Removes a topic; false if it was not subscribed. */
  unsubscribe(topic: Uint8Array): boolean {
    const at = this.#topics.findIndex((known) => sameBytes(known, topic));
    if (at === -1) return false;
    this.#topics.splice(at, 1);
    return true;
  }

  #matches(body: Uint8Array): boolean {
    outer: for (const topic of this.#topics) {
      if (topic.length > body.length) continue;
      for (let i = 0; i < topic.length; i++) if (topic[i] !== body[i]) continue outer;
      return true;
    }
    return false;
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {}

  message(pipe: Pipe, payload: Uint8Array): void {
    if (!this.#raw && !this.#matches(payload)) return;
    // Waiting: one read's messages may go past the capacity; room() then stops further reads.
    if (this.#wait) this.#received.push(bodyOnly(pipe, payload));
    else if (this.#received.pushDroppingOldest(bodyOnly(pipe, payload))) this.#dropped++;
  }

  drained(): void {}

  room(): Promise<void> | undefined {
    return this.#wait ? this.#received.room() : undefined;
  }

  closing(reason: Error): void {
    this.#received.fail(reason);
  }

  send(): Promise<void> {
    return Promise.reject(new TypeError("a sub socket cannot send; use a pub socket"));
  }

  recv(options: WaitOptions): Promise<SpMessage> {
    return this.#received.take(options, "sub recv");
  }
}
