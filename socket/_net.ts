/**
 * What the server and the connection share: the default port, the port check, `host:port`
 * formatting, and writing all of a buffer.
 *
 * @module
 */

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

/** Throws a RangeError unless `port` is a TCP port number. */
export function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
  }
}

/** `host:port`, with an IPv6 host in brackets. */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Writes all of `data` to `conn`. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await conn.write(offset === 0 ? data : data.subarray(offset));
  }
}
