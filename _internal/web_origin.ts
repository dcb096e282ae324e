/**
 * Who may reach a WebSocket door from a browser. Loopback is no boundary for a browser: any
 * page the user opens can open a WebSocket to 127.0.0.1, and a site can make its own name
 * resolve to 127.0.0.1 (DNS rebinding). So a door that runs code checks the `Origin` header
 * (sent by every browser, by no command-line client) and the `Host` header.
 *
 * @module
 */

/**
 * A check of the `Host` header: `localhost`, IP literals and the bound hostname pass, and the
 * names in `extra`; any other name is refused. IP literals cannot be rebound, names can.
 *
 * @example
 * ```ts
 * import { hostCheck } from "./web_origin.ts";
 * const ok = hostCheck("127.0.0.1", []);
 * ok(new Request("http://127.0.0.1:7681/", { headers: { host: "evil.example:7681" } })); // false
 * ```
 */
export function hostCheck(bound: string, extra: readonly string[]): (request: Request) => boolean {
  const names = new Set(["localhost", bound.toLowerCase(), ...extra.map((h) => h.toLowerCase())]);
  return (request) => {
    const host = request.headers.get("host");
    if (host === null) return false;
    let name: string;
    try {
      name = new URL(`http://${host}`).hostname;
    } catch {
      return false;
    }
    return name.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(name) || names.has(name) ||
      names.has(name.replace(/\.$/, ""));
  };
}

/**
 * `scheme://host[:port]` as browsers send it in `Origin`, lower-cased; undefined if not a URL
 * or an opaque origin (`file://`, `data:`, an extension's page: `URL.origin` is then `"null"`).
 */
function normalizeOrigin(origin: string): string | undefined {
  let normalized: string;
  try {
    normalized = new URL(origin).origin.toLowerCase();
  } catch {
    return undefined;
  }
  return normalized === "null" ? undefined : normalized;
}

/**
 * A check of the `Origin` header: a request without one (not from a browser: nngcat, R, Deno,
 * Python) passes; so does a page served by this same host and port, and an origin listed in
 * `allowed` (`"https://app.example"`, or `"*"` for any). Every other browser page is refused.
 *
 * @example
 * ```ts
 * import { originCheck } from "./web_origin.ts";
 * const ok = originCheck([]);
 * ok(new Request("http://127.0.0.1:5556/", {
 *   headers: { host: "127.0.0.1:5556", origin: "https://evil.example" },
 * })); // false
 * ```
 */
export function originCheck(allowed: readonly string[]): (request: Request) => boolean {
  const any = allowed.includes("*");
  const listed = new Set(allowed.map(normalizeOrigin).filter((o) => o !== undefined));
  return (request) => {
    const origin = request.headers.get("origin");
    if (origin === null) return true;
    if (any) return true;
    const normalized = normalizeOrigin(origin);
    // "null" (sandboxed frames, file://) and other opaque origins included
    if (normalized === undefined) return false;
    if (listed.has(normalized)) return true;
    const host = request.headers.get("host");
    return host !== null && new URL(normalized).host === host.toLowerCase();
  };
}
