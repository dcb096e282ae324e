/**
 * The two queues of one eval-server client: lines waiting to be evaluated (read side, held
 * back by TCP flow control) and replies waiting to be written (cut off past a bound).
 *
 * @module
 */

import type { ClientSettings, SessionStatus } from "./_protocol.ts";

const encoder = new TextEncoder();
/** How long a client cut off for being too slow gets to take its error line. */
const CUT_OFF_GRACE_MS = 1000;

/** A line waiting to be served; `note` is what a control request found when it arrived. */
export interface Waiting {
  readonly line: string;
  readonly bytes: number;
  readonly note?: SessionStatus;
}

/** Lines of one client waiting to be evaluated, counted in bytes. */
export class Backlog {
  readonly #lines: Waiting[] = [];
  #bytes = 0;
  #ended = false;
  #wakeServer: (() => void) | undefined;
  #wakeReader: (() => void) | undefined;

  push(waiting: Waiting): void {
    this.#lines.push(waiting);
    this.#bytes += waiting.bytes;
    this.#wakeServer?.();
  }

  /** The next line to serve, or undefined once the connection ended and all are served. */
  async next(): Promise<Waiting | undefined> {
    while (this.#lines.length === 0) {
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => this.#wakeServer = resolve);
      this.#wakeServer = undefined;
    }
    return this.#lines.shift();
  }

  /** A line was served: its bytes leave the backlog. */
  done(bytes: number): void {
    this.#bytes -= bytes;
    this.#wakeReader?.();
  }

  /** Waits until the backlog is under `limit` bytes (or `stop()` says to give up). */
  async below(limit: number, stop: () => boolean): Promise<void> {
    while (this.#bytes >= limit && !stop() && !this.#ended) {
      await new Promise<void>((resolve) => this.#wakeReader = resolve);
      this.#wakeReader = undefined;
    }
  }

  end(): void {
    this.#ended = true;
    this.#wakeServer?.();
    this.#wakeReader?.();
  }
}

/**
 * One connected client: its write queue, bounded in bytes not yet taken by the network (a
 * client that does not read is cut off), and what the server keeps about it.
 */
export class Client {
  readonly name: string;
  readonly conn: Deno.Conn;
  readonly #maxUnsent: number;
  #writing: Promise<void> = Promise.resolve();
  /** Bytes handed to write() and not yet taken by the network. */
  #unsent = 0;
  #cutOff: ReturnType<typeof setTimeout> | undefined;
  closed = false;
  current: AbortController | undefined;
  /** Aborts once the connection has ended: nobody is left to read replies. */
  readonly gone = new AbortController();
  /** The peer's `host:port`. */
  readonly remote: string;
  /** The `<<<id=…>>>` name it last gave, if any. */
  id: string | undefined;
  /** The settings of its last transaction (under its `<<<id=…>>>` name, if it gave one). */
  settings: ClientSettings | undefined;

  constructor(name: string, conn: Deno.Conn, maxUnsent: number) {
    this.name = name;
    this.conn = conn;
    this.#maxUnsent = maxUnsent;
    const remote = conn.remoteAddr as Deno.NetAddr;
    this.remote = `${remote.hostname}:${remote.port}`;
  }

  /** How the session's status and `rsock serve` name this client's evaluations. */
  get door(): string {
    return `eval ${this.id ?? this.name} (${this.remote})`;
  }

  write(text: string): Promise<void> {
    if (text === "" || this.closed || this.#cutOff !== undefined) return this.#writing;
    const bytes = encoder.encode(text);
    if (this.#unsent > 0 && this.#unsent + bytes.length > this.#maxUnsent) {
      this.#cut(
        `Error: too slow: ${this.#unsent} bytes not yet read by ${this.name}, bound ` +
          `${this.#maxUnsent}; closing\r\n`,
      );
      return this.#writing;
    }
    this.#unsent += bytes.length;
    this.#writing = this.#writing.then(async () => {
      try {
        if (!this.closed && this.#cutOff === undefined) await this.#send(bytes);
      } finally {
        this.#unsent -= bytes.length;
      }
    });
    return this.#writing;
  }

  async #send(bytes: Uint8Array): Promise<void> {
    try {
      let offset = 0;
      while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
    } catch {
      // A client that vanished: its reader sees the end and cleans up.
      this.close();
    }
  }

  /**
   * Drops what is queued for a client that does not read, sends it `reason` if it can take it
   * within a grace period, and closes it.
   */
  #cut(reason: string): void {
    this.#cutOff = setTimeout(() => this.close(), CUT_OFF_GRACE_MS);
    const bytes = encoder.encode(reason);
    this.#writing = this.#writing.then(() => this.closed ? undefined : this.#send(bytes))
      .then(() => this.close());
  }

  flushed(): Promise<void> {
    return this.#writing;
  }

  close(): void {
    clearTimeout(this.#cutOff);
    if (this.closed) return;
    this.closed = true;
    // The running transaction is left to finish (or to the time limit): in-process, giving up
    // on it would let the next one overlap it.
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}
