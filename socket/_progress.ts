/**
 * The progress message convention: one line `#progress DONE/TOTAL LABEL`, easy to write from
 * R (`write.socket(s, sprintf("#progress %d/%d %s\n", i, n, "step"))`) or any shell.
 *
 * @module
 */

/** A parsed progress report. */
export interface Progress {
  /** Units done so far. */
  readonly done: number;
  /** Units in all (0 when unknown). */
  readonly total: number;
  /** What is being done, may be empty. */
  readonly label: string;
}

const PROGRESS_PATTERN = /^#progress\s+(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?))?(?:\s+(.*))?$/;

/**
 * Formats a progress report as its wire line (without the newline).
 *
 * @example
 * ```ts
 * import { formatProgress } from "@x/rsock/socket";
 * formatProgress(3, 10, "fitting"); // "#progress 3/10 fitting"
 * ```
 */
export function formatProgress(done: number, total: number, label = ""): string {
  if (!Number.isFinite(done) || done < 0) {
    throw new RangeError(`progress "done" must be a finite number >= 0, got ${done}`);
  }
  if (!Number.isFinite(total) || total < 0) {
    throw new RangeError(`progress "total" must be a finite number >= 0, got ${total}`);
  }
  if (/[\r\n]/.test(label)) {
    throw new TypeError("progress label must be one line (no \\r or \\n)");
  }
  return label === "" ? `#progress ${done}/${total}` : `#progress ${done}/${total} ${label}`;
}

/**
 * Parses one line; `undefined` when it is not a progress report.
 *
 * @example
 * ```ts
 * import { parseProgress } from "@x/rsock/socket";
 * parseProgress("#progress 3/10 fitting"); // { done: 3, total: 10, label: "fitting" }
 * parseProgress("hello"); // undefined
 * ```
 */
export function parseProgress(line: string): Progress | undefined {
  const match = PROGRESS_PATTERN.exec(line.trimEnd());
  if (match === null) return undefined;
  return {
    done: Number(match[1]),
    total: match[2] === undefined ? 0 : Number(match[2]),
    label: match[3] ?? "",
  };
}

/**
 * Draws a progress report as a fixed-width bar: `[#####.....]  50% 5/10 label`.
 *
 * @example
 * ```ts
 * import { renderProgressBar } from "@x/rsock/socket";
 * renderProgressBar({ done: 5, total: 10, label: "fit" }, 10); // "[#####.....]  50% 5/10 fit"
 * ```
 */
export function renderProgressBar(progress: Progress, width = 30): string {
  const { done, total, label } = progress;
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(fraction * width);
  const bar = "#".repeat(filled) + ".".repeat(width - filled);
  const percent = total > 0 ? `${Math.floor(fraction * 100)}%`.padStart(4) : "   ?";
  const count = total > 0 ? `${done}/${total}` : `${done}`;
  return `[${bar}] ${percent} ${count}${label === "" ? "" : " " + label}`;
}
