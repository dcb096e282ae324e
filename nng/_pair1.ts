/**
 * PAIR1: one peer (or, polyamorous, many), with a 4-byte hop count in front of every message.
 * A message shorter than 4 bytes or with a hop count over 255 drops the pipe; one with more hops
 * than `ttl-max` (8) is discarded. Polyamorous mode (nanonext's `"poly"`) tags each received
 * message with its pipe and sends to the pipe a message names, or to the first one; a message
 * for a gone or full pipe is dropped, as NNG does, so one slow peer never blocks the others.
 * Monogamous, messages still queued for a peer that goes away go to the next peer first.
 *
 * @module
 */

import { ProtocolError } from "../_internal/errors.ts";
import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  MessageQueue,
  readU32,
  ReadyWaiters,
  type SendRecvMachine,
  type SpMessage,
  TTL_MAX,
  u32,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";
import { Unsent } from "./_unsent.ts";

/** The pair1 state machine, monogamous or polyamorous, cooked or raw. */
export class Pair1 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #raw: boolean;
  readonly #poly: boolean;
  readonly #received: MessageQueue;
  readonly #ready = new ReadyWaiters();
  readonly #pipes = new Map<number, Pipe>();
  // Monogamous: taken back from a gone peer, sent to the next one before anything new.
  readonly #unsent = new Unsent();

  constructor(core: SpCore, buffers: Buffers, options: { raw: boolean; poly: boolean }) {
    this.#core = core;
    this.#buffers = buffers;
    this.#raw = options.raw;
    this.#poly = options.poly;
    this.#received = new MessageQueue(buffers.recv);
  }

  added(pipe: Pipe): Error | undefined {
    if (!this.#poly && this.#pipes.size > 0) {
      const [paired] = this.#pipes.keys();
      return new ProtocolError(
        `pair1 is already paired with pipe ${paired}; refused ${pipe.remote}`,
      );
    }
    this.#pipes.set(pipe.id, pipe);
    this.#resend();
    this.#ready.wake();
    return undefined;
  }

  removed(pipe: Pipe): void {
    this.#pipes.delete(pipe.id);
    if (!this.#poly && !this.#core.closed) this.#unsent.keep(pipe);
  }

  /** Sends what a gone peer left while the pipe takes more; true when none is left. */
  #resend(): boolean {
    const pipe = this.#pipes.values().next().value;
    return this.#unsent.flush(() =>
      pipe !== undefined && pipe.queued < this.#buffers.send ? pipe : undefined
    );
  }

  message(pipe: Pipe, payload: Uint8Array): void {
    const hops = payload.length < 4 ? -1 : readU32(payload);
    if (hops < 0 || hops > 0xff) {
      this.#core.report(
        new ProtocolError(
          `pipe ${pipe.id} (${pipe.remote}) sent a pair1 message without a hop count ` +
            "(expected a 4-byte count below 256; pipe dropped)",
        ),
      );
      pipe.close();
      return;
    }
    if (hops > TTL_MAX) return; // bounced around too long: NNG discards it
    this.#received.push({
      header: payload.subarray(0, 4),
      body: payload.subarray(4),
      pipe: pipe.id,
    });
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
    let hops = 0;
    if (this.#raw) {
      if (message.header.length !== 4 || readU32(message.header) >= 0xff) {
        throw new ProtocolError(
          "a raw pair1 message needs a 4-byte hop count header below 255 (as received)",
        );
      }
      hops = readU32(message.header);
    }
    const parts = [u32(hops + 1), message.body];
    if (this.#poly) {
      this.#core.checkOpen();
      const pipe = message.pipe === 0
        ? this.#pipes.values().next().value
        : this.#pipes.get(message.pipe);
      if (pipe !== undefined && pipe.queued < this.#buffers.send) pipe.send(parts);
      return;
    }
    while (true) {
      this.#core.checkOpen();
      const pipe = this.#pipes.values().next().value;
      if (pipe !== undefined && this.#resend() && pipe.queued < this.#buffers.send) {
        pipe.send(parts);
        return;
      }
      await this.#ready.wait(options, "pair1 send");
    }
  }

  async recv(options: WaitOptions): Promise<SpMessage> {
    const message = await this.#received.take(options, "pair1 recv");
    return this.#raw ? message : { ...message, header: new Uint8Array(0) };
  }
}
