/**
 * Raw REQ0, for devices: sends each message (its header already holds the backtrace and request
 * id) to one REP peer, round-robin over ready pipes, and hands up every reply with its first
 * 4-byte word as header. No request ids, resends or matching: the device's other side (a raw
 * rep0) routes replies by their backtrace. Requests still queued for a worker that goes away
 * (never written to it) go to the others, so its clients need not wait for their resend.
 * Cooked REQ/REP live in `@x/rsock/reqrep`.
 *
 * @module
 */

import { ProtocolError } from "../_internal/errors.ts";
import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  MessageQueue,
  ReadyWaiters,
  type SendRecvMachine,
  type SpMessage,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";
import { RoundRobin } from "./_round_robin.ts";

/** The raw req0 state machine. */
export class RawReq0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #ready = new ReadyWaiters();
  readonly #replies: MessageQueue;
  readonly #pipes: RoundRobin;

  constructor(core: SpCore, buffers: Buffers) {
    this.#core = core;
    this.#pipes = new RoundRobin(buffers.send);
    this.#replies = new MessageQueue(buffers.recv);
  }

  added(pipe: Pipe): Error | undefined {
    this.#pipes.add(pipe);
    this.#ready.wake();
    return undefined;
  }

  removed(pipe: Pipe): void {
    this.#pipes.remove(pipe, this.#core.closed);
  }

  message(pipe: Pipe, payload: Uint8Array): void {
    if (payload.length < 4) {
      this.#core.report(
        new ProtocolError(
          `pipe ${pipe.id} (${pipe.remote}) sent a ${payload.length}-byte reply; a reply starts ` +
            "with a 4-byte backtrace word (pipe dropped)",
        ),
      );
      pipe.close();
      return;
    }
    this.#replies.push({
      header: payload.subarray(0, 4),
      body: payload.subarray(4),
      pipe: pipe.id,
    });
  }

  drained(): void {
    this.#pipes.resend();
    this.#ready.wake();
  }

  room(): Promise<void> | undefined {
    return this.#replies.room();
  }

  closing(reason: Error): void {
    this.#pipes.clear();
    this.#ready.fail(reason);
    this.#replies.fail(reason);
  }

  async send(message: SpMessage, options: WaitOptions): Promise<void> {
    while (true) {
      this.#core.checkOpen();
      const pipe = this.#pipes.next();
      if (pipe !== undefined) {
        pipe.send([message.header, message.body]);
        return;
      }
      await this.#ready.wait(options, "req send");
    }
  }

  recv(options: WaitOptions): Promise<SpMessage> {
    return this.#replies.take(options, "req recv");
  }
}
