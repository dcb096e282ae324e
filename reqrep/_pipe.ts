/**
 * Transports: a pipe is one TCP or IPC connection after the SP handshake; listeners accept
 * pipes, dialers make them and redial with backoff when they break.
 *
 * @module
 */

import { ConnectionError, describeNetworkError, TimeoutError } from "../_internal/errors.ts";
import {
  checkHeader,
  connectionHeader,
  encodeFrame,
  encodeFrameHead,
  type Endpoint,
  FrameDecoder,
  type Framing,
  type Protocol,
} from "./_wire.ts";

const HANDSHAKE_TIMEOUT_MS = 10_000; // NNG's
// Small on purpose: a large message is read straight into its own buffer once its length is
// known, so this bounds the copy made before that (and the memory an idle pipe holds).
const READ_BUFFER_BYTES = 16 * 1024;
const DIRECT_WRITE_BYTES = 64 * 1024;
const LEAD_BYTES = 32 * 1024;

/** One connection to a peer, over any transport, as its socket sees it. */
export interface SpPipe {
  readonly id: number;
  /** `host:port`, or `ipc`. */
  readonly remote: string;
  readonly closed: boolean;
  /** Bytes handed to {@linkcode SpPipe.send} and not yet written to the connection. */
  readonly queuedBytes: number;
  /** Sends one message made of `parts` (header words, then the body). */
  send(parts: readonly Uint8Array[]): Promise<void>;
  /** Settles when every message sent so far is written (or failed). */
  flushed(): Promise<void>;
  close(): void;
}

/** What a pipe reports to its socket. */
export interface PipeEvents {
  opened(pipe: SpPipe): void;
  message(pipe: SpPipe, payload: Uint8Array): void;
  closed(pipe: SpPipe, reason: Error | undefined): void;
  /** A promise to wait on before reading more from `pipe` (backpressure), or undefined. */
  room(pipe: SpPipe): Promise<void> | undefined;
  /** The socket's close: the pipe closes at once, even mid-handshake. */
  readonly stop: AbortSignal;
}

let nextPipeId = 1;

/** A fresh pipe id, unique in this process. */
export function newPipeId(): number {
  return nextPipeId++;
}

/** A TCP or IPC endpoint: the transports framed on a byte stream. */
export type StreamEndpoint = Exclude<Endpoint, { transport: "ws" }>;

/** One TCP or IPC connection to a peer. */
export class Pipe implements SpPipe {
  readonly id: number = newPipeId();
  readonly conn: Deno.Conn;
  readonly framing: Framing;
  readonly remote: string;
  #closed = false;
  #writing: Promise<void> = Promise.resolve();
  #queued = 0;

  constructor(conn: Deno.Conn, framing: Framing) {
    this.conn = conn;
    this.framing = framing;
    const addr = conn.remoteAddr;
    this.remote = addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : "ipc";
  }

  get closed(): boolean {
    return this.#closed;
  }

  get queuedBytes(): number {
    return this.#queued;
  }

  /** Sends one message; writes are serialised so frames never interleave. */
  send(parts: readonly Uint8Array[]): Promise<void> {
    // A large last part goes out mostly uncopied: the frame head and the part's first
    // LEAD_BYTES are copied into one write, the rest is written as it is. Writing the small head
    // on its own instead sends a lone tiny segment that wakes the peer for nothing (measured:
    // about 7% of 1 MiB echo throughput).
    const last = parts[parts.length - 1];
    let frames: Uint8Array[];
    if (last !== undefined && last.length > DIRECT_WRITE_BYTES) {
      let length = 0;
      for (const part of parts) length += part.length;
      const head = [...parts.slice(0, -1), last.subarray(0, LEAD_BYTES)];
      frames = [encodeFrameHead(this.framing, length, head), last.subarray(LEAD_BYTES)];
    } else {
      frames = [encodeFrame(this.framing, parts)];
    }
    let size = 0;
    for (const frame of frames) size += frame.length;
    this.#queued += size;
    const write = this.#writing.then(async () => {
      if (this.#closed) throw new ConnectionError(`pipe ${this.id} to ${this.remote} is closed`);
      for (const frame of frames) {
        let offset = 0;
        while (offset < frame.length) {
          offset += await this.conn.write(offset === 0 ? frame : frame.subarray(offset));
        }
      }
    }).finally(() => this.#queued -= size);
    this.#writing = write.catch(() => {});
    return write;
  }

  flushed(): Promise<void> {
    return this.#writing;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Exchanges SP headers on a fresh connection (sending ours at once, as NNG does), then reads
 * messages until the connection ends. Resolves when the pipe is gone.
 */
export async function runPipe(
  conn: Deno.Conn,
  framing: Framing,
  protocol: Protocol,
  maxMessageBytes: number,
  events: PipeEvents,
  allocate?: (length: number) => Uint8Array,
): Promise<void> {
  const pipe = new Pipe(conn, framing);
  if (conn.remoteAddr.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
  let reason: Error | undefined;
  let opened = false;
  // Closing the socket must not wait for a peer that never sends its SP header (a non-NNG
  // port): closing the connection ends the handshake's read at once.
  const onStop = () => pipe.close();
  events.stop.addEventListener("abort", onStop, { once: true });
  if (events.stop.aborted) pipe.close();
  try {
    const header = connectionHeader(protocol);
    await conn.write(header);
    const peer = await readExactly(conn, 8, HANDSHAKE_TIMEOUT_MS);
    checkHeader(peer, protocol);
    opened = true;
    events.opened(pipe);
    const decoder = new FrameDecoder(framing, maxMessageBytes, allocate);
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    const emit = (payload: Uint8Array) => events.message(pipe, payload);
    while (true) {
      // Mid-way through a large message, read straight into it.
      const target = decoder.bodyTarget;
      const n = await conn.read(target ?? buffer);
      if (n === null) {
        if (decoder.midMessage) reason = new ConnectionError("peer closed mid-message");
        break;
      }
      if (target !== undefined) decoder.filled(n, emit);
      else decoder.push(buffer.subarray(0, n), emit);
      const room = events.room(pipe);
      if (room !== undefined) await room;
    }
  } catch (error) {
    if (!pipe.closed) reason = error instanceof Error ? error : new Error(String(error));
  } finally {
    events.stop.removeEventListener("abort", onStop);
    pipe.close();
    if (opened || reason !== undefined) events.closed(pipe, reason);
  }
}

async function readExactly(
  conn: Deno.Conn,
  length: number,
  timeoutMs: number,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let filled = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch {
      // closed
    }
  }, timeoutMs);
  try {
    while (filled < length) {
      const n = await conn.read(bytes.subarray(filled));
      if (n === null) {
        throw new ConnectionError(`peer closed after ${filled} of ${length} header bytes`);
      }
      filled += n;
    }
  } catch (error) {
    if (error instanceof ConnectionError) throw error;
    if (timedOut) {
      throw new TimeoutError(`no SP header from the peer within ${timeoutMs} ms`, {
        cause: error,
      });
    }
    // A reset mid-handshake is the peer's doing, not a wait that ran out.
    throw new ConnectionError(
      `peer's connection failed after ${filled} of ${length} header bytes: ${
        describeNetworkError(error)
      }`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
  return bytes;
}

/**
 * Opens a listener for an endpoint, removing a stale IPC socket file as NNG does. With
 * `ipcPermissions`, an IPC socket file is created with that mode and no other: the process
 * umask is narrowed around the bind (no window in which anyone else could connect, unlike a
 * chmod after it), then the file is set to exactly that mode.
 */
export async function openListener(
  endpoint: StreamEndpoint,
  ipcPermissions?: number,
): Promise<Deno.Listener> {
  if (endpoint.transport === "tcp") {
    try {
      return Deno.listen({ transport: "tcp", hostname: endpoint.hostname, port: endpoint.port });
    } catch (error) {
      throw new ConnectionError(
        `Cannot listen on "tcp://${endpoint.hostname}:${endpoint.port}": ${
          describeNetworkError(error)
        }`,
        { cause: error },
      );
    }
  }
  const where = `ipc://${endpoint.path}`;
  const bind = (): Deno.Listener => {
    if (ipcPermissions === undefined) {
      return Deno.listen({ transport: "unix", path: endpoint.path });
    }
    let previous: number;
    try {
      previous = Deno.umask(0o777 & ~ipcPermissions);
    } catch (error) {
      throw new ConnectionError(
        `Cannot listen on "${where}" with mode 0${ipcPermissions.toString(8)}: setting the ` +
          "umask needs --allow-sys=umask",
        { cause: error },
      );
    }
    // Synchronous from here to the restore, so no other code of this thread sees the umask.
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ transport: "unix", path: endpoint.path });
    } finally {
      Deno.umask(previous);
    }
    try {
      Deno.chmodSync(endpoint.path, ipcPermissions);
    } catch (error) {
      listener.close();
      throw new ConnectionError(
        `Cannot set mode 0${ipcPermissions.toString(8)} on "${endpoint.path}": ${
          describeNetworkError(error)
        }`,
        { cause: error },
      );
    }
    return listener;
  };
  try {
    return bind();
  } catch (error) {
    if (error instanceof ConnectionError) throw error;
    if (!(error instanceof Deno.errors.AddrInUse)) {
      throw new ConnectionError(`Cannot listen on "${where}": ${describeNetworkError(error)}`, {
        cause: error,
      });
    }
    // A socket file nobody answers on is stale: remove it and listen again.
    try {
      (await Deno.connect({ transport: "unix", path: endpoint.path })).close();
    } catch {
      await Deno.remove(endpoint.path).catch(() => {});
      return bind();
    }
    throw new ConnectionError(`Cannot listen on "${where}": address already in use`);
  }
}

/** Connects once to an endpoint. */
export async function dialOnce(endpoint: StreamEndpoint): Promise<Deno.Conn> {
  try {
    return endpoint.transport === "tcp"
      ? await Deno.connect({ hostname: endpoint.hostname, port: endpoint.port })
      : await Deno.connect({ transport: "unix", path: endpoint.path });
  } catch (error) {
    const where = endpoint.transport === "tcp"
      ? `tcp://${endpoint.hostname}:${endpoint.port}`
      : `ipc://${endpoint.path}`;
    throw new ConnectionError(`Cannot connect to "${where}": ${describeNetworkError(error)}`, {
      cause: error,
    });
  }
}
