/**
 * Error classes shared by every transport, so callers can tell conditions apart with
 * `instanceof` whichever door they imported.
 *
 * @module
 */

/** A connection could not be made, or broke. */
export class ConnectionError extends Error {
  /**
   * Creates the error; pass `{ cause }` to keep the underlying error.
   *
   * @example
   * ```ts
   * import { ConnectionError } from "./errors.ts";
   * throw new ConnectionError('Cannot connect to "127.0.0.1:9": connection refused');
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

/** The peer broke the protocol (bad header, bad frame, wrong peer). */
export class ProtocolError extends Error {
  /**
   * Creates the error; pass `{ cause }` to keep the underlying error.
   *
   * @example
   * ```ts
   * import { ProtocolError } from "./errors.ts";
   * throw new ProtocolError("peer sent protocol 0x0021 (sub0); rep0 talks only to req0 (0x0030)");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
  }
}

/** A message was larger than the configured limit. */
export class MessageTooLargeError extends Error {
  /** The limit in bytes that was exceeded. */
  readonly limit: number;
  /**
   * Creates the error; pass `{ cause }` to keep the underlying error.
   *
   * @example
   * ```ts
   * import { MessageTooLargeError } from "./errors.ts";
   * throw new MessageTooLargeError("line of 2000000 bytes exceeds the 1048576-byte limit", 1048576);
   * ```
   */
  constructor(message: string, limit: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "MessageTooLargeError";
    this.limit = limit;
  }
}

/** A wait ran past its time limit. */
export class TimeoutError extends Error {
  /**
   * Creates the error; pass `{ cause }` to keep the underlying error.
   *
   * @example
   * ```ts
   * import { TimeoutError } from "./errors.ts";
   * throw new TimeoutError("no reply within 1000 ms");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TimeoutError";
  }
}

/** Describes a Deno connect/listen error the way users read it: "connection refused". */
export function describeNetworkError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.AddrInUse) return "address already in use";
  if (error instanceof Deno.errors.AddrNotAvailable) return "address not available";
  if (error instanceof Deno.errors.NotFound) return "no such file or host";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  if (error instanceof Error) return error.message;
  return String(error);
}
