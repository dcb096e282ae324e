/**
 * PUSH0: each message to one puller, round-robin over the pipes that can take more (a pipe is
 * ready while fewer than `sendBuffer` messages wait on it). With none ready, a send waits. When a
 * puller goes away, the messages still queued for it (never written to its connection) go to
 * the others, so only what was on the wire is lost, as NNG's push loses only the message in
 * flight. No header; push sockets receive nothing.
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
  // Taken back from a gone puller, waiting for a ready pipe; sent before anything new.
  #backlog: Uint8Array[][] = [];
  #next = 0;

  constructor(core: SpCore, buffers: Buffers) {
    this.#core = core;
    this.#buffers = buffers;
  }

  added(pipe: Pipe): Error | undefined {
    this.#order.push(pipe);
    this.#resend();
    this.#ready.wake();
    return undefined;
  }

  removed(pipe: Pipe): void {
    const at = this.#order.indexOf(pipe);
    if (at !== -1) this.#order.splice(at, 1);
    if (this.#core.closed) return;
    for (const parts of pipe.takeUnsent()) this.#backlog.push(parts);
    this.#resend();
  }

  message(): void {}

  drained(): void {
    this.#resend();
    this.#ready.wake();
  }

  /** Sends what a gone puller left, in order, while pipes are ready; true when none is left. */
  #resend(): boolean {
    let sent = 0;
    for (; sent < this.#backlog.length; sent++) {
      const pipe = this.#pick();
      if (pipe === undefined) break;
      pipe.send(this.#backlog[sent]!);
    }
    if (sent > 0) this.#backlog = this.#backlog.slice(sent);
    return this.#backlog.length === 0;
  }

  room(): undefined {
    return undefined;
  }

  closing(reason: Error): void {
    this.#backlog = [];
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
      const pipe = this.#backlog.length === 0 || this.#resend() ? this.#pick() : undefined;
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
