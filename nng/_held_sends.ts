/**
 * The send path of the fan-out protocols (pub0, bus0) under their slow-reader policy: NNG's
 * "drop", or "wait", where a send that would find some pipe's queue full waits instead of
 * dropping, so the slowest reader sets the pace and none misses a message. NNG has no such
 * policy; its pub0 and bus0 always drop.
 *
 * @module
 */

import { bounded, type Pipe, type WaitOptions } from "../_internal/sp/core.ts";
import type { SpMessage } from "../_internal/sp/machine.ts";

/**
 * What a fan-out socket does when a reader's pipe is full: `"drop"`, as NNG (the sender never
 * waits), or `"wait"` until that pipe has written its queue. Pub's `slowSubscriber` option
 * ({@linkcode SlowSubscriberPolicy}) and bus's `slowPeer` ({@linkcode SlowPeerPolicy}) take it.
 */
export type SlowReaderPolicy = "drop" | "wait";

/** Checks a policy given by a caller; `name` is the option's name for the message. */
export function checkSlowReaderPolicy(value: unknown, name: string): SlowReaderPolicy {
  if (value === undefined) return "drop";
  if (value !== "drop" && value !== "wait") {
    throw new TypeError(`${name} must be "drop" or "wait"; got ${JSON.stringify(value)}`);
  }
  return value;
}

/** True when some pipe of `pipes` other than `skip` holds `capacity` messages or more. */
export function someFull(pipes: Iterable<Pipe>, capacity: number, skip = 0): boolean {
  for (const pipe of pipes) {
    if (pipe.id !== skip && !pipe.closed && pipe.queued >= capacity) return true;
  }
  return false;
}

/** A send held back until its pipes have room. */
interface Held {
  readonly message: SpMessage;
  readonly done: PromiseWithResolvers<void>;
}

/**
 * A fan-out socket's sends under its {@linkcode SlowReaderPolicy}: with `"drop"` each goes at
 * once (`deliver` drops for full pipes); with `"wait"` sends are held back while a pipe they go
 * to is full. They leave in call order (a send never overtakes one held before it), one given
 * up on (timeout, signal) is never sent, and close fails every one still held.
 */
export class HeldSends {
  readonly #deliver: (message: SpMessage) => void;
  readonly #blocked: (message: SpMessage) => boolean;
  readonly #what: string;
  readonly #wait: boolean;
  // Oldest first.
  #held: Held[] = [];
  #count = 0;
  #failed: Error | undefined;

  /**
   * `deliver` queues a message on its pipes; `blocked` tells whether one of them is full;
   * `what` names the wait in a timeout's message.
   */
  constructor(
    policy: SlowReaderPolicy,
    deliver: (message: SpMessage) => void,
    blocked: (message: SpMessage) => boolean,
    what: string,
  ) {
    this.#wait = policy === "wait";
    this.#deliver = deliver;
    this.#blocked = blocked;
    this.#what = what;
  }

  /** Sends that had to wait, counted as each wait begins. */
  get count(): number {
    return this.#count;
  }

  /**
   * Delivers `message` now when dropping, or when nothing is held and no pipe is full; else
   * waits its turn.
   */
  send(message: SpMessage, options: WaitOptions): Promise<void> {
    if (!this.#wait || (this.#held.length === 0 && !this.#blocked(message))) {
      this.#deliver(message);
      return Promise.resolve();
    }
    this.#count++;
    const held: Held = { message, done: Promise.withResolvers<void>() };
    this.#held.push(held);
    return bounded(held.done.promise, options, this.#what, () => {
      const at = this.#held.indexOf(held);
      if (at === -1) return;
      this.#held.splice(at, 1);
      // The next in line may go to other pipes (a raw bus skips one) that have room now.
      if (at === 0) this.release();
    });
  }

  /** Delivers what was held, in order, while its pipes have room (a pipe drained or left). */
  release(): void {
    while (this.#held.length > 0 && this.#failed === undefined) {
      const held = this.#held[0]!;
      if (this.#blocked(held.message)) return;
      this.#held.shift();
      this.#deliver(held.message);
      held.done.resolve();
    }
  }

  /** Fails every held send with `reason`; nothing is held after. */
  fail(reason: Error): void {
    this.#failed ??= reason;
    for (const held of this.#held.splice(0)) held.done.reject(reason);
  }
}
