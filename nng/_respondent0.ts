/**
 * RESPONDENT0: receives surveys with their backtrace (4-byte words up to one with the top bit
 * set, at most `ttl-max` 8) and sends each answer back on the pipe the survey came from, with the
 * backtrace in front, as NNG does. A survey without a complete backtrace drops its pipe; one with
 * too many hops is discarded. Each context answers the survey it last received. A raw socket
 * hands up the pipe id plus backtrace as header and routes what it sends by that header; the
 * same rules make a raw rep0 for devices. Answers queue per pipe up to {@linkcode QUEUE_BYTES}:
 * past that a peer that does not read gets its answers dropped (reported once) and its surveys
 * are no longer read until it does, where NNG would hold the answering context.
 *
 * @module
 */

import { ConnectionError, ProtocolError } from "../_internal/errors.ts";
import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  MessageQueue,
  NO_HEADER,
  QUEUE_BYTES,
  readU32,
  type SendRecvMachine,
  splitBacktrace,
  type SpMessage,
  u32,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

interface Received {
  readonly pipe: number;
  readonly backtrace: Uint8Array;
}

/** Answers one survey at a time. */
export class RespondContext {
  readonly #respondent: Respondent0;
  #survey: Received | undefined;

  /** @internal Use `Respondent0.context()`. */
  constructor(respondent: Respondent0) {
    this.#respondent = respondent;
  }

  /** Waits for the next survey; {@linkcode send} then answers it. */
  async recv(options: WaitOptions = {}): Promise<SpMessage> {
    const message = await this.#respondent.nextSurvey(options);
    this.#survey = { pipe: message.pipe, backtrace: message.header };
    return { ...message, header: NO_HEADER };
  }

  /** Answers the survey last received here (dropped if its surveyor is gone). */
  send(body: Uint8Array, _options: WaitOptions = {}): Promise<void> {
    const survey = this.#survey;
    if (survey === undefined) {
      return Promise.reject(
        new ProtocolError("no survey to answer: recv() one on this context first"),
      );
    }
    this.#survey = undefined;
    this.#respondent.answer(survey.pipe, [survey.backtrace, body]);
    return Promise.resolve();
  }
}

/** The respondent0 state machine. */
export class Respondent0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #raw: boolean;
  readonly #surveys: MessageQueue;
  readonly #pipes = new Map<number, Pipe>();
  // Pipes whose answer queue was full: reported once per pipe, not once per dropped answer.
  readonly #fullPipes = new WeakSet<Pipe>();
  #default: RespondContext | undefined;

  readonly #what: string;

  /** `what` names the messages in errors: `"survey"`, or `"request"` when serving as raw rep0. */
  constructor(core: SpCore, buffers: Buffers, options: { raw: boolean; what?: string }) {
    this.#core = core;
    this.#raw = options.raw;
    this.#what = options.what ?? "survey";
    this.#surveys = new MessageQueue(buffers.recv);
  }

  /** A new context, answering its own surveys. */
  context(): RespondContext {
    this.#core.checkOpen();
    return new RespondContext(this);
  }

  /** @internal The next survey, header = its backtrace. */
  nextSurvey(options: WaitOptions): Promise<SpMessage> {
    return this.#surveys.take(options, "respondent recv");
  }

  /** @internal Sends `parts` on pipe `id`, if it is still there. */
  answer(id: number, parts: Uint8Array[]): void {
    this.#core.checkOpen();
    const pipe = this.#pipes.get(id);
    if (pipe === undefined || pipe.closed) return;
    let size = 0;
    for (const part of parts) size += part.length;
    if (pipe.queuedBytes > 0 && pipe.queuedBytes + size > QUEUE_BYTES) {
      if (!this.#fullPipes.has(pipe)) {
        this.#fullPipes.add(pipe);
        this.#core.report(
          new ConnectionError(
            `pipe ${pipe.id} (${pipe.remote}) is not reading its answers: ${pipe.queuedBytes} ` +
              `bytes wait for it (limit ${QUEUE_BYTES}); its answers are dropped until it reads`,
          ),
        );
      }
      return;
    }
    pipe.send(parts);
  }

  added(pipe: Pipe): Error | undefined {
    this.#pipes.set(pipe.id, pipe);
    return undefined;
  }

  removed(pipe: Pipe): void {
    this.#pipes.delete(pipe.id);
  }

  message(pipe: Pipe, payload: Uint8Array): void {
    const split = splitBacktrace(pipe, payload, this.#what);
    if (split instanceof Error) {
      this.#core.report(split);
      if (split.dropPipe) pipe.close();
      return;
    }
    this.#surveys.push({ header: split.header, body: split.body, pipe: pipe.id });
  }

  drained(): void {}

  room(pipe: Pipe): Promise<void> | undefined {
    // A peer that does not read its answers gets no more of its surveys read until it does.
    if (pipe.queuedBytes >= QUEUE_BYTES) return pipe.flushed();
    return this.#surveys.room();
  }

  closing(reason: Error): void {
    this.#surveys.fail(reason);
  }

  send(message: SpMessage, options: WaitOptions): Promise<void> {
    if (this.#raw) {
      if (message.header.length < 4) {
        return Promise.reject(
          new ProtocolError(
            "a raw answer needs the header it was received with (pipe id, then backtrace)",
          ),
        );
      }
      this.answer(readU32(message.header), [message.header.subarray(4), message.body]);
      return Promise.resolve();
    }
    return (this.#default ??= this.context()).send(message.body, options);
  }

  async recv(options: WaitOptions): Promise<SpMessage> {
    if (this.#raw) {
      const message = await this.nextSurvey(options);
      return { ...message, header: concat(u32(message.pipe), message.header) };
    }
    return (this.#default ??= this.context()).recv(options);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
