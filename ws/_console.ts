/**
 * The browser console service: the console page at `/` and its websocket at `/ws`, both
 * evaluating in one session (for instance the eval server's).
 *
 * @module
 */

import { sameSecret } from "../_internal/secret.ts";
import { utf8Length } from "../_internal/utf8.ts";
import { CloseCode } from "./_peer.ts";
import { CONSOLE_PROTOCOL, consolePage } from "./_console_page.ts";
import { createServer, DEFAULT_WS_PORT, type WsServer, type WsServerClient } from "./_server.ts";
import { hostCheck, originCheck } from "../_internal/web_origin.ts";

/** What the console needs from an eval session (`@x/rsock/eval`'s `EvalSession` fits). */
export interface ConsoleSession {
  /**
   * Evaluates `code` and returns its printed text and whether it failed. The console tells
   * who asks (`door`: `"console page 2 (127.0.0.1:50312)"`) and gives a signal that aborts
   * when that page is gone (`requesterGone`), as `@x/rsock/eval`'s `EvaluateOptions` name them.
   */
  evaluate(
    code: string,
    options?: { readonly door?: string; readonly requesterGone?: AbortSignal },
  ): Promise<{ readonly text: string; readonly error: boolean }>;
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
  /**
   * Bytes one page may have pending: code sent and not yet answered, plus results not yet
   * taken by the page. A page that sends code faster than it reads the results reaches it and
   * is closed with 1008 ("too slow: …"); one message larger than the bound alone still passes.
   *
   * @default {33554432}
   */
  maxPendingBytes?: number;
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
  const tokenOk = async (request: Request): Promise<boolean> =>
    token === undefined ||
    await sameSecret(new URL(request.url).searchParams.get("token") ?? "", token);
  const hostOk = hostCheck(options.hostname ?? "127.0.0.1", options.allowedHosts ?? []);
  const originOk = originCheck(options.allowedOrigins ?? []);
  const maxPending = options.maxPendingBytes ?? 33_554_432;
  if (!Number.isSafeInteger(maxPending) || maxPending < 1) {
    throw new RangeError(`maxPendingBytes must be a whole number ≥ 1, got ${maxPending}`);
  }
  /** Bytes pending per page (see `maxPendingBytes`). */
  const pending = new Map<WsServerClient, number>();
  /** Counts `bytes` as pending for `client`; false (and the page closed) past the bound. */
  const hold = (client: WsServerClient, bytes: number): boolean => {
    const held = pending.get(client) ?? 0;
    if (held > 0 && held + bytes > maxPending) {
      pending.delete(client);
      client.close(
        CloseCode.policyViolation,
        `too slow: ${held} bytes of code and results pending, bound ${maxPending}`,
      );
      return false;
    }
    pending.set(client, held + bytes);
    return true;
  };
  /** Aborted when its page goes: its evaluations have nobody to answer. */
  const gone = new Map<WsServerClient, AbortController>();
  const goneSignal = (client: WsServerClient): AbortSignal => {
    let controller = gone.get(client);
    if (controller === undefined) {
      controller = new AbortController();
      if (client.open) gone.set(client, controller);
      else controller.abort();
    }
    return controller.signal;
  };
  const release = (client: WsServerClient, bytes: number): void => {
    const held = pending.get(client);
    if (held === undefined) return;
    if (held <= bytes) pending.delete(client);
    else pending.set(client, held - bytes);
  };
  const server = createServer({
    port: options.port ?? DEFAULT_WS_PORT,
    hostname: options.hostname ?? "127.0.0.1",
    maxMessageSize: options.maxMessageSize ?? 16_777_216,
    protocols: [CONSOLE_PROTOCOL],
    async upgrade(request) {
      if (new URL(request.url).pathname !== "/ws") {
        return new Response("Not Found\n", { status: 404 });
      }
      if (!hostOk(request) || !(await tokenOk(request)) || !originOk(request)) return false;
    },
    async webpage(request) {
      const path = new URL(request.url).pathname;
      if (path !== "/" && path !== "/index.html") {
        return new Response("Not Found\n", { status: 404 });
      }
      if (!hostOk(request)) {
        return new Response("Forbidden: unknown host name (see allowedHosts)\n", { status: 403 });
      }
      if (!(await tokenOk(request))) return new Response("Forbidden: token\n", { status: 403 });
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
    closed(client) {
      gone.get(client)?.abort();
      gone.delete(client);
    },
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onError === undefined ? {} : { onAcceptError: options.onError }),
  });

  async function answer(data: unknown, client: WsServerClient): Promise<void> {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data as Uint8Array);
    let request: { type?: unknown; id?: unknown; code?: unknown };
    try {
      request = JSON.parse(text);
    } catch {
      client.close(CloseCode.policyViolation, "expected JSON messages of the console page");
      return;
    }
    if (request.type !== "eval" || typeof request.code !== "string") return;
    // A page that sends code and never reads results must not grow the server without cap.
    const codeBytes = utf8Length(request.code);
    if (!hold(client, codeBytes)) return;
    let messageBytes = 0;
    try {
      let reply: { text: string; error: boolean };
      try {
        const result = await evaluate(request.code, {
          door: `console page ${client.id} (${client.remoteAddress})`,
          requesterGone: goneSignal(client),
        });
        reply = { text: result.text, error: result.error };
      } catch (error) {
        reply = { text: error instanceof Error ? error.message : String(error), error: true };
      }
      if (!client.open) return;
      const message = JSON.stringify({ type: "result", id: request.id, ...reply });
      if (!hold(client, utf8Length(message))) return;
      messageBytes = utf8Length(message);
      await client.write(message);
    } catch {
      // The page went away while the code ran.
    } finally {
      release(client, codeBytes + messageBytes);
      if (!client.open) pending.delete(client);
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
