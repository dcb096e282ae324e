/**
 * REP0 on the SP core: a request's backtrace (4-byte words up to one with the top bit set, at
 * most `ttl-max` 8) is kept to route its reply back to the pipe it came on. A request without a
 * complete backtrace drops its pipe; one with too many hops is discarded. Requests wait in a
 * bounded queue; when it is full the socket stops reading its pipes. Replies queue per pipe up
 * to `maxPendingBytes`: past that a slow reader's replies are dropped (reported once) and its
 * requests are no longer read, so a peer that never reads holds no context and stalls no one.
 *
 * @module
 */

import { ConnectionError } from "../_internal/errors.ts";
import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import type { ProtocolMachine } from "../_internal/sp/machine.ts";
import { MessageQueue, splitBacktrace, type SpMessage } from "../_internal/sp/machine.ts";

const MAX_QUEUED_REQUESTS = 4096;

/** A request as received: its backtrace, body and the pipe to answer on. */
export interface ReceivedRequest {
  readonly pipe: Pipe;
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

/** The rep0 state machine. */
export class Rep0 implements ProtocolMachine {
  readonly #core: SpCore;
  readonly #requests = new MessageQueue(MAX_QUEUED_REQUESTS);
  readonly #pipes = new Map<number, Pipe>();
  readonly #maxPendingBytes: number;
  // Pipes whose reply queue was full: reported once per pipe, not once per dropped reply.
  readonly #fullPipes = new WeakSet<Pipe>();
  /** Aborted when their pipe goes: made only for pipes someone watches. */
  readonly #gone = new Map<number, AbortController>();

  constructor(core: SpCore, maxPendingBytes: number) {
    this.#core = core;
    this.#maxPendingBytes = maxPendingBytes;
  }

  /**
   * Queues a reply on its pipe without waiting for the peer: resolves when it is written (or
   * the pipe broke), or returns undefined when the pipe's queue is full and it was dropped.
   */
  sendReply(pipe: Pipe, parts: readonly Uint8Array[]): Promise<void> | undefined {
    let size = 0;
    for (const part of parts) size += part.length;
    const queued = pipe.queuedBytes;
    if (queued > 0 && queued + size > this.#maxPendingBytes) {
      if (!this.#fullPipes.has(pipe)) {
        this.#fullPipes.add(pipe);
        this.#core.report(
          new ConnectionError(
            `pipe ${pipe.id} (${pipe.remote}) is not reading its replies: ${queued} bytes ` +
              `wait for it (maxPendingBytes ${this.#maxPendingBytes}); its replies are dropped ` +
              "until it reads",
          ),
        );
      }
      return undefined;
    }
    // A gone peer's reply is dropped, as NNG drops it.
    return new Promise((resolve) => pipe.send(parts, () => resolve()));
  }

  /** A signal that aborts once `pipe` is gone (at once if it is already). */
  watch(pipe: Pipe): AbortSignal {
    if (pipe.closed || !this.#pipes.has(pipe.id)) return AbortSignal.abort();
    let controller = this.#gone.get(pipe.id);
    if (controller === undefined) {
      controller = new AbortController();
      this.#gone.set(pipe.id, controller);
    }
    return controller.signal;
  }

  /** Takes the next request, waiting for one. */
  async next(options: WaitOptions): Promise<ReceivedRequest> {
    this.#core.checkOpen();
    const message: SpMessage = await this.#requests.take(options, "rep recv");
    const pipe = this.#pipes.get(message.pipe) ?? closedPipe(message.pipe);
    return { pipe, header: message.header, body: message.body };
  }

  added(pipe: Pipe): Error | undefined {
    this.#pipes.set(pipe.id, pipe);
    return undefined;
  }

  removed(pipe: Pipe): void {
    this.#pipes.delete(pipe.id);
    this.#gone.get(pipe.id)?.abort();
    this.#gone.delete(pipe.id);
  }

  message(pipe: Pipe, payload: Uint8Array): void {
    const split = splitBacktrace(pipe, payload, "request");
    if (split instanceof Error) {
      this.#core.report(split);
      if (split.dropPipe) pipe.close();
      return;
    }
    this.#requests.push({ header: split.header, body: split.body, pipe: pipe.id });
  }

  drained(): void {}

  room(pipe: Pipe): Promise<void> | undefined {
    if (pipe.queuedBytes > 0 && pipe.queuedBytes >= this.#maxPendingBytes) {
      // A peer that does not read its replies gets no more of its requests read (or run)
      // until it does; the others are read as before.
      return pipe.flushed();
    }
    return this.#requests.room();
  }

  closing(reason: Error): void {
    this.#requests.fail(reason);
    for (const controller of this.#gone.values()) controller.abort();
    this.#gone.clear();
  }
}

/** The stand-in for a pipe that went away while its request waited: replies to it are dropped. */
function closedPipe(id: number): Pipe {
  return {
    id,
    remote: "gone",
    closed: true,
    queued: 0,
    queuedBytes: 0,
    flushed: () => Promise.resolve(),
    dropOldest: () => false,
    takeUnsent: () => [],
    send(_parts, written) {
      written?.();
    },
    close() {},
  };
}
