/**
 * PUB0: every message to every subscriber pipe, no header, no filtering (subscribers filter).
 * By default sending never waits: on a pipe whose queue is full (a slow subscriber) the oldest
 * queued message is discarded for the new one, as NNG does, and the others go on. With
 * `slowSubscriber: "wait"` a send waits instead until every pipe has written its queue, so the
 * slowest subscriber sets the pace and none misses a message.
 *
 * @module
 */

import { bounded, type Pipe, type SpCore, type WaitOptions } from "../_internal/sp/core.ts";
import type { SendRecvMachine, SpMessage } from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

/**
 * What a pub socket does when a subscriber's pipe is full: `"drop"` its oldest queued message
 * (NNG's pub0: the publisher never waits), or `"wait"` until that pipe has written its queue.
 */
export type SlowSubscriberPolicy = "drop" | "wait";

/** A send held back until every pipe has room. */
interface Held {
  readonly message: SpMessage;
  readonly done: PromiseWithResolvers<void>;
}

/** The pub0 state machine. */
export class Pub0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #wait: boolean;
  // Sends waiting for room, oldest first: they leave in call order.
  #held: Held[] = [];
  #heldBack = 0;
  #dropped = 0;
  #failed: Error | undefined;

  constructor(core: SpCore, buffers: Buffers, slowSubscriber: SlowSubscriberPolicy = "drop") {
    this.#core = core;
    this.#buffers = buffers;
    this.#wait = slowSubscriber === "wait";
  }

  /** Messages not sent to some subscriber because its queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Sends that had to wait for a full subscriber pipe (counted as the wait begins). */
  get heldBack(): number {
    return this.#heldBack;
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {
    this.#release();
  }

  message(pipe: Pipe): void {
    // A subscriber has nothing to say; NNG discards what one sends anyway.
    void pipe;
  }

  drained(): void {
    this.#release();
  }

  room(): undefined {
    return undefined;
  }

  closing(reason: Error): void {
    this.#failed ??= reason;
    for (const held of this.#held.splice(0)) held.done.reject(reason);
  }

  send(message: SpMessage, options: WaitOptions): Promise<void> {
    this.#core.checkOpen();
    if (!this.#wait || (this.#held.length === 0 && !this.#someFull())) {
      this.#deliver(message);
      return Promise.resolve();
    }
    this.#heldBack++;
    const held: Held = { message, done: Promise.withResolvers<void>() };
    this.#held.push(held);
    return bounded(held.done.promise, options, "pub send: waiting for a slow subscriber", () => {
      const at = this.#held.indexOf(held);
      if (at !== -1) this.#held.splice(at, 1);
    });
  }

  recv(): Promise<SpMessage> {
    return Promise.reject(new TypeError("a pub socket cannot receive; use a sub socket"));
  }

  #someFull(): boolean {
    for (const pipe of this.#core.pipes) {
      if (!pipe.closed && pipe.queued >= this.#buffers.send) return true;
    }
    return false;
  }

  /** Sends what was held back, in order, while every pipe has room. */
  #release(): void {
    while (this.#held.length > 0 && this.#failed === undefined && !this.#someFull()) {
      const held = this.#held.shift()!;
      this.#deliver(held.message);
      held.done.resolve();
    }
  }

  #deliver(message: SpMessage): void {
    const parts = [message.body];
    for (const pipe of this.#core.pipes) {
      if (pipe.queued >= this.#buffers.send) {
        this.#dropped++;
        // NNG makes room by discarding the oldest queued message: a slow subscriber skips
        // ahead to the newest. A WebSocket's buffer is out of reach: there the new one goes.
        if (!pipe.dropOldest()) continue;
      }
      pipe.send(parts);
    }
  }
}
