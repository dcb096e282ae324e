/**
 * The socket server: accepts many clients over TCP or a Unix socket, cuts what they send into
 * messages (chunk or line framing) and yields them in order, with backpressure.
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
import { type Framing, type LineEvent, LineSplitter } from "./_framing.ts";
import { checkPort, DEFAULT_PORT, formatHostPort, writeAll } from "./_net.ts";

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
