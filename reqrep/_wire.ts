/**
 * REQ/REP's view of the SP wire: its two protocol names and the helpers tests and tools use,
 * in those names, over the shared wire in `_internal/sp/`.
 *
 * @module
 */

import {
  checkHeader as checkSpHeader,
  connectionHeader as spHeader,
  encodeFrameHead,
  type SpFraming,
} from "../_internal/sp/wire.ts";

export { BufferPool } from "../_internal/sp/buffer_pool.ts";
export {
  type Endpoint,
  formatUrl,
  FrameDecoder,
  parseUrl,
  type SpFraming,
} from "../_internal/sp/wire.ts";

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

/** The protocol each one must meet. */
export const PEER: Record<Protocol, Protocol> = { req: "rep", rep: "req" };

/** The 8 bytes each side sends first: `00 'S' 'P' 00`, protocol id (u16 BE), `00 00`. */
export function connectionHeader(protocol: Protocol): Uint8Array {
  return spHeader(protocol === "req" ? "req0" : "rep0");
}

/** Checks the peer's header; throws a `ProtocolError` saying what was wrong. */
export function checkHeader(header: Uint8Array, self: Protocol): void {
  checkSpHeader(header, self === "req" ? "req0" : "rep0");
}

/** Frames one message: its length prefix (and IPC type byte) and payload in one buffer. */
export function encodeFrame(framing: SpFraming, parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  return encodeFrameHead(framing, length, parts);
}
