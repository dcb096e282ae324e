/**
 * Error lines of a long-running command, bounded. A door reports what went wrong with one
 * connection (`pipe 7 dropped: …`); printed one line each, a flood of connections becomes a
 * flood of stderr, which fills a log file, or blocks the whole process when stderr is a pipe
 * nobody drains fast enough.
 *
 * @module
 */

/** Lines printed per window before the rest are only counted. */
export const DEFAULT_REPORT_BURST = 10;
/** The window, in ms. */
export const DEFAULT_REPORT_WINDOW_MS = 10_000;
// A suppressed line is kept (as the example in the summary) up to this many characters.
const SAMPLE_CHARS = 200;

/** Options of {@linkcode ReportLimiter}. */
export interface ReportLimiterOptions {
  /** Lines printed in one window; later ones are counted. @default {10} */
  readonly burst?: number;
  /** The window in ms, from its first line. @default {10000} */
  readonly windowMs?: number;
}

/**
 * Prints at most `burst` lines per window; the rest are counted and summed up in one line
 * when the window ends (or at {@linkcode ReportLimiter.close}). Holds one timer while a window
 * is open and one sample line, whatever the flood.
 *
 * @example
 * ```ts
 * import { ReportLimiter } from "./_reports.ts";
 * const lines: string[] = [];
 * const log = new ReportLimiter("rsock serve: rep", (line) => lines.push(line), { burst: 2 });
 * for (let i = 0; i < 5; i++) log.report(`rsock serve: rep: pipe ${i} dropped`);
 * log.close();
 * lines.length; // 3: two lines, then "3 more reports not shown"
 * ```
 */
export class ReportLimiter {
  readonly #prefix: string;
  readonly #print: (line: string) => void;
  readonly #burst: number;
  readonly #windowMs: number;
  #printed = 0;
  #suppressed = 0;
  #sample = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** `prefix` starts the summary line (`rsock serve: rep`); `print` writes one line. */
  constructor(prefix: string, print: (line: string) => void, options: ReportLimiterOptions = {}) {
    this.#prefix = prefix;
    this.#print = print;
    this.#burst = options.burst ?? DEFAULT_REPORT_BURST;
    this.#windowMs = options.windowMs ?? DEFAULT_REPORT_WINDOW_MS;
  }

  /** Prints `line`, or counts it when this window has printed its `burst` already. */
  report(line: string): void {
    if (this.#closed) return;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#endWindow(), this.#windowMs);
      // Reports alone must not keep the process alive.
      Deno.unrefTimer(this.#timer);
    }
    if (this.#printed < this.#burst) {
      this.#printed++;
      this.#print(line);
      return;
    }
    this.#suppressed++;
    this.#sample = line.length > SAMPLE_CHARS ? `${line.slice(0, SAMPLE_CHARS)}…` : line;
  }

  /** Prints the summary of what was left out, if anything, and stops. */
  close(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#summarize();
    this.#closed = true;
  }

  #endWindow(): void {
    this.#timer = undefined;
    this.#summarize();
    this.#printed = 0;
  }

  #summarize(): void {
    if (this.#suppressed === 0) return;
    const count = this.#suppressed;
    this.#suppressed = 0;
    this.#print(
      `${this.#prefix}: ${count} more ${count === 1 ? "report" : "reports"} not shown ` +
        `(at most ${this.#burst} per ${this.#windowMs / 1000} s); the last: ${this.#sample}`,
    );
    this.#sample = "";
  }
}
