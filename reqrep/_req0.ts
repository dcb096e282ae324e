/**
 * REQ0 on the SP core: request ids (socket-wide, top bit set, from a random start), resend of
 * unanswered requests, requeue at once on another pipe when one is lost, round-robin over
 * ready pipes (a request waits for one; a peer that stops reading gets no more). A reply
 * shorter than its 4-byte id drops the pipe; one with an unknown id is dropped.
 *
 * @module
 */

import { ProtocolError } from "../_internal/errors.ts";
import type { Pipe, SpCore } from "../_internal/sp/core.ts";
import type { ProtocolMachine } from "../_internal/sp/machine.ts";
import { readU32, u32 } from "../_internal/sp/machine.ts";

/** Requests waiting to be written on one pipe before it no longer counts as ready. */
const READY_QUEUE = 16;

/** One request in flight. */
export interface PendingRequest {
  readonly id: number;
  readonly idBytes: Uint8Array;
  readonly body: Uint8Array;
  pipe: Pipe | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly reply: PromiseWithResolvers<Uint8Array>;
}

/** The req0 state machine. */
export class Req0 implements ProtocolMachine {
  readonly #core: SpCore;
  readonly #resendInterval: number;
  readonly #pipes: Pipe[] = [];
  #nextPipe = 0;
  #nextId = (0x80000000 | Math.floor(Math.random() * 0x7fffffff)) >>> 0;
  readonly #pending = new Map<number, PendingRequest>();
  readonly #unsent: PendingRequest[] = [];

  constructor(core: SpCore, resendInterval: number) {
    this.#core = core;
    this.#resendInterval = resendInterval;
  }

  /** Starts a request: assigns an id and sends it on a pipe (or queues it until one comes). */
  start(body: Uint8Array): PendingRequest {
    this.#core.checkOpen();
    let id = this.#nextId;
    while (this.#pending.has(id)) id = id === 0xffffffff ? 0x80000000 : id + 1;
    this.#nextId = id === 0xffffffff ? 0x80000000 : id + 1;
    const pending: PendingRequest = {
      id,
      idBytes: u32(id),
      body,
      pipe: undefined,
      timer: undefined,
      reply: Promise.withResolvers<Uint8Array>(),
    };
    pending.reply.promise.catch(() => {});
    this.#pending.set(id, pending);
    this.#transmit(pending);
    return pending;
  }

  /** Forgets a request (cancelled, timed out, or superseded): a late reply is dropped. */
  cancel(pending: PendingRequest): void {
    clearTimeout(pending.timer);
    this.#pending.delete(pending.id);
    const at = this.#unsent.indexOf(pending);
    if (at !== -1) this.#unsent.splice(at, 1);
  }

  #pick(): Pipe | undefined {
    const count = this.#pipes.length;
    if (count === 0) return undefined;
    // Round-robin over ready pipes, as NNG sends only to a pipe that took its last request: a
    // peer that stopped reading gets no more. With none ready, the request waits for one.
    for (let tried = 0; tried < count; tried++) {
      const pipe = this.#pipes[this.#nextPipe % count]!;
      this.#nextPipe = (this.#nextPipe + 1) % count;
      if (pipe.queued < READY_QUEUE) return pipe;
    }
    return undefined;
  }

  /** Sends waiting requests, in order, while a pipe is ready. */
  #sendWaiting(): void {
    while (this.#unsent.length > 0) {
      const pending = this.#unsent[0]!;
      if (this.#pending.get(pending.id) !== pending) {
        this.#unsent.shift();
        continue;
      }
      const pipe = this.#pick();
      if (pipe === undefined) return;
      this.#unsent.shift();
      pending.pipe = pipe;
      // A broken pipe's close handler requeues what was on it.
      pipe.send([pending.idBytes, pending.body]);
      if (this.#resendInterval > 0) {
        pending.timer = setTimeout(() => {
          if (this.#pending.get(pending.id) === pending) this.#transmit(pending);
        }, this.#resendInterval);
      }
    }
  }

  /** Queues `pending` behind the requests already waiting and sends what a ready pipe takes. */
  #transmit(pending: PendingRequest): void {
    clearTimeout(pending.timer);
    pending.pipe = undefined;
    this.#unsent.push(pending);
    this.#sendWaiting();
  }

  added(pipe: Pipe): Error | undefined {
    this.#pipes.push(pipe);
    this.#sendWaiting();
    return undefined;
  }

  removed(pipe: Pipe): void {
    const at = this.#pipes.indexOf(pipe);
    if (at !== -1) this.#pipes.splice(at, 1);
    if (this.#core.closed) return;
    // NNG resends at once what was outstanding on a lost pipe, with the same id.
    for (const pending of this.#pending.values()) {
      if (pending.pipe === pipe) this.#transmit(pending);
    }
  }

  message(pipe: Pipe, payload: Uint8Array): void {
    if (payload.length < 4) {
      this.#core.report(
        new ProtocolError(
          `pipe ${pipe.id} (${pipe.remote}) sent a ${payload.length}-byte reply; a reply starts with a 4-byte request id (pipe dropped)`,
        ),
      );
      pipe.close();
      return;
    }
    const pending = this.#pending.get(readU32(payload));
    if (pending === undefined) return; // stale or unknown id: NNG drops it silently
    clearTimeout(pending.timer);
    this.#pending.delete(pending.id);
    pending.reply.resolve(payload.subarray(4));
  }

  drained(): void {
    this.#sendWaiting();
  }

  room(): undefined {
    return undefined;
  }

  closing(reason: Error): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reply.reject(reason);
    }
    this.#pending.clear();
    this.#unsent.length = 0;
  }
}
