/**
 * `rsock serve`: one evaluation session reachable over every transport at once — the svSocket
 * eval server, and a message socket relayed into the log.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import {
  createSession,
  type EvalSession,
  type EvaluateOptions,
  type RunningEvaluation,
  startEvalServer,
} from "../eval/mod.ts";
import { listen, type SocketServer } from "../socket/mod.ts";
import { serveConsole } from "../ws/mod.ts";
import { socket as nngSocket } from "../nng/mod.ts";
import {
  type Context,
  recv,
  send,
  serialize,
  simplify,
  socket as spSocket,
  unserialize,
} from "../reqrep/mod.ts";
import {
  DURATIONS,
  type Flag,
  listening,
  type Needed,
  netHost,
  type Output,
  type ParsedArgs,
  requirePermissions,
  secondsSince,
  type TableCommand,
  untilStopped,
  UsageError,
} from "./_common.ts";
import { Printer } from "./listen.ts";
import { ReportLimiter } from "./_reports.ts";
import {
  DEFAULT_EVAL_PORT,
  DEFAULT_REP_URL,
  DEFAULT_WS_PORT,
  planServe,
  type ServePlan,
} from "./_serve_plan.ts";
import { oneLine } from "../_internal/one_line.ts";

const SERVE_FLAGS: readonly Flag[] = [
  {
    name: "eval",
    value: "PORT",
    optionalValue: true,
    help: `the svSocket-style eval server (default port ${DEFAULT_EVAL_PORT})`,
  },
  {
    name: "ws",
    value: "PORT",
    optionalValue: true,
    help: `the browser console, http://HOST:PORT/ (default port ${DEFAULT_WS_PORT})`,
  },
  {
    name: "rep",
    value: "URL",
    optionalValue: true,
    help: `an NNG REP endpoint (default ${DEFAULT_REP_URL}): a request is code, the
reply its value — R-serialized for an R-serialized request (nanonext),
else the printed text (nngcat). Loopback or ipc only (NNG has no auth),
unless it is tls+tcp://0.0.0.0:P with --tls-cert, --tls-key and --tls-ca:
then only peers whose certificate that CA signed get in. With a token:
ipc:// (socket file mode 0600) or such tls+tcp only, not started by default.`,
  },
  {
    name: "pub",
    value: "URL",
    help: `also publish every evaluation's output ("eval " + text), push ("push ")
and --socket message ("socket ") on an NNG pub socket (loopback or ipc://
only; with a token ipc:// only): rsock sub --dial URL --topic eval`,
  },
  {
    name: "socket",
    value: "PORT",
    help: "also listen for plain messages (rsock send, R write.socket) and print them",
  },
  {
    name: "hostname",
    value: "H",
    help: "address to bind (default 127.0.0.1). Any other address needs a token.",
  },
  {
    name: "token-env",
    value: "VAR",
    help: "clients must send the token in environment variable VAR as their first line",
  },
  {
    name: "token",
    value: "TOKEN",
    help: "the same with the token itself (visible to other users in ps: prefer\n--token-env)",
  },
  {
    name: "tls-cert",
    value: "FILE",
    help: "serve the eval endpoint over TLS with this certificate (PEM) ...",
  },
  {
    name: "tls-key",
    value: "FILE",
    help: "... and this key (also the certificate of a tls+tcp:// --rep)",
  },
  {
    name: "tls-ca",
    value: "FILE",
    help: "a tls+tcp:// --rep admits only clients with a certificate this CA signed",
  },
  {
    name: "in-process",
    help: `run the session in rsock's own thread instead of a worker: faster to
start, but a runaway evaluation (while (true) {}) then blocks every door
and SIGTERM until it ends (only SIGKILL stops it)`,
  },
  { name: "worker", help: "accepted for compatibility: the worker is the default" },
  {
    name: "timeout",
    value: "T",
    help: "the time limit of one evaluation (not with --in-process)",
  },
  {
    name: "warn-after",
    value: "T",
    help: "print a line when an evaluation runs past T (default 10; 0: never)",
  },
];

const SERVE_NOTES =
  `With no endpoint flag (--eval, --ws, --rep), every endpoint starts on its default port; with some,
only those. The session runs in a worker: a lone <<<esc>>> from any eval client (rsock console's
Ctrl-C), rsock eval --interrupt, the time limit, Ctrl-C and SIGTERM stop a runaway evaluation;
so does its requester going away (a REQ peer's pipe, an eval client's connection, a console page
closed), after one second. Code waiting on an await is given up on and the session's state kept;
synchronous code costs a restart of the worker and the state. Ctrl-C or SIGTERM stops everything.
${DURATIONS}

Permissions: net to each endpoint, e.g. --allow-net=127.0.0.1:${DEFAULT_EVAL_PORT}, --allow-sys
(the session runs code through node:inspector, which Deno gates as sys) and, when rsock runs
from local files, read access to its eval/ folder (the worker's module); code evaluated in the
session has the same permissions as rsock itself, so grant what that code needs too (e.g.
--allow-read=./data). Under --no-prompt, code that reaches past them gets an error, where a
Deno permission prompt would stop the whole session.

  rsock serve                                  # eval 8888, console 7681, rep tcp://127.0.0.1:5555
  rsock serve --eval 9000 --socket 6000        # only the eval door, and rsock send's messages

From a checkout, deno task serve runs rsock serve with exactly what it needs:
  ${denoJson.tasks.serve}`;

/** The `serve` subcommand. */
export const serveCommand: TableCommand = {
  name: "serve",
  summary: "serve one evaluation session on every door (eval, browser console, NNG REP)",
  synopsis: "",
  flags: SERVE_FLAGS,
  notes: SERVE_NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const plan = planServe(args);
    const { hostname, evalPort, wsPort, rep, socketPort, pub, worker } = plan;
    const { tokenVariable, tokenFlag, certFile, keyFile, caFile } = plan;

    const needs: Needed[] = [{ name: "sys" }];
    // A worker's module is loaded like a dynamic import: from local files that needs read.
    const workerModule = new URL("../eval/", import.meta.url);
    if (worker && workerModule.protocol === "file:") {
      needs.push({ name: "read", path: decodeURIComponent(workerModule.pathname) });
    }
    if (evalPort !== undefined) needs.push({ name: "net", host: netHost(hostname, evalPort) });
    if (wsPort !== undefined) needs.push({ name: "net", host: netHost(hostname, wsPort) });
    if (rep !== undefined) needs.push(...rep.needs);
    // An owner-only ipc:// file is made under a narrowed umask, which Deno gates as sys.
    if (rep?.endpoint.transport === "ipc") needs.push({ name: "sys" });
    if (socketPort !== undefined) needs.push({ name: "net", host: netHost(hostname, socketPort) });
    if (pub !== undefined) needs.push(...pub.needs);
    if (tokenVariable !== undefined) needs.push({ name: "env", variable: tokenVariable });
    if (certFile !== undefined) needs.push({ name: "read", path: certFile });
    if (keyFile !== undefined) needs.push({ name: "read", path: keyFile });
    if (caFile !== undefined) needs.push({ name: "read", path: caFile });
    await requirePermissions(needs);

    const token = tokenVariable === undefined ? tokenFlag : Deno.env.get(tokenVariable);
    if (tokenVariable !== undefined && (token === undefined || token === "")) {
      throw new UsageError(`environment variable ${tokenVariable} is not set or empty`);
    }
    const tls = certFile !== undefined && keyFile !== undefined
      ? { cert: await Deno.readTextFile(certFile), key: await Deno.readTextFile(keyFile) }
      : undefined;

    const stop = untilStopped();
    let doors: Doors | undefined;
    try {
      doors = await startDoors(plan, { token, tls }, output);
      output.error(doors.banner.join("\n"));
      const { relay, publish } = doors;
      const printer = new Printer(output, { timestamps: false, raw: false, prefix: "socket " });
      const relaying = relay === undefined ? Promise.resolve() : (async () => {
        for await (const event of relay.events()) {
          printer.print(event);
          if (event.type === "message") publish?.(`socket ${event.message.text}`);
        }
      })();
      const signal = await stop.promise;
      output.error(`rsock serve: ${signal}, stopping`);
      printer.finish();
      await doors.stop();
      await relaying;
    } finally {
      stop.dispose();
      await doors?.dispose();
    }
    output.error("rsock serve: stopped");
    return 0;
  },
};

/** What the doors need that planning does not read: the token and the TLS files' text. */
export interface ServeSecrets {
  /** The token every client sends first, if any. */
  readonly token: string | undefined;
  /** The TLS certificate and key (PEM), if given. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
}

/** The running doors of `rsock serve` around their one session. */
export interface Doors {
  /** What serve prints once every door is up: where each listens, and how to reach it. */
  readonly banner: readonly string[];
  /** The session every door evaluates in. */
  readonly session: EvalSession;
  /** The plain-message door, if served: its messages are printed and published. */
  readonly relay: SocketServer | undefined;
  /** Publishes one line to the monitors (`--pub`), if any. */
  readonly publish: ((text: string) => void) | undefined;
  /** Closes the session first (a runaway in a worker is interrupted at once), then the doors. */
  stop(): Promise<void>;
  /** Closes whatever is still open, never throws, and prints what the reporters held back. */
  dispose(): Promise<void>;
}

/**
 * Creates the session and starts every door of `plan` on it. If a door cannot start, what
 * started is closed and the error thrown.
 */
export async function startDoors(
  plan: ServePlan,
  secrets: ServeSecrets,
  output: Output,
): Promise<Doors> {
  const { hostname, all, evalPort, wsPort, rep, socketPort, worker, timeout, warnAfter, caFile } =
    plan;
  const { token, tls } = secrets;
  const repUrl = plan.rep?.url;
  const pubUrl = plan.pub?.url;
  const closers: (() => Promise<void>)[] = [];
  // One bounded reporter per door: a flood of failing connections on one door prints a few
  // lines and a count, and hides nothing another door reports.
  const limiters: ReportLimiter[] = [];
  const reporter = (door: string) => {
    const prefix = `rsock serve: ${door}`;
    const limiter = new ReportLimiter(prefix, (line) => output.error(line));
    limiters.push(limiter);
    return (error: unknown) =>
      limiter.report(`${prefix}: ${error instanceof Error ? error.message : String(error)}`);
  };
  let session: EvalSession | undefined;
  const dispose = async () => {
    await Promise.allSettled(closers.map((close) => close()));
    for (const limiter of limiters) limiter.close();
    await session?.close();
  };
  // Set once the doors are up: the one line a slow evaluation gets says how to stop it.
  let howToStop = "Ctrl-C here stops serve";
  try {
    session = await createSession({
      ...(worker ? (timeout === undefined ? { worker } : { worker, timeout }) : {}),
      ...(warnAfter === 0 ? {} : {
        slowAfter: warnAfter,
        onSlow: (running: RunningEvaluation) => output.error(slowLine(running, howToStop)),
      }),
    });
    const banner = [
      `rsock serve: one session (${worker ? "worker" : "in-process"}), pid ${Deno.pid}`,
    ];
    // Monitors (--pub) get evaluations' output, pushes and --socket messages, each prefixed.
    let publish: ((text: string) => void) | undefined;
    if (pubUrl !== undefined) {
      // Every door evaluates through this wrapper, so monitors see all of the session's output.
      const publisher = await nngSocket("pub", { listen: pubUrl, ipcPermissions: 0o600 });
      closers.push(() => publisher.close());
      publish = (text) => void publisher.sendBytes(new TextEncoder().encode(text)).catch(() => {});
      const inner = session;
      session = {
        async evaluate(code, options) {
          const result = await inner.evaluate(code, options);
          // Output only: a client's setup lines and declarations print nothing.
          if (result.text !== "") {
            await publisher.sendBytes(new TextEncoder().encode(`eval ${result.text}`));
          }
          return result;
        },
        ...(inner.expose === undefined ? {} : { expose: inner.expose.bind(inner) }),
        ...(inner.interrupt === undefined ? {} : { interrupt: inner.interrupt.bind(inner) }),
        ...(inner.running === undefined ? {} : { running: inner.running.bind(inner) }),
        close: () => inner.close(),
        [Symbol.asyncDispose]: () => inner.close(),
      };
      banner.push(`  pub      ${publisher.urls[0]}    rsock sub --dial ${publisher.urls[0]}`);
    }
    if (evalPort !== undefined) {
      const where = { address: netHost(hostname, evalPort), flag: "--eval PORT" };
      const evalServer = await listening(where, startEvalServer, {
        port: evalPort,
        hostname,
        session,
        ...(token === undefined ? {} : { token }),
        ...(tls === undefined ? {} : { tls }),
        ...(publish === undefined ? {} : { onPush: (text: string) => publish(`push ${text}`) }),
        onError: reporter("eval"),
      });
      closers.push(() => evalServer.close());
      const port = evalServer.port;
      howToStop = `stop it: rsock eval --port ${port} --interrupt (or Ctrl-C in rsock console)`;
      banner.push(
        `  eval     ${tls ? "tls" : "tcp"}://${netHost(hostname, port)}`,
        `           rsock console --port ${port}    rsock eval --port ${port} 'x'`,
        // blocking = TRUE: a non-blocking connection's readLines returns character(0) at once.
        `           R: con <- socketConnection("${hostname}", ${port}, blocking = TRUE); ` +
          `cat("x\\n", file = con); readLines(con, 1)`,
      );
    }
    if (wsPort !== undefined) {
      const where = { address: netHost(hostname, wsPort), flag: "--ws PORT" };
      const consoleServer = await listening(where, serveConsole, {
        session,
        port: wsPort,
        hostname,
        ...(token === undefined ? {} : { token }),
        onError: reporter("console"),
      });
      closers.push(() => consoleServer.close());
      banner.push(`  console  ${consoleServer.url}    (open it in a browser)`);
    }
    if (repUrl !== undefined) {
      const evaluating = session;
      const repTransport = rep?.endpoint.transport;
      const where = { address: repUrl, flag: "--rep URL" };
      const reportRep = reporter("rep");
      const repSocket = await listening(where, spSocket.bind(null, "rep"), {
        listen: repUrl,
        // Only this user may connect to an ipc:// door (NNG's ipc permissions option).
        ipcPermissions: 0o600,
        ...(tls !== undefined && (repTransport === "tls+tcp" || repTransport === "wss")
          ? {
            tls: {
              ...tls,
              ...(caFile === undefined ? {} : { ca: await Deno.readTextFile(caFile) }),
            },
          }
          : {}),
        onError: reportRep,
      });
      const stopRep = new AbortController();
      // Failed requests have a budget of their own: a flood of them hides no pipe fault.
      const reportFailed = reporter("rep");
      const loops = Array.from(
        { length: 4 },
        () =>
          answerRequests(repSocket.context(), evaluating, stopRep.signal, {
            report: reportRep,
            failed: reportFailed,
          }),
      );
      closers.push(async () => {
        stopRep.abort();
        await repSocket.close();
        await Promise.all(loops);
      });
      const url = repSocket.urls[0]!;
      banner.push(
        `  rep      ${url}    nngcat --req --dial ${url} --data 'x + 1' --ascii`,
        `           R: library(nanonext); s <- socket("req", dial = "${url}"); ` +
          `call_aio(request(context(s), "x + 1"))$data`,
      );
    }
    if (repUrl === undefined && all) {
      banner.push("  rep      off: with a token, only --rep ipc:///PATH (owner-only) is served");
    }
    let relay: SocketServer | undefined;
    if (socketPort !== undefined) {
      const where = { address: netHost(hostname, socketPort), flag: "--socket PORT" };
      relay = await listening(where, listen, {
        port: socketPort,
        hostname,
        framing: "line",
        onError: reporter("socket"),
      });
      const server = relay;
      closers.push(() => server.close());
      banner.push(
        `  socket   ${netHost(hostname, relay.port)}    rsock send --port ${relay.port} 'hello'`,
        `           R: s <- make.socket("localhost", ${relay.port}); write.socket(s, "hello\\n")`,
      );
    }
    banner.push("Ctrl-C or SIGTERM stops.");
    const opened = session;
    return {
      banner,
      session: opened,
      relay,
      publish,
      stop: async () => {
        await Promise.all([opened.close(), ...closers.map((close) => close())]);
      },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

const encoder = new TextEncoder();
// Fatal: a request that is not R serialization is code only if it is really text.
const strictText = new TextDecoder("utf-8", { fatal: true });
// nanonext's error reply, R-serialized (is_nul_byte() is TRUE), and the same byte plain.
const SERIAL_ERROR_REPLY = serialize(new Uint8Array([0]));
const RAW_ERROR_REPLY = new Uint8Array([0]);
// "A\n", "B\n", "X\n" (R's formats) and 0x07 (nanonext's header).
const SERIAL_FIRST_BYTES = new Set([0x41, 0x42, 0x58, 0x07]);

/** The one line serve prints for an evaluation past `--warn-after`. */
function slowLine(running: RunningEvaluation, howToStop: string): string {
  return `rsock serve: an evaluation from ${running.door} has run ${
    secondsSince(running.since)
  } s: ${oneLine(running.code, 60)} — ${howToStop}`;
}

/** What an R value that is not a string is, for a log line. */
function describeValue(value: unknown): string {
  if (value === null) return "NULL";
  if (Array.isArray(value)) return `a vector or list of length ${value.length}`;
  if (value instanceof Uint8Array) return `a raw vector of length ${value.length}`;
  if (typeof value === "object") return "a list";
  const type = typeof value === "number"
    ? "numeric"
    : typeof value === "boolean"
    ? "logical"
    : typeof value;
  return `a ${type} (${String(value)})`;
}

/** One line of text for a log: whitespace runs as one space, at most 200 characters. */
/**
 * The reply to one REP request, as bytes for the wire; `failed` is told why, in one line,
 * whenever the request failed (the requester may only get the error byte).
 */
async function answerRequest(
  bytes: Uint8Array,
  session: EvalSession,
  options: EvaluateOptions,
  failed: (why: string) => void,
): Promise<Uint8Array> {
  const door = options.door ?? "rep";
  // What nanonext sends: R serialization, maybe behind its 0x07 header. Bytes that only start
  // like it (`Array.from(…)`, `B…`, `X…`) fall through to the plain-text rule.
  let request: unknown;
  let serial = false;
  if (bytes.length > 12 && SERIAL_FIRST_BYTES.has(bytes[0]!)) {
    try {
      request = simplify(unserialize(bytes));
      serial = true;
    } catch {
      // not R serialization after all
    }
  }
  if (serial) {
    if (typeof request !== "string") {
      failed(
        `${door}: the request is R serialization of ${oneLine(describeValue(request), 60)}, ` +
          "not a character string of code; replied with the error value (is_nul_byte() TRUE)",
      );
      return SERIAL_ERROR_REPLY;
    }
    const result = await session.evaluate(request, options);
    if (result.error) {
      failed(
        `${door}: ${oneLine(result.text, 200)} (in: ${oneLine(request, 60)}); replied with the ` +
          "error value (is_nul_byte() TRUE)",
      );
      return SERIAL_ERROR_REPLY;
    }
    try {
      return serialize((result.value ?? null) as Parameters<typeof serialize>[0]);
    } catch {
      return serialize(result.text); // not an R value (a function, a Map…)
    }
  }
  let code: string;
  try {
    code = strictText.decode(bytes);
  } catch {
    failed(`${door}: the request is neither R serialization nor UTF-8 text; replied with 0x00`);
    return RAW_ERROR_REPLY; // not code
  }
  const result = await session.evaluate(code, options);
  if (result.error) failed(`${door}: ${oneLine(result.text, 200)} (in: ${oneLine(code, 60)})`);
  return encoder.encode(result.text);
}

/**
 * Answers REP requests by evaluating them in the session: an R-serialized string (nanonext)
 * gets its value back R-serialized, or the NUL-byte error reply; any other UTF-8 text (nngcat)
 * is code and gets the printed text back; other bytes get the NUL-byte error reply. Every
 * failed request is told to `failed`, since an R requester sees only the error value. No
 * request ends the loop: only the socket's close or `signal` does.
 */
async function answerRequests(
  ctx: Context,
  session: EvalSession,
  signal: AbortSignal,
  reports: { report: (error: unknown) => void; failed: (why: string) => void },
): Promise<void> {
  const { report, failed } = reports;
  while (!signal.aborted && !ctx.socket.closed) {
    let bytes: Uint8Array;
    try {
      bytes = await recv(ctx, { mode: "raw", signal }) as Uint8Array;
    } catch (error) {
      // Raw receiving fails only on close or abort; anything else is reported, not fatal.
      if (signal.aborted || ctx.socket.closed) return;
      report(error);
      continue;
    }
    let body: Uint8Array;
    // A requester whose pipe closes gets no reply: its evaluation is stopped (requesterGone).
    const requester = ctx.requester();
    const options: EvaluateOptions = requester === undefined
      ? { door: "rep" }
      : { door: `rep pipe ${requester.pipe} (${requester.remote})`, requesterGone: requester.gone };
    try {
      body = await answerRequest(bytes, session, options, failed);
    } catch (error) {
      report(error);
      body = RAW_ERROR_REPLY;
    }
    try {
      await send(ctx, body, { mode: "raw" });
    } catch {
      // The requester went away; the next request is served all the same.
    }
  }
}
