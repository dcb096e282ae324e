/**
 * SURVEYOR0: a survey goes to every respondent with a 4-byte survey id (top bit set) in front;
 * answers carrying the id of a survey still open on some context are kept, any other answer (a
 * late one, after the survey time, or to a superseded survey) is dropped, and answers not read
 * when the survey time ends are discarded with it, as NNG does. Each context runs one survey at
 * a time; a new survey on it replaces the last. A raw socket sends the header it is given and
 * receives every answer with its 4-byte id as header.
 *
 * @module
 */

import { ProtocolError, TimeoutError } from "../_internal/errors.ts";
import type { Pipe, SpCore, WaitOptions } from "../_internal/sp/core.ts";
import {
  MessageQueue,
  NO_HEADER,
  readU32,
  type SendRecvMachine,
  type SpMessage,
  u32,
} from "../_internal/sp/machine.ts";
import type { Buffers } from "./_options.ts";

/**
 * NNG's default survey time, in ms.
 *
 * @example
 * ```ts
 * import { DEFAULT_SURVEY_TIME, socket } from "@x/rsock/nng";
 * await using surveyor = await socket("surveyor", {
 *   listen: "tcp://127.0.0.1:0",
 *   surveyTime: DEFAULT_SURVEY_TIME / 4, // answers within 250 ms
 * });
 * ```
 */
export const DEFAULT_SURVEY_TIME = 1000;

/** One survey at a time: its id, its deadline and the answers received for it. */
export class SurveyContext {
  readonly #surveyor: Surveyor0;
  #id = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #answers: MessageQueue;
  #expired = false;

  /** @internal Use `Surveyor0.context()`. */
  constructor(surveyor: Surveyor0, capacity: number) {
    this.#surveyor = surveyor;
    this.#answers = new MessageQueue(capacity);
  }

  /** @internal Starts a survey with `id`, replacing this context's last one. */
  start(id: number, surveyTime: number): void {
    this.stop();
    this.#answers.failReaders(new ProtocolError("the survey was replaced by a new one"));
    this.#answers.clear();
    this.#id = id;
    this.#expired = false;
    this.#timer = setTimeout(() => this.#expire(), surveyTime);
  }

  /** @internal Ends the survey window (time over, or the socket closing). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#id !== 0) this.#surveyor.forget(this.#id);
  }

  #expire(): void {
    this.stop();
    this.#expired = true;
    this.#answers.failReaders(new TimeoutError("the survey time is over"));
    // As NNG: the survey is over, answers not read by then go with it.
    this.#answers.clear();
  }

  /** @internal An answer for this context's survey. */
  deliver(message: SpMessage): void {
    // NNG keeps only what fits; later answers to a flooded survey are dropped.
    if (!this.#answers.full) this.#answers.push(message);
  }

  /** @internal Fails waiting readers when the socket closes. */
  fail(reason: Error): void {
    clearTimeout(this.#timer);
    this.#answers.fail(reason);
  }

  /** Sends a survey to every respondent; answers arrive through {@linkcode recv}. */
  send(body: Uint8Array, options: WaitOptions = {}): Promise<void> {
    return this.#surveyor.survey(this, body, options);
  }

  /**
   * The next answer to this context's survey. Fails with a {@linkcode TimeoutError} once the
   * survey time is over: answers not read by then are discarded, as NNG does.
   */
  recv(options: WaitOptions = {}): Promise<SpMessage> {
    if (this.#id === 0) {
      return Promise.reject(new ProtocolError("no survey sent on this context: send() one first"));
    }
    if (this.#expired) {
      return Promise.reject(new TimeoutError("the survey time is over"));
    }
    return this.#answers.take(options, "surveyor recv");
  }
}

/** The surveyor0 state machine. */
export class Surveyor0 implements SendRecvMachine {
  readonly #core: SpCore;
  readonly #buffers: Buffers;
  readonly #raw: boolean;
  readonly #open = new Map<number, SurveyContext>();
  readonly #contexts = new Set<SurveyContext>();
  readonly #rawAnswers: MessageQueue;
  #nextId = (0x80000000 | Math.floor(Math.random() * 0x7fffffff)) >>> 0;
  #default: SurveyContext | undefined;
  /** Milliseconds a survey stays open. */
  surveyTime: number;

  constructor(core: SpCore, buffers: Buffers, options: { raw: boolean; surveyTime: number }) {
    this.#core = core;
    this.#buffers = buffers;
    this.#raw = options.raw;
    this.surveyTime = options.surveyTime;
    this.#rawAnswers = new MessageQueue(buffers.recv);
  }

  /** A new context: its own survey, answers and deadline. */
  context(): SurveyContext {
    this.#core.checkOpen();
    const context = new SurveyContext(this, this.#buffers.recv);
    this.#contexts.add(context);
    return context;
  }

  get #defaultContext(): SurveyContext {
    return this.#default ??= this.context();
  }

  /** @internal Sends a survey for `context`. */
  survey(context: SurveyContext, body: Uint8Array, _options: WaitOptions): Promise<void> {
    this.#core.checkOpen();
    let id = this.#nextId;
    while (this.#open.has(id)) id = id === 0xffffffff ? 0x80000000 : id + 1;
    this.#nextId = id === 0xffffffff ? 0x80000000 : id + 1;
    context.start(id, this.surveyTime);
    this.#open.set(id, context);
    this.#broadcast([u32(id), body]);
    return Promise.resolve();
  }

  /** @internal Closes survey `id` to answers. */
  forget(id: number): void {
    this.#open.delete(id);
  }

  #broadcast(parts: Uint8Array[]): void {
    for (const pipe of this.#core.pipes) {
      if (pipe.queued < this.#buffers.send) pipe.send(parts);
    }
  }

  added(): Error | undefined {
    return undefined;
  }

  removed(): void {}

  message(pipe: Pipe, payload: Uint8Array): void {
    if (payload.length < 4) {
      this.#core.report(
        new ProtocolError(
          `pipe ${pipe.id} (${pipe.remote}) sent a ${payload.length}-byte answer; an answer ` +
            "starts with a 4-byte survey id (pipe dropped)",
        ),
      );
      pipe.close();
      return;
    }
    const header = payload.subarray(0, 4);
    const message = { header, body: payload.subarray(4), pipe: pipe.id };
    if (this.#raw) {
      if (!this.#rawAnswers.full) this.#rawAnswers.push(message);
      return;
    }
    this.#open.get(readU32(header))?.deliver({ ...message, header: NO_HEADER });
  }

  drained(): void {}

  room(): undefined {
    return undefined;
  }

  closing(reason: Error): void {
    for (const context of this.#contexts) context.fail(reason);
    this.#open.clear();
    this.#rawAnswers.fail(reason);
  }

  send(message: SpMessage, options: WaitOptions): Promise<void> {
    if (this.#raw) {
      this.#core.checkOpen();
      if (message.header.length < 4) {
        return Promise.reject(
          new ProtocolError("a raw survey needs its 4-byte survey id as header"),
        );
      }
      this.#broadcast([message.header, message.body]);
      return Promise.resolve();
    }
    return this.#defaultContext.send(message.body, options);
  }

  recv(options: WaitOptions): Promise<SpMessage> {
    if (this.#raw) return this.#rawAnswers.take(options, "surveyor recv");
    return this.#defaultContext.recv(options);
  }
}
