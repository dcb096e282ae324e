/**
 * Messages still queued for a peer that went away (never written to its connection), kept on
 * the socket and sent first, in order, to the next pipe that can take them — as NNG keeps unsent
 * messages on the socket. Shared by push0, raw req0, pair0 and monogamous pair1.
 *
 * @module
 */

import type { Pipe } from "../_internal/sp/core.ts";

/** What gone peers left, waiting for a ready pipe. */
export class Unsent {
  #messages: Uint8Array[][] = [];

  /** True when nothing waits. */
  get empty(): boolean {
    return this.#messages.length === 0;
  }

  /** Takes back what `pipe` never wrote. */
  keep(pipe: Pipe): void {
    for (const parts of pipe.takeUnsent()) this.#messages.push(parts);
  }

  /** Sends in order while `ready` gives a pipe; true when none is left. */
  flush(ready: () => Pipe | undefined): boolean {
    let sent = 0;
    for (; sent < this.#messages.length; sent++) {
      const pipe = ready();
      if (pipe === undefined) break;
      pipe.send(this.#messages[sent]!);
    }
    if (sent > 0) this.#messages = this.#messages.slice(sent);
    return this.#messages.length === 0;
  }

  /** Forgets what waits (the socket closes). */
  clear(): void {
    this.#messages = [];
  }
}
