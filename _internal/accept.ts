/**
 * The one accept loop every listener in rsock runs. Only the listener's own close ends it: a
 * client that resets before it is accepted, or a process out of file descriptors, must not
 * leave new clients hanging in the kernel's backlog for good.
 *
 * @module
 */

import { ConnectionError } from "./errors.ts";
import { pause } from "./pause.ts";

/** How an accept error is handled. */
export const AcceptFault = {
  /** A client reset or aborted its connection before it was accepted: skip it. */
  peer: "peer",
  /** The process or system is out of file descriptors: back off and retry. */
  descriptors: "descriptors",
  /** Anything else: back off and retry. */
  other: "other",
} as const;

/** One of {@linkcode AcceptFault}. */
export type AcceptFault = typeof AcceptFault[keyof typeof AcceptFault];

/** Options of {@linkcode acceptConnections}. */
export interface AcceptOptions {
  /**
   * Told of accept errors, once per kind ({@linkcode AcceptFault}) and error name over the
   * listener's life, not per occurrence: a flood of resets must not become a flood of logs.
   */
  readonly onError?: (error: Error) => void;
  /** Ends the loop (and any back-off wait) when aborted; abort it before closing the listener. */
  readonly signal?: AbortSignal;
  /** What is listened on, for messages (`tcp://127.0.0.1:5555`). */
  readonly name?: string;
}

/** First back-off after a descriptor shortage or an unknown error, in ms. */
export const ACCEPT_BACKOFF_MIN = 10;
/** Longest back-off, in ms. */
export const ACCEPT_BACKOFF_MAX = 1000;

const PEER_CODES = new Set(["ENOTCONN", "ECONNABORTED", "ECONNRESET", "EPROTO", "EPIPE"]);
const DESCRIPTOR_CODES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/** Sorts an accept error into what the loop does about it. */
export function classifyAcceptError(error: unknown): AcceptFault {
  if (
    error instanceof Deno.errors.NotConnected || error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe
  ) {
    return AcceptFault.peer;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (PEER_CODES.has(code)) return AcceptFault.peer;
    if (DESCRIPTOR_CODES.has(code)) return AcceptFault.descriptors;
  }
  // Deno reports EMFILE/ENFILE as a plain Error; its message keeps the OS error number.
  const message = error instanceof Error ? error.message : String(error);
  if (/\(os error (23|24)\)/.test(message)) return AcceptFault.descriptors;
  return AcceptFault.other;
}

function describe(fault: AcceptFault, error: unknown, where: string, happened?: string): string {
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const what = happened !== undefined
    ? happened
    : fault === AcceptFault.peer
    ? "a client reset its connection before it was accepted; skipped it"
    : fault === AcceptFault.descriptors
    ? `out of file descriptors; retrying after ${ACCEPT_BACKOFF_MIN} ms to ` +
      `${ACCEPT_BACKOFF_MAX} ms pauses`
    : `accept failed; retrying after ${ACCEPT_BACKOFF_MIN} ms to ${ACCEPT_BACKOFF_MAX} ms pauses`;
  return `${where}: ${what} (${detail}); later errors of this kind are not reported`;
}

/**
 * Accepts connections from `listener` and hands each to `onConnection` until the listener is
 * closed (`signal` aborted, or `BadResource` from a closed listener). Errors of one connection
 * (`NotConnected`, `ConnectionAborted`, `ConnectionReset`) are skipped; `EMFILE`/`ENFILE` and
 * unknown errors back off from 10 ms, doubling to 1 s, and retry. Each kind is reported once
 * through `onError`.
 *
 * @example
 * ```ts
 * import { acceptConnections } from "./accept.ts";
 * const stop = new AbortController();
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const loop = acceptConnections(listener, (conn) => conn.close(), { signal: stop.signal });
 * stop.abort();
 * listener.close();
 * await loop;
 * ```
 */
export async function acceptConnections<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  onConnection: (conn: C) => void,
  options: AcceptOptions = {},
): Promise<void> {
  const { onError, signal } = options;
  const reported = new Set<string>();
  const report = (fault: AcceptFault, error: unknown, what?: string) => {
    const key = `${what ?? fault}:${error instanceof Error ? error.name : "?"}`;
    if (reported.has(key)) return;
    reported.add(key);
    const where = options.name ?? formatAddr(listener.addr);
    try {
      onError?.(new ConnectionError(describe(fault, error, where, what), { cause: error }));
    } catch {
      // a failing logger must not end the listener
    }
  };
  let delay = 0;
  while (!signal?.aborted) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      // A closed listener can never accept again, whoever closed it.
      if (signal?.aborted || error instanceof Deno.errors.BadResource) return;
      const fault = classifyAcceptError(error);
      report(fault, error);
      if (fault === AcceptFault.peer) continue;
      delay = delay === 0 ? ACCEPT_BACKOFF_MIN : Math.min(delay * 2, ACCEPT_BACKOFF_MAX);
      await pause(delay, signal);
      continue;
    }
    delay = 0;
    if (signal?.aborted) {
      conn.close();
      return;
    }
    try {
      onConnection(conn);
    } catch (error) {
      // A bug in one connection's setup must not end the listener either.
      try {
        conn.close();
      } catch {
        // already closed
      }
      report(AcceptFault.other, error, "setting up an accepted connection failed; closed it");
    }
  }
}

function formatAddr(addr: Deno.Addr): string {
  if (addr.transport === "tcp" || addr.transport === "udp") {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    return `listener ${host}:${addr.port}`;
  }
  return `listener ${addr.transport === "unix" ? addr.path : addr.transport}`;
}
