/**
 * The socket server's framings, and newline framing as a pure state machine: bytes in,
 * complete lines out, with a size limit enforced before any line is buffered. No I/O here, so
 * tests can feed it any split.
 *
 * @module
 */

/** How the server cuts incoming bytes into messages. */
export type Framing = "chunk" | "line";

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** What the splitter reports for each piece of input. */
export type LineEvent =
  | { kind: "line"; data: Uint8Array }
  | { kind: "too-large"; bytes: number };

/**
 * Splits a byte stream into lines (without `\n` or a trailing `\r`). A line longer than
 * `maxLineBytes` is dropped whole and reported once; the splitter resynchronises at the next
 * newline, so one bad line never corrupts the next.
 */
export class LineSplitter {
  readonly maxLineBytes: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #discarding = false;
  #discarded = 0;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Bytes held for an unfinished line. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Feeds a chunk; `emit` is called for every complete line or refusal, in order. */
  push(chunk: Uint8Array, emit: (event: LineEvent) => void): void {
    let start = 0;
    let newline = chunk.indexOf(NEWLINE, start);
    while (newline !== -1) {
      const length = newline - start;
      if (this.#discarding) {
        emit({ kind: "too-large", bytes: this.#discarded + length });
        this.#discarding = false;
        this.#discarded = 0;
      } else if (this.#pendingBytes + stripLength(chunk, start, newline) > this.maxLineBytes) {
        emit({ kind: "too-large", bytes: this.#pendingBytes + length });
        this.#reset();
      } else {
        emit({ kind: "line", data: this.#take(chunk.subarray(start, newline)) });
      }
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    const rest = chunk.length - start;
    if (rest === 0) return;
    if (this.#discarding) {
      this.#discarded += rest;
    } else if (this.#pendingBytes + rest > this.maxLineBytes + 1) {
      // +1 leaves room for a '\r' that a CRLF peer sends before the newline.
      this.#discarding = true;
      this.#discarded = this.#pendingBytes + rest;
      this.#reset();
    } else {
      this.#pending.push(chunk.slice(start));
      this.#pendingBytes += rest;
    }
  }

  /**
   * Ends the stream: returns the unfinished last line (a peer that closed mid-line), or
   * `undefined` when there is none or it was being discarded.
   */
  finish(): Uint8Array | undefined {
    if (this.#discarding || this.#pendingBytes === 0) {
      this.#discarding = false;
      this.#reset();
      return undefined;
    }
    const rest = this.#take(new Uint8Array(0));
    return rest;
  }

  #reset(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** Joins pending bytes with `tail` into one owned line, minus a trailing '\r'. */
  #take(tail: Uint8Array): Uint8Array {
    let line: Uint8Array;
    if (this.#pendingBytes === 0) {
      line = tail.slice();
    } else {
      line = new Uint8Array(this.#pendingBytes + tail.length);
      let offset = 0;
      for (const part of this.#pending) {
        line.set(part, offset);
        offset += part.length;
      }
      line.set(tail, offset);
      this.#reset();
    }
    const last = line.length - 1;
    return last >= 0 && line[last] === CARRIAGE_RETURN ? line.subarray(0, last) : line;
  }
}

/** Length of chunk[start, end) without a trailing '\r'. */
function stripLength(chunk: Uint8Array, start: number, end: number): number {
  return end > start && chunk[end - 1] === CARRIAGE_RETURN ? end - start - 1 : end - start;
}
