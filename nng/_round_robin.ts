/**
 * Round-robin over the pipes that can take more, with the messages a gone peer left behind sent
 * first: what push0 and raw req0 share. A pipe is ready while fewer than `sendBuffer` messages
 * wait on it; messages still queued for a peer that goes away (never written to its connection)
 * move to the others in order, as NNG keeps them on the socket.
 *
 * @module
 */

import type { Pipe } from "../_internal/sp/core.ts";

/** The pipes of a round-robin sender and the messages waiting for one of them. */
export class RoundRobin {
  readonly #order: Pipe[] = [];
  readonly #sendBuffer: number;
  // Taken back from a gone peer, waiting for a ready pipe; sent before anything new.
  #backlog: Uint8Array[][] = [];
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
    for (const parts of pipe.takeUnsent()) this.#backlog.push(parts);
    this.resend();
  }

  /** Forgets what is waiting (the socket closes). */
  clear(): void {
    this.#backlog = [];
  }

  /** Sends what gone peers left, in order, while pipes are ready; true when none is left. */
  resend(): boolean {
    let sent = 0;
    for (; sent < this.#backlog.length; sent++) {
      const pipe = this.#pick();
      if (pipe === undefined) break;
      pipe.send(this.#backlog[sent]!);
    }
    if (sent > 0) this.#backlog = this.#backlog.slice(sent);
    return this.#backlog.length === 0;
  }

  /** The pipe for a new message: none while older messages still wait or no pipe is ready. */
  next(): Pipe | undefined {
    return this.#backlog.length === 0 || this.resend() ? this.#pick() : undefined;
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
