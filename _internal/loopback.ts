/**
 * What counts as loopback where rsock decides whether a door may run code without a token.
 *
 * @module
 */

const IPV4_LOOPBACK = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * True when `hostname` is a loopback address: `localhost`, `::1` (bare or in a URL's
 * brackets, `[::1]`) or a dotted IPv4 address in 127.0.0.0/8. An address, never a name that
 * only starts like one: `127.0.0.1.evil.example` is resolved by DNS and may be any address.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./loopback.ts";
 * isLoopback("127.0.0.2"); // true
 * isLoopback("127.0.0.1.evil.example"); // false
 * ```
 */
export function isLoopback(hostname: string): boolean {
  if (hostname === "localhost" || hostname === "::1" || hostname === "[::1]") return true;
  const octets = IPV4_LOOPBACK.exec(hostname);
  return octets !== null && octets.slice(1).every((octet) => Number(octet) <= 255);
}
