/**
 * PAIR0: one peer at a time, no header. A second pipe is refused while one is connected; a send
 * waits until the peer can take more. Messages still queued for a peer that goes away (never
 * written to its connection) go to the next peer first, as NNG keeps them on the socket.
 *
 * @module
 */

import { ProtocolError } from "../_internal/errors.ts";
import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  bodyOnly,
  MessageQueue,
  ReadyWaiters,
  type SendRecvMachine,
  type SpMessage,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";
import { Unsent } from "./_unsent.ts";

/** The pair0 state machine. */
export class Pair0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #received: MessageQueue;
  readonly #ready = new ReadyWaiters();
  #pipe: Pipe | undefined;
  readonly #unsent = new Unsent();

  constructor(core: SpCore, buffers: Buffers) {
    this.#core = core;
    this.#buffers = buffers;
    this.#received = new MessageQueue(buffers.recv);
  }

  added(pipe: Pipe): Error | undefined {
    if (this.#pipe !== undefined) {
      return new ProtocolError(
        `${this.#core.protocol} is already paired with pipe ${this.#pipe.id}; refused ${pipe.remote}`,
      );
    }
    this.#pipe = pipe;
    this.#resend();
    this.#ready.wake();
    return undefined;
  }

  removed(pipe: Pipe): void {
    if (this.#pipe !== pipe) return;
    this.#pipe = undefined;
    if (!this.#core.closed) this.#unsent.keep(pipe);
  }

  /** Sends what a gone peer left while the pipe takes more; true when none is left. */
  #resend(): boolean {
    const pipe = this.#pipe;
    return this.#unsent.flush(() =>
      pipe !== undefined && pipe.queued < this.#buffers.send ? pipe : undefined
    );
  }

  message(pipe: Pipe, payload: Uint8Array): void {
    this.#received.push(bodyOnly(pipe, payload));
  }

  drained(): void {
    this.#resend();
    this.#ready.wake();
  }

  room(): Promise<void> | undefined {
    return this.#received.room();
  }

  closing(reason: Error): void {
    this.#unsent.clear();
    this.#received.fail(reason);
    this.#ready.fail(reason);
  }

  async send(message: SpMessage, options: WaitOptions): Promise<void> {
    while (true) {
      this.#core.checkOpen();
      const pipe = this.#pipe;
      if (pipe !== undefined && this.#resend() && pipe.queued < this.#buffers.send) {
        pipe.send([message.body]);
        return;
      }
      await this.#ready.wait(options, "pair0 send");
    }
  }

  recv(options: WaitOptions): Promise<SpMessage> {
    return this.#received.take(options, "pair0 recv");
  }
}
