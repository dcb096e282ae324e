/**
 * The WebSocket client: R `websockets`' `websocket(url)` on Deno's `WebSocket`.
 *
 * @module
 */

import { AsyncQueue } from "../_internal/async_queue.ts";
import { ConnectionError } from "../_internal/errors.ts";
import {
  checkClose,
  checkMaxBuffered,
  checkMaxMessageSize,
  checkMaxQueued,
  CloseCode,
  decodeMessage,
  WriteQueue,
  type WsCloseInfo,
  type WsData,
  type WsHeader,
} from "./_peer.ts";

// WHATWG WebSocket clients may send only 1000 and 3000-4999, so the client's own refusals use
// the application range, mirroring 1009 and 1013.
const CLIENT_MESSAGE_TOO_BIG = 4009;
const CLIENT_TRY_AGAIN_LATER = 4013;
const CLIENT_INTERNAL_ERROR = 4011;
const CLIENT_POLICY_VIOLATION = 4008;

/**
 * The callbacks of a client, the same names as the server's. A callback may be async: a throw
 * or a rejected promise closes the connection with 4011 and goes to the `error` option.
 */
export interface WsClientCallbacks {
  /** The connection opened. */
  established?: (client: WsClient) => unknown;
  /** The connection ended. */
  closed?: (client: WsClient, info: WsCloseInfo) => unknown;
  /** A message arrived (R's `receive(DATA, WS, HEADER)`). */
  receive?: (data: WsData, client: WsClient, header: WsHeader) => unknown;
}

/** Options for {@linkcode websocket}. */
export interface WsClientOptions extends WsClientCallbacks {
  /** Subprotocols to offer; the server's choice is {@linkcode WsClient.protocol}. */
  protocols?: string | readonly string[];
  /**
   * Largest message in bytes; a larger one closes the connection with 4009 (1009 is not a
   * code a WHATWG client may send). @default {16777216}
   */
  maxMessageSize?: number;
  /** Bytes in the socket's buffer past which a write waits in the queue. @default {4194304} */
  maxBufferedAmount?: number;
  /**
   * Bytes of writes waiting for room (writes not awaited pile up here) past which the server
   * counts as not reading: the connection is closed with 4008 and waiting writes reject with
   * ConnectionError. @default {268435456}
   */
  maxQueuedBytes?: number;
  /** Messages an unread iterator may hold before the connection is closed with 4013. @default {1024} */
  maxQueuedMessages?: number;
  /**
   * Called when a callback throws or its promise rejects; the connection is closed with 4011
   * first. Without it the error is reported as uncaught (`reportError`).
   */
  error?: (error: unknown, client: WsClient) => void;
  /** Aborts the connection attempt, or closes the open connection. */
  signal?: AbortSignal;
}

/** One message received by a {@linkcode WsClient} iterator. */
export interface WsMessage {
  /** Text as a string, binary as bytes. */
  readonly data: WsData;
  /** What is known of the message. */
  readonly header: WsHeader;
}

/**
 * An open WebSocket connection made by {@linkcode websocket}.
 *
 * @example
 * ```ts
 * import { websocket } from "@x/rsock/ws";
 *
 * await using client = await websocket("ws://127.0.0.1:7681/");
 * await client.write(new Uint8Array([1, 2, 3]));
 * for await (const { data } of client) console.log(data);
 * ```
 */
export class WsClient implements AsyncDisposable, AsyncIterable<WsMessage> {
  /** The URL connected to. */
  readonly url: string;
  /** Resolves with how the connection ended; never rejects. */
  readonly closed: Promise<WsCloseInfo>;
  readonly #socket: WebSocket;
  readonly #callbacks: WsClientCallbacks;
  readonly #maxMessageSize: number;
  readonly #writes: WriteQueue;
  readonly #queue: AsyncQueue<WsMessage>;
  readonly #onError: WsClientOptions["error"];
  #iterated = false;
  #resolveClosed!: (info: WsCloseInfo) => void;

  /** Use {@linkcode websocket}. */
  constructor(socket: WebSocket, options: WsClientOptions) {
    this.#socket = socket;
    this.url = socket.url;
    this.#callbacks = {};
    for (const name of ["established", "closed", "receive"] as const) {
      const callback = options[name];
      if (callback !== undefined) this.setCallback(name, callback);
    }
    this.#onError = options.error;
    this.#maxMessageSize = checkMaxMessageSize(options.maxMessageSize);
    this.#writes = new WriteQueue(socket, {
      bound: checkMaxBuffered(options.maxBufferedAmount),
      limit: checkMaxQueued(options.maxQueuedBytes),
      what: this.url,
      overflow: (reason) => this.close(CLIENT_POLICY_VIOLATION, reason),
    });
    this.#queue = new AsyncQueue(options.maxQueuedMessages ?? 1024);
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    socket.onmessage = (event) => {
      const decoded = decodeMessage(event.data, this.#maxMessageSize);
      if ("tooLarge" in decoded) {
        this.close(
          CLIENT_MESSAGE_TOO_BIG,
          `message of ${decoded.tooLarge} bytes exceeds the ${this.#maxMessageSize}-byte limit`,
        );
        return;
      }
      const receive = this.#callbacks.receive;
      if (receive !== undefined) {
        // Inlined #guard: the per-message path allocates no closure (measured in the bench).
        try {
          const result = receive(decoded.data, this, decoded.header);
          if (result instanceof Promise) result.catch((error) => this.#fail(error));
        } catch (error) {
          this.#fail(error);
        }
        return;
      }
      if (this.#queue.full) {
        this.close(CLIENT_TRY_AGAIN_LATER, "message queue full: the client reads too slowly");
        return;
      }
      this.#queue.push(decoded);
    };
    socket.onclose = (event) => {
      const info = { code: event.code, reason: event.reason, wasClean: event.wasClean };
      this.#queue.close();
      const closed = this.#callbacks.closed;
      if (closed !== undefined) this.#guard(() => closed(this, info));
      this.#resolveClosed(info);
    };
    socket.addEventListener("open", () => {
      const established = this.#callbacks.established;
      if (established !== undefined) this.#guard(() => established(this));
    }, { once: true });
    options.signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** The subprotocol the server chose, or `""`. */
  get protocol(): string {
    return this.#socket.protocol;
  }

  /**
   * Bytes written and not yet handed to the network: those in the socket's buffer and those of
   * writes waiting for room.
   */
  get bufferedAmount(): number {
    return this.#writes.unsent;
  }

  /** True until the connection starts closing. */
  get open(): boolean {
    return this.#socket.readyState === WebSocket.OPEN;
  }

  /** Sets or replaces one callback; `undefined` removes it. */
  setCallback<K extends keyof WsClientCallbacks>(name: K, callback: WsClientCallbacks[K]): void {
    if (!["established", "closed", "receive"].includes(name)) {
      throw new TypeError(`unknown callback "${name}"; expected established, closed or receive`);
    }
    if (callback === undefined) delete this.#callbacks[name];
    else this.#callbacks[name] = callback;
  }

  /**
   * Sends one message (string as text, bytes as binary), like R's `websocket_write`: at once
   * while that keeps the socket's buffer within `maxBufferedAmount`, else after the writes
   * already waiting, in call order. Resolves once handed to the socket.
   *
   * Writes need not be awaited: a loop of writes costs the same per write however many wait.
   * Bytes that wait are held, not copied: leave them unchanged until the write resolves.
   * Up to 256 waiting writes in a row without a signal share one promise, settled when the
   * last of them is handed over, so such a run fails as a whole if the connection closes midway.
   * Awaiting each write paces the writer to the server; writes not awaited that pile up past
   * `maxQueuedBytes` for a server that does not read close the connection with 4008.
   *
   * Rejects with ConnectionError when the connection closes before the message is sent (not
   * reported as unhandled when nobody awaits it), or with the signal's reason when `signal`
   * aborts while the message waits (the message is then not sent).
   */
  write(data: WsData, options?: { signal?: AbortSignal }): Promise<void> {
    return this.#writes.write(data, options?.signal);
  }

  /**
   * Starts the closing handshake (R's `websocket_close`); await {@linkcode closed} for the end.
   * A browser-style client may send only 1000 or 3000 to 4999; another code, or a reason over
   * 123 UTF-8 bytes, is a RangeError.
   */
  close(code: number = CloseCode.normal, reason = ""): void {
    checkClose(code, reason, "client");
    this.#socket.close(code, reason);
  }

  /**
   * The messages received, ending when the connection closes. Messages are queued for it from
   * the start unless a `receive` callback is set (then they go to the callback only). One
   * consumer at a time.
   */
  [Symbol.asyncIterator](): AsyncIterator<WsMessage> {
    if (this.#iterated) throw new TypeError("the client's messages already have a consumer");
    this.#iterated = true;
    const queue = this.#queue;
    return {
      next: () => queue.next(),
      return: () => {
        // Later messages stay queued (bounded) for a next consumer.
        this.#iterated = false;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** Closes and waits for the end. Idempotent. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.closed;
  }

  #guard(run: () => unknown): void {
    try {
      const result = run();
      if (result instanceof Promise) result.catch((error) => this.#fail(error));
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): void {
    if (this.open) this.close(CLIENT_INTERNAL_ERROR, "internal error in a callback");
    const handler = this.#onError;
    if (handler !== undefined) handler(error, this);
    else reportError(error);
  }
}

/**
 * Connects to a WebSocket server, like R's `websocket(url)`, with the same callbacks as the
 * server and `write`/`close`. Resolves once the connection is open; rejects with
 * ConnectionError when it cannot be made.
 *
 * @example
 * ```ts
 * import { createServer, websocket } from "@x/rsock/ws";
 *
 * await using server = createServer({ port: 0, receive: (data, client) => client.write(data) });
 * await using client = await websocket(server.url, {
 *   receive: (data) => console.log("echo:", data),
 * });
 * await client.write("hello");
 * ```
 */
export function websocket(url: string | URL, options: WsClientOptions = {}): Promise<WsClient> {
  const protocols = typeof options.protocols === "string"
    ? [options.protocols]
    : [...(options.protocols ?? [])];
  let socket: WebSocket;
  try {
    socket = new WebSocket(url, protocols);
  } catch (error) {
    return Promise.reject(
      new ConnectionError(`Cannot connect to "${url}": ${(error as Error).message}`, {
        cause: error,
      }),
    );
  }
  socket.binaryType = "arraybuffer";
  let client: WsClient;
  try {
    client = new WsClient(socket, options);
  } catch (error) {
    socket.onopen = () => socket.close();
    socket.onerror = () => {};
    return Promise.reject(error);
  }
  return new Promise<WsClient>((resolve, reject) => {
    let failure = "";
    const signal = options.signal;
    const onAbort = () => {
      reject(
        new ConnectionError(`Cannot connect to "${url}": aborted`, { cause: signal?.reason }),
      );
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.onopen = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve(client);
    };
    socket.onerror = (event) => {
      failure = (event as ErrorEvent).message ?? "";
    };
    client.closed.then((info) => {
      signal?.removeEventListener("abort", onAbort);
      reject(
        new ConnectionError(
          `Cannot connect to "${url}": ${failure || `closed with ${info.code} ${info.reason}`}`,
        ),
      );
    });
  });
}
