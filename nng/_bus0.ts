/**
 * BUS0: every message to every directly connected peer (never forwarded further), no header on
 * a cooked socket. A raw socket receives the pipe id as a 4-byte header and, sending, skips the
 * pipe a header names, so a device can relay between bus meshes without echoes. By default a
 * full pipe misses the message, as NNG drops it, and sending never waits; with
 * `slowPeer: "wait"` a send waits instead until every pipe it goes to has room, so the slowest
 * peer sets the pace and none misses a message.
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
import { HeldSends, type SlowReaderPolicy, someFull } from "./_held_sends.ts";
import type { Buffers } from "./_options.ts";

/**
 * What a bus socket does when a peer's pipe is full: `"drop"` the message for that peer (NNG's
 * bus0: the sender never waits), or `"wait"` until that pipe has written its queue. The
 * {@linkcode SlowReaderPolicy} of pub and bus, under the name of bus's `slowPeer` option.
 */
export type SlowPeerPolicy = SlowReaderPolicy;

/** The bus0 state machine. */
export class Bus0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #raw: boolean;
  readonly #received: MessageQueue;
  readonly #held: HeldSends;
  #dropped = 0;

  constructor(
    core: SpCore,
    buffers: Buffers,
    options: { raw: boolean; slowPeer?: SlowPeerPolicy },
  ) {
    this.#core = core;
    this.#buffers = buffers;
    this.#raw = options.raw;
    this.#received = new MessageQueue(buffers.recv);
    this.#held = new HeldSends(
      options.slowPeer ?? "drop",
      (message) => this.#deliver(message),
      (message) => someFull(core.pipes, buffers.send, this.#skipped(message)),
      "bus send: waiting for a slow peer",
    );
  }

  /** Messages not sent to some peer because its queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Sends that had to wait for a full peer pipe (counted as the wait begins). */
  get heldBack(): number {
    return this.#held.count;
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {
    this.#held.release();
  }

  message(pipe: Pipe, payload: Uint8Array): void {
    const message = bodyOnly(pipe, payload);
    this.#received.push(this.#raw ? { ...message, header: u32(pipe.id) } : message);
  }

  drained(): void {
    this.#held.release();
  }

  room(): Promise<void> | undefined {
    return this.#received.room();
  }

  closing(reason: Error): void {
    this.#held.fail(reason);
    this.#received.fail(reason);
  }

  send(message: SpMessage, options: WaitOptions): Promise<void> {
    this.#core.checkOpen();
    return this.#held.send(message, options);
  }

  recv(options: WaitOptions): Promise<SpMessage> {
    return this.#received.take(options, "bus recv");
  }

  /** The pipe a raw message's header names (it came from there), or 0. */
  #skipped(message: SpMessage): number {
    return this.#raw && message.header.length >= 4 ? readU32(message.header) : 0;
  }

  #deliver(message: SpMessage): void {
    const skip = this.#skipped(message);
    const parts = [message.body];
    for (const pipe of this.#core.pipes) {
      if (pipe.id === skip) continue;
      if (pipe.queued < this.#buffers.send) pipe.send(parts);
      else this.#dropped++;
    }
  }
}
