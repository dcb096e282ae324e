/**
 * The socket client: one connection to a server, written to and read like R's `write.socket`
 * and `read.socket`, and the one-call progress report.
 *
 * @module
 */

import { ConnectionError, describeNetworkError } from "../_internal/errors.ts";
import { formatProgress } from "./_progress.ts";
import { checkPort, DEFAULT_PORT, formatHostPort, writeAll } from "./_net.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /** TCP port. @default {6000} */
  port?: number;
  /** Host to connect to. @default {"localhost"} */
  hostname?: string;
  /** Connect to this Unix socket path instead of TCP. */
  path?: string;
  /** Aborts the connection attempt, and closes the connection later when aborted. */
  signal?: AbortSignal;
}

/** Options for {@linkcode SocketConnection.read}. */
export interface ReadOptions {
  /** Most bytes to return, like `read.socket(maxlen =)`. @default {256} */
  maxlen?: number;
  /** Stops waiting when aborted. */
  signal?: AbortSignal;
}

/**
 * A client connection made by {@linkcode connect}.
 *
 * @example
 * ```ts
 * import { connect } from "@x/rsock/socket";
 * await using conn = await connect({ port: 6000 });
 * await conn.write("hello\n");
 * ```
 */
export class SocketConnection implements AsyncDisposable {
  readonly #conn: Deno.Conn;
  readonly #target: string;
  #leftover: Uint8Array | undefined;
  #pending: { read: Promise<number | null>; buffer: Uint8Array } | undefined;
  #closed = false;

  /** @internal Use {@linkcode connect}. */
  constructor(conn: Deno.Conn, target: string) {
    this.#conn = conn;
    this.#target = target;
  }

  /** The server this connection reaches, as `host:port` or the Unix socket path. */
  get target(): string {
    return this.#target;
  }

  /** Writes all of `data` (strings as UTF-8), like `write.socket`: no framing is added. */
  async write(data: string | Uint8Array): Promise<void> {
    if (this.#closed) throw new ConnectionError(`connection to "${this.#target}" is closed`);
    try {
      await writeAll(this.#conn, typeof data === "string" ? encoder.encode(data) : data);
    } catch (error) {
      throw new ConnectionError(
        `Cannot write to "${this.#target}": ${describeNetworkError(error)}`,
        { cause: error },
      );
    }
  }

  /** Writes `text` followed by a newline. */
  writeLine(text: string): Promise<void> {
    return this.write(text + "\n");
  }

  /** Sends a progress report line ({@linkcode formatProgress}). */
  sendProgress(done: number, total: number, label = ""): Promise<void> {
    return this.writeLine(formatProgress(done, total, label));
  }

  /**
   * Reads what one read gives, at most `maxlen` bytes, as bytes; `null` once the peer closed.
   */
  async readBytes(options: ReadOptions = {}): Promise<Uint8Array | null> {
    const maxlen = options.maxlen ?? 256;
    if (!Number.isSafeInteger(maxlen) || maxlen < 1) {
      throw new RangeError(`maxlen must be a positive integer, got ${maxlen}`);
    }
    if (this.#leftover !== undefined) {
      const leftover = this.#leftover;
      this.#leftover = leftover.length > maxlen ? leftover.subarray(maxlen) : undefined;
      return leftover.subarray(0, maxlen);
    }
    if (this.#closed) return null;
    // A read abandoned by an abort is still running; reuse it so no bytes are lost.
    const pending = this.#pending ??= this.#startRead(Math.max(maxlen, 256));
    let n: number | null;
    try {
      n = options.signal === undefined
        ? await pending.read
        : await abortable(pending.read, options.signal);
    } catch (error) {
      if (error === options.signal?.reason) throw error;
      this.#pending = undefined;
      if (this.#closed) return null;
      throw new ConnectionError(
        `Cannot read from "${this.#target}": ${describeNetworkError(error)}`,
        { cause: error },
      );
    }
    this.#pending = undefined;
    if (n === null) return null;
    const bytes = pending.buffer.subarray(0, n);
    if (n > maxlen) this.#leftover = bytes.subarray(maxlen);
    return bytes.subarray(0, maxlen);
  }

  #startRead(size: number): { read: Promise<number | null>; buffer: Uint8Array } {
    const buffer = new Uint8Array(size);
    const read = this.#conn.read(buffer);
    read.catch(() => {}); // observed by the caller that awaits it
    return { read, buffer };
  }

  /** Reads like R's `read.socket(maxlen = 256)`: text of one read, `""` once the peer closed. */
  async read(options: ReadOptions = {}): Promise<string> {
    const bytes = await this.readBytes(options);
    return bytes === null ? "" : decoder.decode(bytes);
  }

  /** Closes the connection, like `close.socket`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  /** Same as {@linkcode SocketConnection.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Connects to a server, like R's `make.socket(host, port)`. Fails with a
 * {@linkcode ConnectionError} naming host and port when nothing listens.
 *
 * @example
 * ```ts
 * import { connect } from "@x/rsock/socket";
 * await using conn = await connect({ hostname: "localhost", port: 6000 });
 * await conn.writeLine("started");
 * await conn.sendProgress(1, 10, "loading");
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<SocketConnection> {
  options.signal?.throwIfAborted();
  let conn: Deno.Conn;
  let target: string;
  if (options.path !== undefined) {
    target = options.path;
    try {
      conn = await (options.signal === undefined
        ? Deno.connect({ transport: "unix", path: options.path })
        : abortable(Deno.connect({ transport: "unix", path: options.path }), options.signal));
    } catch (error) {
      if (error === options.signal?.reason) throw error;
      throw new ConnectionError(
        `Cannot connect to Unix socket "${target}": ${describeNetworkError(error)}`,
        { cause: error },
      );
    }
  } else {
    const port = options.port ?? DEFAULT_PORT;
    checkPort(port);
    const hostname = options.hostname ?? "localhost";
    target = formatHostPort(hostname, port);
    try {
      conn = await Deno.connect(
        options.signal === undefined
          ? { hostname, port }
          : { hostname, port, signal: options.signal },
      );
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new ConnectionError(
        `Cannot connect to "${target}": ${describeNetworkError(error)}`,
        { cause: error },
      );
    }
  }
  const connection = new SocketConnection(conn, target);
  options.signal?.addEventListener("abort", () => connection.close(), { once: true });
  return connection;
}

/**
 * Connects, sends one progress report and closes: the one-liner for scripts.
 *
 * @example
 * ```ts
 * import { sendProgress } from "@x/rsock/socket";
 * await sendProgress({ port: 6000 }, 3, 10, "fitting models");
 * ```
 */
export async function sendProgress(
  options: ConnectOptions,
  done: number,
  total: number,
  label = "",
): Promise<void> {
  const line = formatProgress(done, total, label);
  await using conn = await connect(options);
  await conn.writeLine(line);
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
