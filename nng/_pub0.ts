/**
 * PUB0: every message to every subscriber pipe, no header, no filtering (subscribers filter).
 * By default sending never waits: on a pipe whose queue is full (a slow subscriber) the oldest
 * queued message is discarded for the new one, as NNG does, and the others go on. With
 * `slowSubscriber: "wait"` a send waits instead until every pipe has written its queue, so the
 * slowest subscriber sets the pace and none misses a message.
 *
 * @module
 */

import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import type { SendRecvMachine, SpMessage } from "../_internal/sp/machine.ts";
import { HeldSends, type SlowReaderPolicy, someFull } from "./_held_sends.ts";
import type { Buffers } from "./_options.ts";

/**
 * What a pub socket does when a subscriber's pipe is full: `"drop"` its oldest queued message
 * (NNG's pub0: the publisher never waits), or `"wait"` until that pipe has written its queue.
 * The {@linkcode SlowReaderPolicy} of pub and bus, under the name of pub's `slowSubscriber`
 * option.
 */
export type SlowSubscriberPolicy = SlowReaderPolicy;

/** The pub0 state machine. */
export class Pub0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #held: HeldSends;
  #dropped = 0;

  constructor(core: SpCore, buffers: Buffers, slowSubscriber: SlowSubscriberPolicy = "drop") {
    this.#core = core;
    this.#buffers = buffers;
    this.#held = new HeldSends(
      slowSubscriber,
      (message) => this.#deliver(message),
      () => someFull(core.pipes, buffers.send),
      "pub send: waiting for a slow subscriber",
    );
  }

  /** Messages not sent to some subscriber because its queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Sends that had to wait for a full subscriber pipe (counted as the wait begins). */
  get heldBack(): number {
    return this.#held.count;
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {
    this.#held.release();
  }

  message(pipe: Pipe): void {
    // A subscriber has nothing to say; NNG discards what one sends anyway.
    void pipe;
  }

  drained(): void {
    this.#held.release();
  }

  room(): undefined {
    return undefined;
  }

  closing(reason: Error): void {
    this.#held.fail(reason);
  }

  send(message: SpMessage, options: WaitOptions): Promise<void> {
    this.#core.checkOpen();
    return this.#held.send(message, options);
  }

  recv(): Promise<SpMessage> {
    return Promise.reject(new TypeError("a pub socket cannot receive; use a sub socket"));
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
