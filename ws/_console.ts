/**
 * The browser console service: the console page at `/` and its websocket at `/ws`, both
 * evaluating in one session (for instance the eval server's).
 *
 * @module
 */

import { CloseCode } from "./_peer.ts";
import { CONSOLE_PROTOCOL, consolePage } from "./_console_page.ts";
import { createServer, DEFAULT_WS_PORT, type WsServer, type WsServerClient } from "./_server.ts";
import { hostCheck, originCheck } from "../_internal/web_origin.ts";

/** What the console needs from an eval session (`@x/rsock/eval`'s `EvalSession` fits). */
export interface ConsoleSession {
  /** Evaluates `code` and returns its printed text and whether it failed. */
  evaluate(code: string): Promise<{ readonly text: string; readonly error: boolean }>;
}

/** Options for {@linkcode serveConsole}. */
export interface ConsoleOptions {
  /** The session the page evaluates in, or a function that evaluates. */
  session: ConsoleSession | ConsoleSession["evaluate"];
  /** TCP port; 0 picks a free one. @default {7681} */
  port?: number;
  /** Address to bind; anything but loopback lets others run code in your program. @default {"127.0.0.1"} */
  hostname?: string;
  /** The page's title. @default {"rsock console"} */
  title?: string;
  /**
   * A secret the page's URL must carry as `?token=…` (for the page and its websocket), for
   * machines shared with other users.
   */
  token?: string;
  /**
   * Further host names the page may be reached by (the `Host` header), for a console bound to
   * a wildcard address and opened by the machine's name. `localhost`, IP addresses and the
   * bound hostname are always accepted; other names are refused with 403, so a foreign site
   * whose name is made to resolve to 127.0.0.1 (DNS rebinding) cannot reach the console.
   */
  allowedHosts?: readonly string[];
  /**
   * Further browser origins (`"https://app.example"`, `"*"` for any) whose pages may open the
   * console's websocket. A request without `Origin` (not a browser) and the console's own page
   * are always accepted; any other page is refused with 403, because a page on any site can
   * open a websocket to 127.0.0.1. @default {[]}
   */
  allowedOrigins?: readonly string[];
  /**
   * Told when the listener could not accept connections (see `WsServerOptions.onAcceptError`),
   * once per kind. @default {undefined} (nothing is reported)
   */
  onError?: (error: Error) => void;
  /** Largest code or result message in bytes. @default {16777216} */
  maxMessageSize?: number;
  /** Stops the service when aborted. */
  signal?: AbortSignal;
}

/** A running console service from {@linkcode serveConsole}. */
export interface ConsoleServer extends AsyncDisposable {
  /** The TCP port. */
  readonly port: number;
  /** The bound address. */
  readonly hostname: string;
  /** `http://host:port/` of the page (with the token when one is set). */
  readonly url: string;
  /** Number of pages connected. */
  readonly pages: number;
  /** The underlying websocket server. */
  readonly server: WsServer;
  /** Shows `text` on every connected page as a server push; returns the number of pages. */
  push(text: string): number;
  /** Closes every page's connection (1001) and stops. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serves the browser console: the page at `/` and its websocket at `/ws`, evaluating in
 * `session` (the eval server's session, so the page is a second console for the running
 * program). Binds 127.0.0.1:7681 by default; refuses websockets from other origins and
 * requests by host names it does not know (DNS rebinding). This is what
 * `rsock serve --ws [PORT]` runs.
 *
 * @example
 * ```ts
 * import { createSession, startEvalServer } from "@x/rsock/eval";
 * import { serveConsole } from "@x/rsock/ws";
 *
 * await using session = await createSession();
 * await using evalServer = await startEvalServer({ port: 8888, session });
 * await using console_ = serveConsole({ session, port: 7681 });
 * console_.push("hello from the program");
 * ```
 */
export function serveConsole(options: ConsoleOptions): ConsoleServer {
  const session = options.session;
  const evaluate = typeof session === "function" ? session : session.evaluate.bind(session);
  const html = consolePage(options.title === undefined ? {} : { title: options.title });
  const token = options.token;
  const tokenOk = (request: Request) =>
    token === undefined || new URL(request.url).searchParams.get("token") === token;
  const hostOk = hostCheck(options.hostname ?? "127.0.0.1", options.allowedHosts ?? []);
  const originOk = originCheck(options.allowedOrigins ?? []);
  const server = createServer({
    port: options.port ?? DEFAULT_WS_PORT,
    hostname: options.hostname ?? "127.0.0.1",
    maxMessageSize: options.maxMessageSize ?? 16_777_216,
    protocols: [CONSOLE_PROTOCOL],
    upgrade(request) {
      if (new URL(request.url).pathname !== "/ws") {
        return new Response("Not Found\n", { status: 404 });
      }
      if (!hostOk(request) || !tokenOk(request) || !originOk(request)) return false;
    },
    webpage(request) {
      const path = new URL(request.url).pathname;
      if (path !== "/" && path !== "/index.html") {
        return new Response("Not Found\n", { status: 404 });
      }
      if (!hostOk(request)) {
        return new Response("Forbidden: unknown host name (see allowedHosts)\n", { status: 403 });
      }
      if (!tokenOk(request)) return new Response("Forbidden: token\n", { status: 403 });
      return new Response(html, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          // Inline script and style only, and websockets to this host: nothing else loads.
          "content-security-policy":
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
            "connect-src 'self'; base-uri 'none'; form-action 'none'",
        },
      });
    },
    receive(data, client) {
      void answer(data, client);
    },
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onError === undefined ? {} : { onAcceptError: options.onError }),
  });

  async function answer(data: unknown, client: WsServerClient): Promise<void> {
    let request: { type?: unknown; id?: unknown; code?: unknown };
    try {
      request = JSON.parse(String(data));
    } catch {
      client.close(CloseCode.policyViolation, "expected JSON messages of the console page");
      return;
    }
    if (request.type !== "eval" || typeof request.code !== "string") return;
    let reply: { text: string; error: boolean };
    try {
      const result = await evaluate(request.code);
      reply = { text: result.text, error: result.error };
    } catch (error) {
      reply = { text: error instanceof Error ? error.message : String(error), error: true };
    }
    if (!client.open) return;
    try {
      await client.write(JSON.stringify({ type: "result", id: request.id, ...reply }));
    } catch {
      // The page went away while the code ran.
    }
  }

  const suffix = token === undefined ? "" : `?token=${encodeURIComponent(token)}`;
  return {
    port: server.port,
    hostname: server.hostname,
    url: `http://${
      server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname
    }:${server.port}/${suffix}`,
    server,
    get pages() {
      return server.clients.length;
    },
    push(text: string): number {
      return server.broadcast(JSON.stringify({ type: "push", text }));
    },
    close(): Promise<void> {
      return server.close();
    },
    [Symbol.asyncDispose](): Promise<void> {
      return server.close();
    },
  };
}
