/**
 * PULL0: receives from every pusher, fairly as the pipes deliver; no header. When the
 * application reads too slowly the socket stops reading its pipes, so pushers wait (nothing is
 * lost).
 *
 * @module
 */

import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  bodyOnly,
  MessageQueue,
  type SendRecvMachine,
  type SpMessage,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

/** The pull0 state machine. */
export class Pull0 implements SendRecvMachine {
  readonly #received: MessageQueue;

  constructor(_core: SpCore, buffers: Buffers) {
    this.#received = new MessageQueue(buffers.recv);
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {}

  message(pipe: Pipe, payload: Uint8Array): void {
    this.#received.push(bodyOnly(pipe, payload));
  }

  drained(): void {}

  room(): Promise<void> | undefined {
    return this.#received.room();
  }

  closing(reason: Error): void {
    this.#received.fail(reason);
  }

  send(): Promise<void> {
    return Promise.reject(new TypeError("a pull socket cannot send; use a push socket"));
  }

  recv(options: WaitOptions): Promise<SpMessage> {
    return this.#received.take(options, "pull recv");
  }
}
