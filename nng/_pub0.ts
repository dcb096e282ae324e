/**
 * PUB0: every message to every subscriber pipe, no header, no filtering (subscribers filter).
 * Sending never waits: on a pipe whose queue is full (a slow subscriber) the oldest queued
 * message is discarded for the new one, as NNG does, and the others go on.
 *
 * @module
 */

import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import type { SendRecvMachine, SpMessage } from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

/** The pub0 state machine. */
export class Pub0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  #dropped = 0;

  constructor(core: SpCore, buffers: Buffers) {
    this.#core = core;
    this.#buffers = buffers;
  }

  /** Messages not sent to some subscriber because its queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {}

  message(pipe: Pipe): void {
    // A subscriber has nothing to say; NNG discards what one sends anyway.
    void pipe;
  }

  drained(): void {}

  room(): undefined {
    return undefined;
  }

  closing(): void {}

  send(message: SpMessage, _options: WaitOptions): Promise<void> {
    this.#core.checkOpen();
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
    return Promise.resolve();
  }

  recv(): Promise<SpMessage> {
    return Promise.reject(new TypeError("a pub socket cannot receive; use a sub socket"));
  }
}
