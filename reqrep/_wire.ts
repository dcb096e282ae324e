/**
 * The SP wire, parsed at the edge: the 8-byte connection header, TCP and IPC message framing,
 * and endpoint URLs. Pure (no I/O), so tests can feed it bytes split anywhere.
 *
 * @module
 */

import { MessageTooLargeError, ProtocolError } from "../_internal/errors.ts";

/** SP protocol ids (`major * 16 + minor`) rsock speaks, and their peers. */
export const PROTOCOL = { req: 0x30, rep: 0x31 } as const;
/**
 * A protocol rsock speaks: `"req"` (REQ0) or `"rep"` (REP0).
 *
 * @example
 * ```ts
 * import type { Protocol } from "@x/rsock/reqrep";
 * const side: Protocol = "rep";
 * ```
 */
export type Protocol = "req" | "rep";

const PROTOCOL_NAMES: Record<number, string> = {
  0x10: "pair0",
  0x11: "pair1",
  0x20: "pub0",
  0x21: "sub0",
  0x30: "req0",
  0x31: "rep0",
  0x50: "push0",
  0x51: "pull0",
  0x62: "surveyor0",
  0x63: "respondent0",
  0x70: "bus0",
};

/** The protocol each one must meet. */
export const PEER: Record<Protocol, Protocol> = { req: "rep", rep: "req" };

/** The 8 bytes each side sends first: `00 'S' 'P' 00`, protocol id (u16 BE), `00 00`. */
export function connectionHeader(protocol: Protocol): Uint8Array {
  const id = PROTOCOL[protocol];
  return new Uint8Array([0x00, 0x53, 0x50, 0x00, id >> 8, id & 0xff, 0x00, 0x00]);
}

function describeId(id: number): string {
  const hex = `0x${id.toString(16).padStart(4, "0")}`;
  const name = PROTOCOL_NAMES[id];
  return name === undefined ? hex : `${hex} (${name})`;
}

/** Checks the peer's header; throws a {@linkcode ProtocolError} saying what was wrong. */
export function checkHeader(header: Uint8Array, self: Protocol): void {
  if (
    header.length !== 8 || header[0] !== 0x00 || header[1] !== 0x53 || header[2] !== 0x50 ||
    header[3] !== 0x00 || header[6] !== 0x00 || header[7] !== 0x00
  ) {
    const hex = [...header].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new ProtocolError(
      `peer sent a bad SP header [${hex}]; expected 00 53 50 00 <protocol u16> 00 00`,
    );
  }
  const id = (header[4]! << 8) | header[5]!;
  const peer = PEER[self];
  if (id !== PROTOCOL[peer]) {
    throw new ProtocolError(
      `peer speaks protocol ${describeId(id)}; ${self}0 talks only to ${peer}0 ` +
        `(0x${PROTOCOL[peer].toString(16).padStart(4, "0")})`,
    );
  }
}

/** How messages are framed on a stream: TCP (`u64` length) or IPC (`01` + `u64` length). */
export type Framing = "tcp" | "ipc";

/** Frames one message: its length prefix (and IPC type byte) and payload in one buffer. */
export function encodeFrame(framing: Framing, parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  return encodeFrameHead(framing, length, parts);
}

/**
 * The start of a frame announcing `length` payload bytes, followed by `parts` (which may be
 * only the first of the payload's parts; the caller writes the rest after it).
 */
export function encodeFrameHead(
  framing: Framing,
  length: number,
  parts: readonly Uint8Array[],
): Uint8Array {
  let headLength = 0;
  for (const part of parts) headLength += part.length;
  const prefix = framing === "ipc" ? 9 : 8;
  const frame = new Uint8Array(prefix + headLength);
  const view = new DataView(frame.buffer);
  if (framing === "ipc") frame[0] = 0x01;
  view.setBigUint64(prefix - 8, BigInt(length));
  let offset = prefix;
  for (const part of parts) {
    frame.set(part, offset);
    offset += part.length;
  }
  return frame;
}

/**
 * Cuts a byte stream into messages. Each length prefix is checked against `maxMessageBytes`
 * before anything is allocated for it; a bad IPC type byte or an oversized claim throws, and
 * the caller drops the pipe.
 */
export class FrameDecoder {
  readonly framing: Framing;
  readonly maxMessageBytes: number;
  #prefix = new Uint8Array(9);
  #prefixFilled = 0;
  #body: Uint8Array | undefined;
  #bodyFilled = 0;

  readonly #allocate: (length: number) => Uint8Array;

  /** `allocate` gives the buffer for a message that spans reads (a pool may recycle them). */
  constructor(
    framing: Framing,
    maxMessageBytes: number,
    allocate: (length: number) => Uint8Array = (length) => new Uint8Array(length),
  ) {
    this.framing = framing;
    this.maxMessageBytes = maxMessageBytes;
    this.#allocate = allocate;
  }

  /** True while part of a message has been read. */
  get midMessage(): boolean {
    return this.#prefixFilled > 0 || this.#body !== undefined;
  }

  /**
   * The unfilled rest of a message being received, when one is: the caller may read straight
   * into it (then call {@linkcode FrameDecoder.filled}), sparing a copy of large messages.
   */
  get bodyTarget(): Uint8Array | undefined {
    return this.#body?.subarray(this.#bodyFilled);
  }

  /** Records `n` bytes read into {@linkcode FrameDecoder.bodyTarget}. */
  filled(n: number, emit: (message: Uint8Array) => void): void {
    const body = this.#body;
    if (body === undefined) throw new TypeError("no message body is being received");
    this.#bodyFilled += n;
    if (this.#bodyFilled === body.length) {
      this.#body = undefined;
      emit(body);
    }
  }

  /** Feeds bytes; `emit` gets each complete message (an owned buffer). */
  push(chunk: Uint8Array, emit: (message: Uint8Array) => void): void {
    const prefixLength = this.framing === "ipc" ? 9 : 8;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#body === undefined) {
        const take = Math.min(prefixLength - this.#prefixFilled, chunk.length - offset);
        this.#prefix.set(chunk.subarray(offset, offset + take), this.#prefixFilled);
        this.#prefixFilled += take;
        offset += take;
        if (this.#prefixFilled < prefixLength) return;
        if (this.framing === "ipc" && this.#prefix[0] !== 0x01) {
          throw new ProtocolError(
            `IPC message type byte was 0x${this.#prefix[0]!.toString(16).padStart(2, "0")}; ` +
              "expected 0x01",
          );
        }
        const view = new DataView(this.#prefix.buffer, prefixLength - 8, 8);
        const claimed = view.getBigUint64(0);
        if (claimed > BigInt(this.maxMessageBytes)) {
          throw new MessageTooLargeError(
            `peer announced a message of ${claimed} bytes; the limit is ${this.maxMessageBytes} ` +
              "bytes (raise maxMessageBytes to accept it)",
            this.maxMessageBytes,
          );
        }
        this.#prefixFilled = 0;
        const length = Number(claimed);
        if (length === 0) {
          emit(new Uint8Array(0));
          continue;
        }
        // A whole message already here: hand out a copy without going through #body.
        if (chunk.length - offset >= length) {
          const message = this.#allocate(length);
          message.set(chunk.subarray(offset, offset + length));
          emit(message);
          offset += length;
          continue;
        }
        this.#body = this.#allocate(length);
        this.#bodyFilled = 0;
      }
      const body = this.#body;
      const take = Math.min(body.length - this.#bodyFilled, chunk.length - offset);
      body.set(chunk.subarray(offset, offset + take), this.#bodyFilled);
      this.#bodyFilled += take;
      offset += take;
      if (this.#bodyFilled === body.length) {
        this.#body = undefined;
        emit(body);
      }
    }
  }
}

/** Where to listen or dial. */
export type Endpoint =
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number }
  | { readonly transport: "ipc"; readonly path: string }
  | {
    readonly transport: "ws";
    readonly hostname: string;
    readonly port: number;
    /** The HTTP path, `/` when the URL has none (NNG's default too). */
    readonly path: string;
  };

/**
 * Parses `tcp://host:port`, `tcp://[::1]:port`, `ipc:///abs/path`, `ipc://rel/path` or
 * `ws://host:port/path`.
 *
 * @example
 * ```ts
 * import { parseUrl } from "@x/rsock/reqrep";
 * parseUrl("tcp://127.0.0.1:5555"); // { transport: "tcp", hostname: "127.0.0.1", port: 5555 }
 * parseUrl("ipc:///tmp/rsock.ipc"); // { transport: "ipc", path: "/tmp/rsock.ipc" }
 * ```
 */
export function parseUrl(url: string): Endpoint {
  if (url.startsWith("ipc://") || url.startsWith("unix://")) {
    const path = url.slice(url.indexOf("://") + 3);
    if (path === "") throw new TypeError(`"${url}" names no socket path; expected ipc:///path`);
    return { transport: "ipc", path };
  }
  const match = /^(tcp|ws):\/\/(\[[^\]]+\]|[^:/]*):(\d+)(\/[^?#]*)?$/.exec(url);
  if (match === null || (match[1] === "tcp" && match[4] !== undefined)) {
    const expected = url.startsWith("ws://")
      ? "ws://host:port/path"
      : "tcp://host:port, ipc:///path or ws://host:port/path";
    throw new TypeError(`unsupported URL "${url}"; expected ${expected}`);
  }
  const port = Number(match[3]);
  if (port > 65535) throw new RangeError(`port in "${url}" must be from 0 to 65535`);
  let hostname = match[2]!;
  if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);
  if (hostname === "" || hostname === "*") hostname = "0.0.0.0";
  return match[1] === "ws"
    ? { transport: "ws", hostname, port, path: match[4] ?? "/" }
    : { transport: "tcp", hostname, port };
}

/**
 * Writes an endpoint back as a URL (with the real port once bound).
 *
 * @example
 * ```ts
 * import { formatUrl } from "@x/rsock/reqrep";
 * formatUrl({ transport: "tcp", hostname: "::1", port: 5555 }); // "tcp://[::1]:5555"
 * ```
 */
export function formatUrl(endpoint: Endpoint): string {
  if (endpoint.transport === "ipc") return `ipc://${endpoint.path}`;
  const host = endpoint.hostname.includes(":") ? `[${endpoint.hostname}]` : endpoint.hostname;
  if (endpoint.transport === "ws") return `ws://${host}:${endpoint.port}${endpoint.path}`;
  return `tcp://${host}:${endpoint.port}`;
}

/**
 * Recycles the buffers of large received messages, so a steady stream of them reuses warm
 * memory instead of fresh pages (measured: about half the throughput of 1 MiB echoes is lost
 * to fresh allocations). A buffer comes back only through {@linkcode BufferPool.release}, which
 * callers use once nothing can see the message any more.
 */
export class BufferPool {
  /**
   * Where a message starts in its buffer. Large buffers are mmap'd with their data 16 bytes
   * past a page boundary; the kernel copies received bytes into such a page start markedly
   * slower (measured: about 15% of 1 MiB echo throughput, likely 4K aliasing against its own
   * page-aligned socket buffers), so messages start 48 bytes in, on the next cache line.
   */
  static readonly VIEW_OFFSET_BYTES = 48;
  static readonly MINIMUM_BYTES = 64 * 1024;
  readonly #free = new Map<number, ArrayBuffer[]>();
  readonly #capacity: number;
  #pooled = 0;

  /** Keeps at most `capacity` bytes of idle buffers. */
  constructor(capacity = 32 * 1024 * 1024) {
    this.#capacity = capacity;
  }

  /** A buffer of `length` bytes: recycled when one of its size class is free. */
  allocate(length: number): Uint8Array {
    if (length < BufferPool.MINIMUM_BYTES) return new Uint8Array(length);
    // Sizes round up to whole 64 KiB units, so a class wastes at most 64 KiB.
    const size = Math.ceil(length / BufferPool.MINIMUM_BYTES) * BufferPool.MINIMUM_BYTES;
    const recycled = this.#free.get(size)?.pop();
    if (recycled !== undefined) this.#pooled -= size;
    const buffer = recycled ?? new ArrayBuffer(size + BufferPool.VIEW_OFFSET_BYTES);
    return new Uint8Array(buffer, BufferPool.VIEW_OFFSET_BYTES, length);
  }

  /** Gives back the buffer behind `bytes` (a view of one {@linkcode BufferPool.allocate} made). */
  release(bytes: Uint8Array): void {
    const buffer = bytes.buffer;
    if (!(buffer instanceof ArrayBuffer)) return;
    const size = buffer.byteLength - BufferPool.VIEW_OFFSET_BYTES;
    if (size < BufferPool.MINIMUM_BYTES || size % BufferPool.MINIMUM_BYTES !== 0) return;
    if (this.#pooled + size > this.#capacity) return;
    const list = this.#free.get(size) ?? [];
    if (list.includes(buffer)) return;
    list.push(buffer);
    this.#free.set(size, list);
    this.#pooled += size;
  }
}
