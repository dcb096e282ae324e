/**
 * Pipes: one connection to a peer after the SP handshake, whatever its transport. A stream pipe
 * (tcp, ipc, tls+tcp) frames messages on a byte stream and batches small writes; the protocol
 * above sees only {@linkcode Pipe}.
 *
 * @module
 */

import { ConnectionError, describeNetworkError, TimeoutError } from "../errors.ts";
import {
  checkHeader,
  connectionHeader,
  encodeFrameHead,
  FrameDecoder,
  type SpFraming,
  type SpProtocol,
} from "./wire.ts";

/** NNG's handshake timeout. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
// Small on purpose: a large message is read straight into its own buffer once its length is
// known, so this bounds the copy made before that (and the memory an idle pipe holds).
const READ_BUFFER_BYTES = 16 * 1024;
// Queued frames up to this size are copied into one write (many small messages, one syscall).
const BATCH_BYTES = 64 * 1024;
const LEAD_BYTES = 32 * 1024;

/** One connection to a peer, as a protocol sees it. */
export interface Pipe {
  /** Unique in this process (NNG's pipe id; raw sockets put it in headers). */
  readonly id: number;
  /** `host:port`, or `ipc`. */
  readonly remote: string;
  readonly closed: boolean;
  /** Messages handed to {@linkcode Pipe.send} and not yet written to the connection. */
  readonly queued: number;
  /** Bytes handed to {@linkcode Pipe.send} and not yet written to the connection. */
  readonly queuedBytes: number;
  /** Settles when every message sent so far is written (or the pipe is gone). */
  flushed(): Promise<void>;
  /**
   * Discards the oldest message not yet being written (pub0 makes room this way, as NNG does);
   * false when there is none to discard.
   */
  dropOldest(): boolean;
  /**
   * Queues one message made of `parts` (header words, then the body); never waits. The parts
   * must stay unchanged until `written` is called (a large last part is written uncopied); it
   * gets an error if the pipe broke first.
   */
  send(parts: readonly Uint8Array[], written?: (error?: Error) => void): void;
  /**
   * After the pipe closed: the payloads of messages it never handed to its connection, taken
   * back once (push gives them to another puller). Empty where the transport keeps no queue.
   */
  takeUnsent(): Uint8Array[][];
  close(): void;
}

/** What a pipe reports to its socket. */
export interface PipeEvents {
  /** The handshake passed; return an Error to refuse the pipe (pair is already paired). */
  opened(pipe: Pipe): Error | undefined;
  message(pipe: Pipe, payload: Uint8Array): void;
  /** Everything queued on `pipe` was written. */
  drained(pipe: Pipe): void;
  closed(pipe: Pipe, reason: Error | undefined): void;
  /** A promise to wait on before reading more from `pipe` (backpressure), or undefined. */
  room(pipe: Pipe): Promise<void> | undefined;
  /** The socket's close: the pipe closes at once, even mid-handshake. */
  readonly stop: AbortSignal;
}

/** The byte stream under a stream pipe: a `Deno.Conn`, or a `node:tls` socket adapted to it. */
export interface ByteStream {
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

let nextPipeId = 1;

/** A fresh pipe id, unique in this process. */
export function newPipeId(): number {
  const id = nextPipeId;
  nextPipeId = nextPipeId >= 0x7fffffff ? 1 : nextPipeId + 1;
  return id;
}

/** A message waiting to be written: its frames, their size, and who waits for it. */
interface Queued {
  readonly frames: Uint8Array[];
  readonly bytes: number;
  readonly written: ((error?: Error) => void) | undefined;
}

/** One tcp, ipc or tls+tcp connection to a peer. */
class StreamPipe implements Pipe {
  readonly id: number = newPipeId();
  readonly remote: string;
  readonly #stream: ByteStream;
  readonly #framing: SpFraming;
  readonly #onDrained: () => void;
  readonly #onWriteError: (error: Error) => void;
  // Messages not yet handed to the connection; a batch being written is out of it.
  #queue: Queued[] = [];
  #queuedBytes = 0;
  // Messages still queued when the pipe closed: never written, so safe to send elsewhere.
  #unsent: Queued[] = [];
  #flushWaiters: (() => void)[] = [];
  #writing = false;
  #closed = false;

  constructor(
    stream: ByteStream,
    framing: SpFraming,
    remote: string,
    onDrained: () => void,
    onWriteError: (error: Error) => void,
  ) {
    this.#stream = stream;
    this.#framing = framing;
    this.remote = remote;
    this.#onDrained = onDrained;
    this.#onWriteError = onWriteError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  flushed(): Promise<void> {
    if (!this.#writing || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  send(parts: readonly Uint8Array[], written?: (error?: Error) => void): void {
    if (this.#closed) {
      written?.(new ConnectionError(`pipe ${this.id} to ${this.remote} is closed`));
      return;
    }
    let length = 0;
    for (const part of parts) length += part.length;
    const last = parts[parts.length - 1];
    let frames: Uint8Array[];
    if (last !== undefined && last.length > BATCH_BYTES) {
      // The frame head and the first LEAD_BYTES in one write, the rest as it is: no lone tiny
      // segment, no copy of a large body.
      const head = [...parts.slice(0, -1), last.subarray(0, LEAD_BYTES)];
      frames = [encodeFrameHead(this.#framing, length, head), last.subarray(LEAD_BYTES)];
    } else {
      frames = [encodeFrameHead(this.#framing, length, parts)];
    }
    const bytes = length + (this.#framing === "ipc" ? 9 : 8);
    this.#queue.push({ frames, bytes, written });
    this.#queuedBytes += bytes;
    if (!this.#writing) void this.#flush();
  }

  dropOldest(): boolean {
    const oldest = this.#queue.shift();
    if (oldest === undefined) return false;
    this.#queuedBytes -= oldest.bytes;
    oldest.written?.();
    return true;
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue;
        this.#queue = [];
        const frames: Uint8Array[] = [];
        let batchBytes = 0;
        for (const message of batch) {
          for (const frame of message.frames) frames.push(frame);
          batchBytes += message.bytes;
        }
        try {
          for (const bytes of coalesce(frames)) await this.#writeAll(bytes);
          this.#queuedBytes -= batchBytes;
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          for (const message of batch) message.written?.(failure);
          throw failure;
        }
        for (const message of batch) message.written?.();
      }
    } catch (error) {
      this.#failQueued(new ConnectionError(`pipe ${this.id} to ${this.remote} broke`));
      if (!this.#closed) {
        this.#onWriteError(error instanceof Error ? error : new Error(String(error)));
      }
      return;
    } finally {
      this.#writing = false;
      for (const wake of this.#flushWaiters.splice(0)) wake();
    }
    if (!this.#closed) this.#onDrained();
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      offset += await this.#stream.write(offset === 0 ? bytes : bytes.subarray(offset));
    }
  }

  takeUnsent(): Uint8Array[][] {
    const prefix = this.#framing === "ipc" ? 9 : 8;
    const unsent = this.#unsent.map((
      { frames },
    ) => [frames[0]!.subarray(prefix), ...frames.slice(1)]);
    this.#unsent = [];
    return unsent;
  }

  #failQueued(error: Error): void {
    const queue = this.#queue;
    for (const message of queue) this.#unsent.push(message);
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const message of queue) message.written?.(error);
    for (const wake of this.#flushWaiters.splice(0)) wake();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failQueued(new ConnectionError(`pipe ${this.id} to ${this.remote} is closed`));
    try {
      this.#stream.close();
    } catch {
      // already closed
    }
  }
}

/** Joins runs of small frames into single writes; large pieces go out as they are. */
function coalesce(frames: Uint8Array[]): Uint8Array[] {
  if (frames.length === 1) return frames;
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const end = () => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) {
      const joined = new Uint8Array(runBytes);
      let offset = 0;
      for (const frame of run) {
        joined.set(frame, offset);
        offset += frame.length;
      }
      out.push(joined);
    }
    run = [];
    runBytes = 0;
  };
  for (const frame of frames) {
    if (frame.length > BATCH_BYTES) {
      end();
      out.push(frame);
      continue;
    }
    if (runBytes + frame.length > BATCH_BYTES) end();
    run.push(frame);
    runBytes += frame.length;
  }
  end();
  return out;
}

/**
 * Exchanges SP headers on a fresh stream (sending ours at once, as NNG does), then reads
 * messages until the stream ends. Resolves when the pipe is gone.
 */
export async function runStreamPipe(
  stream: ByteStream,
  framing: SpFraming,
  remote: string,
  protocol: SpProtocol,
  maxMessageBytes: number,
  events: PipeEvents,
  allocate?: (length: number) => Uint8Array,
): Promise<void> {
  let reason: Error | undefined;
  let opened = false;
  // Closing the socket must not wait for a peer that never sends its SP header (a non-NNG
  // port): closing the stream ends the handshake's read at once.
  const onStop = () => pipe.close();
  const pipe: StreamPipe = new StreamPipe(stream, framing, remote, () => events.drained(pipe), (
    error,
  ) => {
    reason ??= new ConnectionError(`write failed: ${error.message}`, { cause: error });
    pipe.close();
  });
  events.stop.addEventListener("abort", onStop, { once: true });
  if (events.stop.aborted) pipe.close();
  try {
    await withHandshakeTimeout(stream, async () => {
      await stream.write(connectionHeader(protocol));
      const header = new Uint8Array(8);
      let filled = 0;
      while (filled < 8) {
        let n: number | null;
        try {
          n = await stream.read(header.subarray(filled));
        } catch (error) {
          // A reset mid-handshake is the peer's doing (the timeout, if it fired, says so above).
          throw new ConnectionError(
            `peer's connection failed after ${filled} of 8 header bytes: ${
              describeNetworkError(error)
            }`,
            { cause: error },
          );
        }
        if (n === null) {
          throw new ConnectionError(`peer closed after ${filled} of 8 SP header bytes`);
        }
        filled += n;
      }
      checkHeader(header, protocol);
    });
    const refused = events.opened(pipe);
    if (refused !== undefined) {
      reason = refused;
      return;
    }
    opened = true;
    const decoder = new FrameDecoder(framing, maxMessageBytes, allocate);
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const emit = (payload: Uint8Array) => events.message(pipe, payload);
    while (!pipe.closed) {
      const target = decoder.bodyTarget;
      const n = await stream.read(target ?? buffer);
      if (n === null) {
        if (decoder.midMessage) reason = new ConnectionError("peer closed mid-message");
        break;
      }
      if (target !== undefined) decoder.filled(n, emit);
      else decoder.push(buffer.subarray(0, n), emit);
      const room = events.room(pipe);
      if (room !== undefined) await room;
    }
  } catch (error) {
    // A TLS peer that exits without close_notify (nngcat does) ended the pipe, no more.
    const uncleanEof = error instanceof Deno.errors.UnexpectedEof ||
      (error instanceof Error && /close_notify/.test(error.message));
    if (!pipe.closed && !(opened && uncleanEof)) {
      reason ??= error instanceof Error ? error : new Error(String(error));
    }
  } finally {
    events.stop.removeEventListener("abort", onStop);
    pipe.close();
    if (opened || reason !== undefined) events.closed(pipe, reason);
  }
}

/** Runs `work`, closing the stream if it takes longer than NNG's handshake timeout. */
async function withHandshakeTimeout(stream: ByteStream, work: () => Promise<void>): Promise<void> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      stream.close();
    } catch {
      // closed
    }
  }, HANDSHAKE_TIMEOUT_MS);
  try {
    await work();
  } catch (error) {
    if (timedOut) {
      throw new TimeoutError(`no SP header from the peer within ${HANDSHAKE_TIMEOUT_MS} ms`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
