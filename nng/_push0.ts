/**
 * PUSH0: each message to one puller, round-robin over the pipes that can take more (a pipe is
 * ready while fewer than `sendBuffer` messages wait on it). With none ready, a send waits. No
 * header; push sockets receive nothing.
 *
 * @module
 */

import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import { type MachineDoor, ReadyWaiters, type SpMessage } from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

/** The push0 state machine. */
export class Push0 implements MachineDoor {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #ready = new ReadyWaiters();
  readonly #order: Pipe[] = [];
  #next = 0;

  constructor(core: SpCore, buffers: Buffers) {
    this.#core = core;
    this.#buffers = buffers;
  }

  added(pipe: Pipe): Error | undefined {
    this.#order.push(pipe);
    this.#ready.wake();
    return undefined;
  }

  removed(pipe: Pipe): void {
    const at = this.#order.indexOf(pipe);
    if (at !== -1) this.#order.splice(at, 1);
  }

  message(): void {}

  drained(): void {
    this.#ready.wake();
  }

  room(): undefined {
    return undefined;
  }

  closing(reason: Error): void {
    this.#ready.fail(reason);
  }

  #pick(): Pipe | undefined {
    const count = this.#order.length;
    for (let tried = 0; tried < count; tried++) {
      const pipe = this.#order[this.#next % count]!;
      this.#next = (this.#next + 1) % count;
      if (pipe.queued < this.#buffers.send) return pipe;
    }
    return undefined;
  }

  async send(message: SpMessage, options: WaitOptions): Promise<void> {
    while (true) {
      this.#core.checkOpen();
      const pipe = this.#pick();
      if (pipe !== undefined) {
        pipe.send([message.body]);
        return;
      }
      await this.#ready.wait(options, "push send");
    }
  }

  recv(): Promise<SpMessage> {
    return Promise.reject(new TypeError("a push socket cannot receive; use a pull socket"));
  }
}
