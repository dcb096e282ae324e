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
  type MachineDoor,
  MessageQueue,
  ReadyWaiters,
  type SpMessage,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

/** The pair0 state machine. */
export class Pair0 implements MachineDoor {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #received: MessageQueue;
  readonly #ready = new ReadyWaiters();
  #pipe: Pipe | undefined;
  // Taken back from a gone peer: sent to the next one before anything new.
  #backlog: Uint8Array[][] = [];

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
    if (!this.#core.closed) this.#backlog.push(...pipe.takeUnsent());
  }

  /** Sends what a gone peer left while the pipe takes more; true when none is left. */
  #resend(): boolean {
    const pipe = this.#pipe;
    let sent = 0;
    while (
      pipe !== undefined && sent < this.#backlog.length && pipe.queued < this.#buffers.send
    ) {
      pipe.send(this.#backlog[sent++]!);
    }
    if (sent > 0) this.#backlog = this.#backlog.slice(sent);
    return this.#backlog.length === 0;
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
    this.#backlog = [];
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
