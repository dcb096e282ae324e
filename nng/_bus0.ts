/**
 * BUS0: every message to every directly connected peer (never forwarded further), no header on
 * a cooked socket. A raw socket receives the pipe id as a 4-byte header and, sending, skips the
 * pipe a header names, so a device can relay between bus meshes without echoes. A full pipe
 * misses the message, as NNG drops it.
 *
 * @module
 */

import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  bodyOnly,
  MessageQueue,
  readU32,
  type SendRecvMachine,
  type SpMessage,
  u32,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

/** The bus0 state machine. */
export class Bus0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #raw: boolean;
  readonly #received: MessageQueue;

  constructor(core: SpCore, buffers: Buffers, options: { raw: boolean }) {
    this.#core = core;
    this.#buffers = buffers;
    this.#raw = options.raw;
    this.#received = new MessageQueue(buffers.recv);
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {}

  message(pipe: Pipe, payload: Uint8Array): void {
    const message = bodyOnly(pipe, payload);
    this.#received.push(this.#raw ? { ...message, header: u32(pipe.id) } : message);
  }

  drained(): void {}

  room(): Promise<void> | undefined {
    return this.#received.room();
  }

  closing(reason: Error): void {
    this.#received.fail(reason);
  }

  send(message: SpMessage, _options: WaitOptions): Promise<void> {
    this.#core.checkOpen();
    const skip = this.#raw && message.header.length >= 4 ? readU32(message.header) : 0;
    const parts = [message.body];
    for (const pipe of this.#core.pipes) {
      if (pipe.id !== skip && pipe.queued < this.#buffers.send) pipe.send(parts);
    }
    return Promise.resolve();
  }

  recv(options: WaitOptions): Promise<SpMessage> {
    return this.#received.take(options, "bus recv");
  }
}
