/**
 * Waits the application bounds: a timeout and an AbortSignal around any promise, undoing the
 * wait's registration when it is given up.
 *
 * @module
 */

import { TimeoutError } from "../errors.ts";

/** Per-wait options. */
export interface WaitOptions {
  /** Milliseconds to wait before failing with a {@linkcode TimeoutError}. */
  readonly timeout?: number;
  /** Stops waiting when aborted. */
  readonly signal?: AbortSignal;
}

/** Waits for `promise`, bounded by `options`; `cancel` runs when the wait is given up. */
export function bounded<T>(
  promise: Promise<T>,
  options: WaitOptions,
  what: string,
  cancel: () => void,
): Promise<T> {
  const { timeout, signal } = options;
  if (timeout === undefined && signal === undefined) return promise;
  if (signal?.aborted) {
    cancel();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      cancel();
      reject(signal!.reason);
    };
    if (timeout !== undefined && timeout >= 0) {
      timer = setTimeout(() => {
        done();
        cancel();
        reject(new TimeoutError(`${what}: nothing within ${timeout} ms`));
      }, timeout);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then((value) => {
      done();
      resolve(value);
    }, (error) => {
      done();
      reject(error);
    });
  });
}
