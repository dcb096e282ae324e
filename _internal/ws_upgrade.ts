/**
 * `Deno.upgradeWebSocket` for a request that may not be a valid handshake. Deno throws a
 * `TypeError` when `Sec-WebSocket-Key` is missing or `Connection` lacks `Upgrade`; uncaught in
 * a `Deno.serve` handler, that is a 500 and a stack trace on stderr for every such request, so
 * any local process could flood the log.
 *
 * @module
 */

/**
 * Upgrades `request`, or returns a 400 response saying why the handshake is not valid.
 *
 * @example
 * ```ts
 * import { upgradeOrRefuse } from "./ws_upgrade.ts";
 * const answer = upgradeOrRefuse(new Request("http://127.0.0.1/", { headers: { upgrade: "websocket" } }));
 * answer instanceof Response; // true: 400, no Sec-WebSocket-Key
 * ```
 */
export function upgradeOrRefuse(
  request: Request,
  options: Deno.UpgradeWebSocketOptions = {},
): { socket: WebSocket; response: Response } | Response {
  try {
    return Deno.upgradeWebSocket(request, options);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return new Response(`Bad Request: not a valid WebSocket handshake (${error.message})\n`, {
      status: 400,
    });
  }
}
