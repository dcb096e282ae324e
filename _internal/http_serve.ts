/**
 * `Deno.serve` that outlives its accept loop. Deno 2.9's HTTP server ends for good (and, if
 * nobody awaits `finished`, crashes the process with an uncaught `Http` error) the first time
 * its accept fails with `EMFILE`; nothing in `Deno.serve` can skip that error. So when the
 * server ends without being asked to, it is started again on the same address, after a pause
 * that doubles from 10 ms to 1 s while the restart itself fails (no descriptors yet).
 *
 * @module
 */

import { ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, classifyAcceptError } from "./accept.ts";
import { ConnectionError } from "./errors.ts";
import { pause } from "./pause.ts";

/** Where and how to serve: `Deno.serve`'s TCP or Unix options, without `onListen`/`signal`. */
export type HttpServeOptions =
  | { readonly hostname?: string; readonly port?: number }
  | { readonly transport: "unix"; readonly path: string };

/** Options of {@linkcode serveHttp}. */
export interface HttpServeHooks {
  /**
   * Told when the HTTP server's accept loop failed (and the server was restarted), once per
   * kind of error over the server's life.
   */
  readonly onError?: (error: Error) => void;
  /** What is served, for messages (`ws://127.0.0.1:7681/`). */
  readonly name?: string;
}

/** The part of `Deno.HttpServer` rsock uses, kept across restarts. */
export interface HttpListener {
  /** The bound address (the same after a restart). */
  readonly addr: Deno.Addr;
  /** Resolves once {@linkcode HttpListener.shutdown} has finished. */
  readonly finished: Promise<void>;
  /** Stops accepting, lets open requests finish, and stops restarting. */
  shutdown(): Promise<void>;
}

/**
 * Serves `handler` like `Deno.serve` and starts it again on the same address if its accept
 * loop dies. Throws what `Deno.serve` throws when the first start fails.
 *
 * @example
 * ```ts
 * import { serveHttp } from "./http_serve.ts";
 * const http = serveHttp({ hostname: "127.0.0.1", port: 0 }, () => new Response("ok"));
 * await http.shutdown();
 * ```
 */
export function serveHttp(
  options: HttpServeOptions,
  handler: Deno.ServeHandler<Deno.Addr>,
  hooks: HttpServeHooks = {},
): HttpListener {
  const start = (port?: number): Deno.HttpServer<Deno.Addr> => {
    if ("path" in options) {
      return Deno.serve({ transport: "unix", path: options.path, onListen: () => {} }, handler);
    }
    return Deno.serve({
      hostname: options.hostname ?? "127.0.0.1",
      port: port ?? options.port ?? 0,
      onListen: () => {},
    }, handler);
  };
  let server = start();
  const addr = server.addr;
  const port = addr.transport === "tcp" ? addr.port : undefined;
  const stop = new AbortController();
  const reported = new Set<string>();
  const report = (error: unknown, what: string) => {
    const cause = (error as { cause?: unknown }).cause ?? error;
    const key = `${what}:${classifyAcceptError(cause)}`;
    if (reported.has(key)) return;
    reported.add(key);
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    try {
      hooks.onError?.(
        new ConnectionError(
          `${hooks.name ?? "HTTP server"}: ${what} (${detail}); restarting after ` +
            `${ACCEPT_BACKOFF_MIN} ms to ${ACCEPT_BACKOFF_MAX} ms pauses; later errors of this ` +
            "kind are not reported",
          { cause: error },
        ),
      );
    } catch {
      // a failing logger must not stop the server
    }
  };
  const finished = (async () => {
    while (true) {
      try {
        await server.finished;
        if (stop.signal.aborted) return;
        report(new Error("the server ended on its own"), "the accept loop ended");
      } catch (error) {
        if (stop.signal.aborted) return;
        report(error, "the accept loop failed");
      }
      let delay = ACCEPT_BACKOFF_MIN;
      while (true) {
        await pause(delay, stop.signal);
        if (stop.signal.aborted) return;
        try {
          // A dead Unix server leaves its socket file behind; Deno.serve refuses to reuse it.
          if ("path" in options) await Deno.remove(options.path).catch(() => {});
          server = start(port);
          break;
        } catch (error) {
          report(error, "restarting failed");
          delay = Math.min(delay * 2, ACCEPT_BACKOFF_MAX);
        }
      }
    }
  })();
  return {
    addr,
    finished,
    async shutdown() {
      stop.abort();
      try {
        await server.shutdown();
      } catch {
        // it had already failed
      }
      await finished;
    },
  };
}
