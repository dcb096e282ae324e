/**
 * Waits `ms`, or less when `signal` aborts; never rejects, so a retry or backoff loop checks its
 * own stop condition after it. Nothing is left scheduled once it resolves.
 *
 * @module
 */

/** Resolves after `ms` (at once when `ms <= 0`), or as soon as `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
