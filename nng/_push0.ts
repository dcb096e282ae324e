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
import { ReadyWaiters, type SendRecvMachine, type SpMessage } from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";
import { RoundRobin } from "./_round_robin.ts";

/** The push0 state machine. */
export class Push0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #ready = new ReadyWaiters();
  readonly #pipes: RoundRobin;

  constructor(core: SpCore, buffers: Buffers) {
    this.#core = core;
    this.#pipes = new RoundRobin(buffers.send);
  }

  added(pipe: Pipe): Error | undefined {
    this.#pipes.add(pipe);
    this.#ready.wake();
    return undefined;
  }

  removed(pipe: Pipe): void {
    this.#pipes.remove(pipe, this.#core.closed);
  }

  message(): void {}

  drained(): void {
    this.#pipes.resend();
    this.#ready.wake();
  }

  room(): undefined {
    return undefined;
  }

  closing(reason: Error): void {
    this.#pipes.clear();
    this.#ready.fail(reason);
  }

  async send(message: SpMessage, options: WaitOptions): Promise<void> {
    while (true) {
      this.#core.checkOpen();
      const pipe = this.#pipes.next();
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
