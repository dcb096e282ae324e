/**
 * Plain message sockets between processes, like R's `make.socket`, `read.socket`,
 * `write.socket` and `close.socket`, over TCP or a Unix socket: a server that takes many
 * clients and yields what they send, and a client that writes and reads.
 *
 * Framing is `"chunk"` (each read as it arrives, like `read.socket`, for raw peers such as R)
 * or `"line"` (newline-delimited, reliable message boundaries). Progress reports use one line
 * `#progress DONE/TOTAL LABEL` ({@linkcode sendProgress}); `rsock listen` draws them as a bar.
 *
 * @example Receive log lines from any number of processes
 * ```ts
 * import { connect, listen } from "@x/rsock/socket";
 *
 * await using server = listen({ port: 0, framing: "line" });
 * await using client = await connect({ port: server.port, hostname: "127.0.0.1" });
 * await client.write("step 1 done\n");
 * for await (const message of server) {
 *   console.log(`client ${message.client.id}: ${message.text}`);
 *   break;
 * }
 * ```
 *
 * @module
 */

import { acceptConnections } from "../_internal/accept.ts";
import { AsyncQueue } from "../_internal/async_queue.ts";
import {
  ConnectionError,
  describeNetworkError,
  MessageTooLargeError,
} from "../_internal/errors.ts";
import { type LineEvent, LineSplitter } from "./_framing.ts";
import { formatProgress } from "./_progress.ts";

export { ConnectionError, MessageTooLargeError } from "../_internal/errors.ts";
export { formatProgress, parseProgress, type Progress, renderProgressBar } from "./_progress.ts";

/** How the server cuts incoming bytes into messages. */
export type Framing = "chunk" | "line";

/**
 * The default port, as in rsock's CLI.
 *
 * @example
 * ```ts
 * import { connect, DEFAULT_PORT } from "@x/rsock/socket";
 * await using conn = await connect({ port: DEFAULT_PORT }); // 6000
 * ```
 */
export const DEFAULT_PORT = 6000;
/**
 * The default largest message (a line in `"line"` framing, a read in `"chunk"`): 1 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_MESSAGE_BYTES, listen } from "@x/rsock/socket";
 * await using server = listen({ port: 0, maxMessageBytes: 4 * DEFAULT_MAX_MESSAGE_BYTES });
 * ```
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_576;

const READ_BUFFER_BYTES = 256 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options for {@linkcode listen}. */
export interface ListenOptions {
  /** TCP port; 0 picks a free one. @default {6000} */
  port?: number;
  /** Address to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** Listen on this Unix socket path instead of TCP. */
  path?: string;
  /** How bytes become messages. @default {"chunk"} */
  framing?: Framing;
  /** Largest message in bytes; longer lines are refused, longer reads are split. @default {1048576} */
  maxMessageBytes?: number;
  /**
   * Chunk framing only: lend each message a view of the connection's read buffer instead of a
   * copy. `data` is then valid only until the consumer asks for the next message (the reader
   * waits for that before reading again), which spares a copy into fresh memory per read —
   * about half the throughput of 1 MiB chunks, measured in `bench/socket_bench.ts`.
   * @default {false}
   */
  borrowBuffers?: boolean;
  /** Most clients connected at once; further connections are closed at once. @default {1024} */
  maxClients?: number;
  /**
   * Told why the listener could not accept a connection: a client that reset before it was
   * accepted (skipped), or no file descriptors left (retried after a pause from 10 ms up to
   * 1 s). Each kind is told once, not per occurrence; nothing but
   * {@linkcode SocketServer.close} stops the server accepting.
   *
   * @default {undefined} (nothing is reported)
   */
  onError?: (error: Error) => void;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
}

/** One connected client, as the server sees it. */
export interface SocketClient {
  /** Server-unique number, from 1, in order of connection. */
  readonly id: number;
  /** `host:port` of the peer, or `unix` for a Unix socket peer. */
  readonly remoteAddress: string;
  /** Writes bytes (or UTF-8 text) back to this client. */
  write(data: string | Uint8Array): Promise<void>;
  /** Disconnects this client. */
  close(): void;
}

/** One message received by a {@linkcode SocketServer}. */
export interface SocketMessage {
  /** The client it came from. */
  readonly client: SocketClient;
  /** The bytes: one read (`"chunk"`) or one line without its `\n` (`"line"`). */
  readonly data: Uint8Array;
  /** The bytes decoded as UTF-8 (invalid sequences become U+FFFD). */
  readonly text: string;
  /** True for the unterminated last line of a client that closed mid-line. */
  readonly partial: boolean;
}

/** Everything that happens on a server, for consumers that track clients. */
export type SocketEvent =
  | { readonly type: "connect"; readonly client: SocketClient }
  | { readonly type: "message"; readonly client: SocketClient; readonly message: SocketMessage }
  | { readonly type: "error"; readonly client: SocketClient; readonly error: Error }
  | { readonly type: "disconnect"; readonly client: SocketClient };

class Message implements SocketMessage {
  readonly client: SocketClient;
  readonly data: Uint8Array;
  readonly partial: boolean;
  /** Set on borrowed messages: lets the reader reuse its buffer. */
  release: (() => void) | undefined;
  #text: string | undefined;
  constructor(client: SocketClient, data: Uint8Array, partial: boolean) {
    this.client = client;
    this.data = data;
    this.partial = partial;
  }
  get text(): string {
    return this.#text ??= decoder.decode(this.data);
  }
}

class Client implements SocketClient {
  readonly id: number;
  readonly remoteAddress: string;
  readonly conn: Deno.Conn;
  #closed = false;
  constructor(id: number, conn: Deno.Conn) {
    this.id = id;
    this.conn = conn;
    const addr = conn.remoteAddr;
    this.remoteAddress = addr.transport === "tcp"
      ? formatHostPort(addr.hostname, addr.port)
      : "unix";
  }
  async write(data: string | Uint8Array): Promise<void> {
    if (this.#closed) throw new ConnectionError(`client ${this.id} is disconnected`);
    await writeAll(this.conn, typeof data === "string" ? encoder.encode(data) : data);
  }
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the peer
    }
  }
}

/**
 * A server that accepts many clients and yields their messages. Iterate it for messages, or
 * {@linkcode SocketServer.events} for connects and disconnects too (one consumer either way).
 *
 * @example
 * ```ts
 * import { listen } from "@x/rsock/socket";
 * await using server = listen({ port: 0, framing: "line" });
 * console.log(`listening on ${server.port}`);
 * ```
 */
export class SocketServer implements AsyncIterable<SocketMessage>, AsyncDisposable {
  readonly #listener: Deno.Listener;
  readonly #framing: Framing;
  readonly #maxMessageBytes: number;
  readonly #maxClients: number;
  readonly #borrow: boolean;
  readonly #lent = new Set<() => void>();
  readonly #queue: AsyncQueue<SocketEvent>;
  readonly #clients = new Map<number, Client>();
  readonly #readers = new Set<Promise<void>>();
  readonly #path: string | undefined;
  #nextId = 1;
  #closing: Promise<void> | undefined;
  readonly #closed = Promise.withResolvers<void>();
  readonly #stopAccepting = new AbortController();
  #accepting: Promise<void>;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => void this.close();

  /** @internal Use {@linkcode listen}. */
  constructor(listener: Deno.Listener, options: ListenOptions) {
    this.#listener = listener;
    this.#framing = options.framing ?? "chunk";
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#maxClients = options.maxClients ?? 1024;
    this.#borrow = options.borrowBuffers === true && this.#framing === "chunk";
    this.#path = options.path;
    this.#queue = new AsyncQueue<SocketEvent>(1024, undefined, (event) => {
      if (event.type === "message") (event.message as Message).release?.();
    });
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    const addr = listener.addr;
    this.#accepting = acceptConnections(listener, (conn) => this.#admit(conn), {
      signal: this.#stopAccepting.signal,
      name: `socket server ${
        addr.transport === "unix"
          ? addr.path
          : addr.transport === "tcp"
          ? formatHostPort(addr.hostname, addr.port)
          : addr.transport
      }`,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  }

  /** The address the server is bound to. */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  /** The bound TCP port (0 for a Unix socket). */
  get port(): number {
    const addr = this.#listener.addr;
    return addr.transport === "tcp" ? addr.port : 0;
  }

  /** The clients connected now. */
  get clients(): SocketClient[] {
    return [...this.#clients.values()];
  }

  /** Resolves once the server has closed (by {@linkcode SocketServer.close} or its signal). */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  /** Messages, connects, errors and disconnects, in order. Ends when the server closes. */
  events(): AsyncIterableIterator<SocketEvent> {
    return this.#queue;
  }

  /** Messages only, in arrival order. Ends when the server closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<SocketMessage> {
    for await (const event of this.#queue) {
      if (event.type === "message") yield event.message;
    }
  }

  /** Stops accepting, disconnects every client and ends the iteration. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  /** Same as {@linkcode SocketServer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#stopAccepting.abort();
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const client of this.#clients.values()) client.close();
    this.#queue.close();
    // Readers waiting for a lent buffer to come back would never see their closed socket.
    for (const release of this.#lent) release();
    await this.#accepting;
    await Promise.all(this.#readers);
    if (this.#path !== undefined) {
      await Deno.remove(this.#path).catch(() => {});
    }
    this.#closed.resolve();
  }

  #admit(conn: Deno.Conn): void {
    if (this.#closing !== undefined || this.#clients.size >= this.#maxClients) {
      conn.close();
      return;
    }
    const client = new Client(this.#nextId++, conn);
    this.#clients.set(client.id, client);
    this.#queue.push({ type: "connect", client });
    const reader = this.#read(client).finally(() => {
      this.#readers.delete(reader);
    });
    this.#readers.add(reader);
  }

  async #read(client: Client): Promise<void> {
    const queue = this.#queue;
    const buffer = new Uint8Array(Math.min(READ_BUFFER_BYTES, this.#maxMessageBytes));
    const splitter = this.#framing === "line" ? new LineSplitter(this.#maxMessageBytes) : undefined;
    const emitLine = (event: LineEvent) => {
      if (event.kind === "line") {
        queue.push({ type: "message", client, message: new Message(client, event.data, false) });
      } else {
        const error = new MessageTooLargeError(
          `client ${client.id} (${client.remoteAddress}) sent a line of ${event.bytes} bytes; ` +
            `the limit is ${this.#maxMessageBytes} bytes (the line was dropped)`,
          this.#maxMessageBytes,
        );
        queue.push({ type: "error", client, error });
      }
    };
    try {
      while (true) {
        let n: number | null;
        try {
          n = await client.conn.read(buffer);
        } catch (error) {
          if (this.#closing === undefined) {
            queue.push({
              type: "error",
              client,
              error: new ConnectionError(
                `client ${client.id} (${client.remoteAddress}): ${describeNetworkError(error)}`,
                { cause: error },
              ),
            });
          }
          break;
        }
        if (n === null) break;
        const chunk = buffer.subarray(0, n);
        if (splitter === undefined) {
          if (this.#borrow) {
            const message = new Message(client, chunk, false);
            const { promise, resolve } = Promise.withResolvers<void>();
            message.release = resolve;
            this.#lent.add(resolve);
            queue.push({ type: "message", client, message });
            await promise;
            this.#lent.delete(resolve);
            continue;
          }
          queue.push({
            type: "message",
            client,
            message: new Message(client, chunk.slice(), false),
          });
        } else {
          splitter.push(chunk, emitLine);
        }
        if (queue.full) await queue.waitForRoom();
      }
      const rest = splitter?.finish();
      if (rest !== undefined) {
        queue.push({ type: "message", client, message: new Message(client, rest, true) });
      }
    } finally {
      this.#clients.delete(client.id);
      client.close();
      queue.push({ type: "disconnect", client });
    }
  }
}

/**
 * Starts a server on TCP (default `127.0.0.1:6000`) or on a Unix socket (`path`), like R's
 * `make.socket(port = P, server = TRUE)` but for many clients at once.
 *
 * @example
 * ```ts
 * import { listen } from "@x/rsock/socket";
 * await using server = listen({ port: 0, framing: "line", maxMessageBytes: 64 * 1024 });
 * // for await (const message of server) console.log(message.text);
 * ```
 */
export function listen(options: ListenOptions = {}): SocketServer {
  const framing = options.framing ?? "chunk";
  if (framing !== "chunk" && framing !== "line") {
    throw new TypeError(`framing must be "chunk" or "line", got ${JSON.stringify(framing)}`);
  }
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(`maxMessageBytes must be a positive integer, got ${max}`);
  }
  if (options.signal?.aborted) throw options.signal.reason;
  let listener: Deno.Listener;
  if (options.path !== undefined) {
    try {
      listener = Deno.listen({ transport: "unix", path: options.path });
    } catch (error) {
      throw new ConnectionError(
        `Cannot listen on Unix socket "${options.path}": ${describeNetworkError(error)}`,
        { cause: error },
      );
    }
  } else {
    const port = options.port ?? DEFAULT_PORT;
    checkPort(port);
    const hostname = options.hostname ?? "127.0.0.1";
    try {
      listener = Deno.listen({ transport: "tcp", hostname, port });
    } catch (error) {
      throw new ConnectionError(
        `Cannot listen on "${formatHostPort(hostname, port)}": ${describeNetworkError(error)}`,
        { cause: error },
      );
    }
  }
  return new SocketServer(listener, options);
}

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

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
  }
}

function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(offset === 0 ? data : data.subarray(offset));
  }
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
