/**
 * The SP wire shared by every protocol, parsed at the edge: the protocol table, the 8-byte
 * connection header, TCP/IPC/TLS message framing and endpoint URLs. Pure (no I/O), so tests can
 * feed it bytes split anywhere.
 *
 * @module
 */

import { MessageTooLargeError, ProtocolError } from "../errors.ts";

/**
 * Every SP protocol NNG defines: its wire id (`major * 16 + minor`), the id it must meet, and
 * the name used in WebSocket subprotocols (`<name>.sp.nanomsg.org`).
 */
export const SP_PROTOCOLS = {
  pair0: { id: 0x10, peer: 0x10, wsName: "pair" },
  pair1: { id: 0x11, peer: 0x11, wsName: "pair1" },
  pub0: { id: 0x20, peer: 0x21, wsName: "pub" },
  sub0: { id: 0x21, peer: 0x20, wsName: "sub" },
  req0: { id: 0x30, peer: 0x31, wsName: "req" },
  rep0: { id: 0x31, peer: 0x30, wsName: "rep" },
  push0: { id: 0x50, peer: 0x51, wsName: "push" },
  pull0: { id: 0x51, peer: 0x50, wsName: "pull" },
  surveyor0: { id: 0x62, peer: 0x63, wsName: "surveyor" },
  respondent0: { id: 0x63, peer: 0x62, wsName: "respondent" },
  bus0: { id: 0x70, peer: 0x70, wsName: "bus" },
} as const;

/** An SP protocol by its NNG name (`"pub0"`, `"rep0"`, …). */
export type SpProtocol = keyof typeof SP_PROTOCOLS;

/** The protocol name for a wire id, or undefined for an id NNG does not define. */
export function protocolName(id: number): SpProtocol | undefined {
  for (const [name, info] of Object.entries(SP_PROTOCOLS)) {
    if (info.id === id) return name as SpProtocol;
  }
  return undefined;
}

function describeId(id: number): string {
  const hex = `0x${id.toString(16).padStart(4, "0")}`;
  const name = protocolName(id);
  return name === undefined ? hex : `${hex} (${name})`;
}

/** The 8 bytes each side sends first: `00 'S' 'P' 00`, protocol id (u16 BE), `00 00`. */
export function connectionHeader(protocol: SpProtocol): Uint8Array {
  const id = SP_PROTOCOLS[protocol].id;
  return new Uint8Array([0x00, 0x53, 0x50, 0x00, id >> 8, id & 0xff, 0x00, 0x00]);
}

/** Checks the peer's header; throws a {@linkcode ProtocolError} saying what was wrong. */
export function checkHeader(header: Uint8Array, self: SpProtocol): void {
  if (
    header.length !== 8 || header[0] !== 0x00 || header[1] !== 0x53 || header[2] !== 0x50 ||
    header[3] !== 0x00 || header[6] !== 0x00 || header[7] !== 0x00
  ) {
    const hex = [...header].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new ProtocolError(
      `peer sent a bad SP header [${hex}]; expected 00 53 50 00 <protocol u16> 00 00`,
    );
  }
  checkPeer((header[4]! << 8) | header[5]!, self);
}

/** Throws a {@linkcode ProtocolError} unless protocol `id` may talk to `self`. */
export function checkPeer(id: number, self: SpProtocol): void {
  const peer = SP_PROTOCOLS[self].peer;
  if (id !== peer) {
    const hex = `0x${peer.toString(16).padStart(4, "0")}`;
    throw new ProtocolError(
      `peer speaks protocol ${describeId(id)}; ${self} talks only to ${
        protocolName(peer)
      } (${hex})`,
    );
  }
}

/**
 * How SP frames messages on a byte stream: TCP and TLS (`u64` length) or IPC (`01` + `u64`).
 * Not `@x/rsock/socket`'s `Framing` (chunk or line), which cuts a plain stream.
 */
export type SpFraming = "tcp" | "ipc";

/**
 * The start of a frame announcing `length` payload bytes, followed by `parts` (which may be
 * only the first of the payload's parts; the caller writes the rest after it).
 */
export function encodeFrameHead(
  framing: SpFraming,
  length: number,
  parts: readonly Uint8Array[],
): Uint8Array {
  let headLength = 0;
  for (const part of parts) headLength += part.length;
  const prefix = framing === "ipc" ? 9 : 8;
  const frame = new Uint8Array(prefix + headLength);
  if (framing === "ipc") frame[0] = 0x01;
  // Lengths stay below 2^53; the high word is written as two 32-bit halves.
  const view = new DataView(frame.buffer);
  view.setUint32(prefix - 8, Math.floor(length / 0x100000000));
  view.setUint32(prefix - 4, length >>> 0);
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
  readonly framing: SpFraming;
  readonly maxMessageBytes: number;
  #prefix = new Uint8Array(9);
  #prefixFilled = 0;
  #body: Uint8Array | undefined;
  #bodyFilled = 0;
  readonly #allocate: (length: number) => Uint8Array;

  /** `allocate` gives the buffer for each message (a pool may recycle them). */
  constructor(
    framing: SpFraming,
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

  /** The unfilled rest of a large message being received: read straight into it. */
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
        const high = view.getUint32(0);
        const claimed = high * 0x100000000 + view.getUint32(4);
        if (high >= 0x200000 || claimed > this.maxMessageBytes) {
          throw new MessageTooLargeError(
            `peer announced a message of ${view.getBigUint64(0)} bytes; the limit is ` +
              `${this.maxMessageBytes} bytes (raise maxMessageBytes to accept it)`,
            this.maxMessageBytes,
          );
        }
        this.#prefixFilled = 0;
        if (chunk.length - offset >= claimed) {
          const message = this.#allocate(claimed);
          message.set(chunk.subarray(offset, offset + claimed));
          emit(message);
          offset += claimed;
          continue;
        }
        this.#body = this.#allocate(claimed);
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
  | { readonly transport: "tls+tcp"; readonly hostname: string; readonly port: number }
  | { readonly transport: "ipc"; readonly path: string }
  | {
    readonly transport: "ws";
    readonly hostname: string;
    readonly port: number;
    /** The HTTP path, `/` when the URL has none (NNG's default too). */
    readonly path: string;
  }
  | {
    readonly transport: "wss";
    readonly hostname: string;
    readonly port: number;
    /** The HTTP path, `/` when the URL has none (NNG's default too). */
    readonly path: string;
  };

const EXPECTED_URLS =
  "tcp://host:port, tls+tcp://host:port, ipc:///path, ws://host:port/path or wss://host:port/path";

/**
 * Parses `tcp://host:port`, `tls+tcp://host:port`, `tcp://[::1]:port`, `ipc:///abs/path`,
 * `ipc://rel/path`, `ws://host:port/path` or `wss://host:port/path`.
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
  const match = /^(tcp|tls\+tcp|ws|wss):\/\/(\[[^\]]+\]|[^:/]*):(\d+)(\/[^?#]*)?$/.exec(url);
  const scheme = match?.[1];
  if (match === null || ((scheme === "tcp" || scheme === "tls+tcp") && match[4] !== undefined)) {
    const expected = url.startsWith("ws://")
      ? "ws://host:port/path"
      : url.startsWith("wss://")
      ? "wss://host:port/path"
      : EXPECTED_URLS;
    throw new TypeError(`unsupported URL "${url}"; expected ${expected}`);
  }
  const port = Number(match[3]);
  if (port > 65535) throw new RangeError(`port in "${url}" must be from 0 to 65535`);
  let hostname = match[2]!;
  if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);
  if (hostname === "" || hostname === "*") hostname = "0.0.0.0";
  const path = match[4] ?? "/";
  if (scheme === "ws") return { transport: "ws", hostname, port, path };
  if (scheme === "wss") return { transport: "wss", hostname, port, path };
  return scheme === "tcp"
    ? { transport: "tcp", hostname, port }
    : { transport: "tls+tcp", hostname, port };
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
  const base = `${endpoint.transport}://${host}:${endpoint.port}`;
  return endpoint.transport === "ws" || endpoint.transport === "wss"
    ? `${base}${endpoint.path}`
    : base;
}
