/**
 * Round-robin over the pipes that can take more, with the messages a gone peer left behind sent
 * first: what push0 and raw req0 share. A pipe is ready while fewer than `sendBuffer` messages
 * wait on it; messages still queued for a peer that goes away (never written to its connection)
 * move to the others in order, as NNG keeps them on the socket.
 *
 * @module
 */

import type { Pipe } from "../_internal/sp/core.ts";
import { Unsent } from "./_unsent.ts";

/** The pipes of a round-robin sender and the messages waiting for one of them. */
export class RoundRobin {
  readonly #order: Pipe[] = [];
  readonly #sendBuffer: number;
  readonly #unsent = new Unsent();
  #next = 0;

  /** `sendBuffer`: how many messages may wait on one pipe before it is not ready. */
  constructor(sendBuffer: number) {
    this.#sendBuffer = sendBuffer;
  }

  /** A new pipe: it takes its share of what is waiting. */
  add(pipe: Pipe): void {
    this.#order.push(pipe);
    this.resend();
  }

  /** A gone pipe: what it never wrote goes to the others, unless the socket is closing. */
  remove(pipe: Pipe, closing: boolean): void {
    const at = this.#order.indexOf(pipe);
    if (at !== -1) this.#order.splice(at, 1);
    if (closing) return;
    this.#unsent.keep(pipe);
    this.resend();
  }

  /** Forgets what is waiting (the socket closes). */
  clear(): void {
    this.#unsent.clear();
  }

  /** Sends what gone peers left, in order, while pipes are ready; true when none is left. */
  resend(): boolean {
    return this.#unsent.flush(() => this.#pick());
  }

  /** The pipe for a new message: none while older messages still wait or no pipe is ready. */
  next(): Pipe | undefined {
    return this.#unsent.empty || this.resend() ? this.#pick() : undefined;
  }

  #pick(): Pipe | undefined {
    const count = this.#order.length;
    for (let tried = 0; tried < count; tried++) {
      const pipe = this.#order[this.#next % count]!;
      this.#next = (this.#next + 1) % count;
      if (pipe.queued < this.#sendBuffer) return pipe;
    }
    return undefined;
  }
}
