/**
 * `rsock req` and `rsock rep`: one request from the shell, or a REP server whose execute
 * function is given as JavaScript source — the nanonext `request()` / `reply()` pair.
 *
 * @module
 */

import {
  checkRecvMode,
  checkSendMode,
  type Endpoint,
  isNulByte,
  parseUrl,
  type RecvMode,
  reply,
  request,
  type RValue,
  type SendMode,
  socket,
} from "../reqrep/mod.ts";

import { classOf, namesOf, simplify } from "../serial/mod.ts";
import {
  type Command,
  type Needed,
  netHost,
  type Output,
  type ParsedArgs,
  parseDuration,
  parsePositiveInteger,
  requirePermissions,
  stringFlag,
  unixSocketNeeds,
  untilStopped,
  UsageError,
} from "./_common.ts";
import {
  endpointsOf,
  flagsFor,
  formatBytes,
  formatOf,
  noticeWaiting,
  sharedNotes,
  writeShown,
} from "./_sp_options.ts";

export { formatBytes } from "./_sp_options.ts";

/** The permissions an endpoint needs, and the parsed endpoint. */
export function endpointNeeds(url: string, flag: string): { endpoint: Endpoint; needs: Needed[] } {
  let endpoint: Endpoint;
  try {
    endpoint = parseUrl(url);
  } catch (error) {
    throw new UsageError(`${flag}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const needs: Needed[] = endpoint.transport !== "ipc"
    ? [{ name: "net", host: netHost(endpoint.hostname, endpoint.port) }]
    : unixSocketNeeds(endpoint.path);
  return { endpoint, needs };
}

/** The one endpoint: `URL` (dialed or listened on, as `role` usually does), `--dial` or `--listen`. */
function endpointOf(
  role: "req" | "rep",
  args: ParsedArgs,
): { url: string; how: "dial" | "listen" } {
  const { listen, dial } = endpointsOf(role, args);
  const given = [
    ...listen.map((url) => ({ url, how: "listen" as const })),
    ...dial.map((url) => ({ url, how: "dial" as const })),
  ];
  if (given.length !== 1) {
    throw new UsageError("give exactly one endpoint: URL, --dial URL or --listen URL");
  }
  return given[0]!;
}

function checkedModes(send: string, recv: string): {
  sendMode: SendMode;
  recvMode: RecvMode;
} {
  try {
    return { sendMode: checkSendMode(send), recvMode: checkRecvMode(recv) };
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function show(value: unknown): string {
  return typeof value === "string" ? value : Deno.inspect(value, { depth: 8, colors: false });
}

/** The reply as one line of JSON, for jq: typed arrays become arrays, NA/NaN/Inf `null`. */
function showJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as Uint8Array) : v,
  ) ?? "null";
}

/** True for bytes that start like R serialization (R's formats, or nanonext's 0x07 header). */
function looksSerialized(bytes: Uint8Array): boolean {
  return bytes.length > 12 && [0x41, 0x42, 0x58, 0x07].includes(bytes[0]!);
}

/**
 * The message of an R error a reply carries: a condition (`simpleError`, what
 * `tryCatch(…, error = identity)` returns) or a `try-error` string (what `try()` returns).
 */
function errorText(typed: RValue): string | undefined {
  const classes = classOf(typed);
  if (!classes.includes("error") && !classes.includes("try-error")) return undefined;
  if (typed.type === "character") return typed.data[0] ?? undefined;
  if (typed.type === "list") {
    const index = namesOf(typed)?.indexOf("message") ?? -1;
    const message = index === -1 ? undefined : typed.data[index];
    if (message?.type === "character") return message.data[0] ?? undefined;
  }
  return classes.join(", ");
}

/**
 * Receive modes in which a 1-byte reply cannot be a value, so it is the REP's error reply
 * (nanonext's error byte is uninitialised, so any 1-byte reply): a serialized value is longer,
 * and doubles, integers, complexes and logicals are 4 to 16 bytes each. In `raw`, `string` and
 * `character` a 1-byte reply is a value like any other.
 */
const ERROR_BYTE_MODES: readonly RecvMode[] = [
  "serial",
  "typed",
  "double",
  "integer",
  "numeric",
  "complex",
  "logical",
];

const REQ_NOTES = `${sharedNotes("req")}
The request is --data, --json, --file, or else standard input: in serial mode its text (one
closing newline left out) as an R string, in raw mode its bytes.
A request sent raw (--send-mode raw, or a --file that is not R serialization) expects raw bytes
back unless --recv-mode says otherwise.
Exits 1 when the server did not answer in time, answered its error reply (a 1-byte reply in
--recv-mode serial, double, integer, numeric, complex or logical, where it cannot be a value),
or answered an R error (a condition or try-error): its message is printed on stderr.

Permissions: --allow-net=HOST:PORT (ipc: --allow-read=PATH --allow-write=PATH
             --allow-net=unix:PATH; --file: --allow-read=FILE)

  rsock req tcp://127.0.0.1:5555 --data 'x + 1'                   # a string, R-serialized
  echo '1 + 2' | rsock req tcp://127.0.0.1:5555                    # the same, from a pipe
  rsock req tcp://127.0.0.1:5555 --json '{"a": [1, 2, 3]}' | jq .a  # list(a = c(1, 2, 3))
  rsock req tcp://127.0.0.1:5555 --data ping --send-mode raw --recv-mode string`;

/** Standard input as the request: its bytes, or (to send as an R string) its text. */
async function standardInput(raw: boolean): Promise<Uint8Array | string> {
  if (Deno.stdin.isTerminal()) {
    throw new UsageError(
      "give the request with --data TEXT, --json JSON or --file F, or pipe it in",
    );
  }
  const bytes = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  return raw ? bytes : new TextDecoder().decode(bytes).replace(/\r?\n$/, "");
}

/** The `req` subcommand. */
export const reqCommand: Command = {
  name: "req",
  summary: "send one request to a REP server (NNG, nanonext) and print the reply",
  synopsis: "[URL]",
  flags: flagsFor("req"),
  notes: REQ_NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const { url, how } = endpointOf("req", args);
    const data = stringFlag(args, "data");
    const file = stringFlag(args, "file");
    const json = stringFlag(args, "json");
    if ([data, file, json].filter((x) => x !== undefined).length > 1) {
      throw new UsageError("give the request once: --data TEXT, --json JSON or --file F");
    }
    let parsed: unknown;
    if (json !== undefined) {
      try {
        parsed = JSON.parse(json);
      } catch (error) {
        throw new UsageError(
          `--json is not valid JSON: ${error instanceof Error ? error.message : error}`,
        );
      }
    }
    const explicitSend = stringFlag(args, "send-mode");
    // A file is bytes: raw unless told otherwise.
    const sendMode = checkedModes(explicitSend ?? (file !== undefined ? "raw" : "serial"), "raw")
      .sendMode;
    const format = formatOf(args, json !== undefined ? "json" : "text");
    const timeout = parseDuration(stringFlag(args, "recv-timeout"), 10_000, "--recv-timeout");
    const delay = parseDuration(stringFlag(args, "delay"), 0, "--delay");
    const { needs } = endpointNeeds(url, how === "dial" ? "--dial" : "--listen");
    if (file !== undefined && file !== "-") needs.push({ name: "read", path: file });
    await requirePermissions(needs);
    let body: unknown;
    if (file !== undefined) {
      body = file === "-"
        ? new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer())
        : await Deno.readFile(file);
    } else if (json !== undefined) {
      body = parsed;
    } else if (data !== undefined) {
      body = sendMode === "raw" ? new TextEncoder().encode(data) : data;
    } else {
      body = await standardInput(sendMode === "raw");
    }
    // What was sent says what comes back: R serialization answers R serialization, bytes bytes.
    const sentSerialized = sendMode === "serial" ||
      (body instanceof Uint8Array && looksSerialized(body));
    const { recvMode } = checkedModes(
      sendMode,
      stringFlag(args, "recv-mode") ?? (sentSerialized ? "serial" : "raw"),
    );
    await using req = await socket("req", { [how]: url });
    const cancelNotice = noticeWaiting(
      req,
      [how === "listen" ? req.urls[0] ?? url : url],
      (line) => output.error(`rsock req: ${line}`),
    );
    let answer: unknown;
    try {
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      // Serial replies are read typed first: an R error's class is lost once simplified.
      answer = await request(req, body, {
        sendMode,
        recvMode: recvMode === "serial" ? "typed" : recvMode,
        timeout,
        // As nanonext warns: bytes printed raw under a typed mode otherwise look like a bad
        // answer.
        onWarning: (message) => output.error(`rsock req: ${message}; printed as received`),
      });
    } finally {
      cancelNotice();
    }
    const typed = (recvMode === "serial" || recvMode === "typed") &&
        !(answer instanceof Uint8Array)
      ? answer as RValue
      : undefined;
    const errorReply = isNulByte(answer) ||
      (typed?.type === "raw" && typed.data.length === 1);
    if (errorReply && ERROR_BYTE_MODES.includes(recvMode)) {
      output.error(
        `rsock req: the server answered its error reply (1 byte, like nanonext's NUL byte; ` +
          `no --recv-mode ${recvMode} value is 1 byte)`,
      );
      return 1;
    }
    const error = typed === undefined ? undefined : errorText(typed);
    if (error !== undefined) {
      output.error(`rsock req: the server answered an R error: ${error.trim()}`);
      return 1;
    }
    if (recvMode === "serial" && typed !== undefined) answer = simplify(typed);
    if (format === "json") {
      output.write(showJson(answer) + "\n");
      return 0;
    }
    if (answer instanceof Uint8Array) {
      writeShown(output, formatBytes(answer, format));
      return 0;
    }
    output.write(show(answer) + "\n");
    return 0;
  },
};

const REP_NOTES = `${sharedNotes("rep")}
A request whose execute throws gets the NUL-byte error reply; the server goes on.
In serial mode a reply derived from the request (the request's own value, edited, or one of its
shape: a scalar for a scalar, an array of its length, an object with all its keys) keeps the
request's R type and attributes (1L + 1 stays an integer); a reply built from scratch is
converted by the plain rules, whatever the request: an object is a named list, a number a double.

Permissions: --allow-net=HOST:PORT (ipc: --allow-read=PATH --allow-write=PATH
             --allow-net=unix:PATH; --file: --allow-read=FILE)

  rsock rep tcp://127.0.0.1:5555 --execute '(x) => x * 2'
  # R: library(nanonext); s <- socket("req", dial = "tcp://127.0.0.1:5555"); call_aio(request(context(s), 21))$data`;

/** The `rep` subcommand. */
export const repCommand: Command = {
  name: "rep",
  summary: "serve requests on a REP socket with a JavaScript function",
  synopsis: "[URL]",
  flags: flagsFor("rep"),
  notes: REP_NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const { url, how } = endpointOf("rep", args);
    const source = stringFlag(args, "execute");
    const data = stringFlag(args, "data");
    const file = stringFlag(args, "file");
    if ([source, data, file].filter((x) => x !== undefined).length !== 1) {
      throw new UsageError(
        "give what answers with one of --execute 'JS FUNCTION', --data TEXT or --file F",
      );
    }
    let execute: unknown;
    if (source !== undefined) {
      try {
        execute = (0, eval)(`(${source})`);
      } catch (error) {
        throw new UsageError(
          `--execute is not valid JavaScript: ${error instanceof Error ? error.message : error}`,
        );
      }
      if (typeof execute !== "function") {
        throw new UsageError(
          `--execute must be a function's source, e.g. '(x) => x', got a ${typeof execute}`,
        );
      }
    }
    const { sendMode, recvMode } = checkedModes(
      stringFlag(args, "send-mode") ?? (file !== undefined ? "raw" : "serial"),
      stringFlag(args, "recv-mode") ?? "serial",
    );
    const countFlag = stringFlag(args, "count");
    const count = countFlag === undefined
      ? Infinity
      : parsePositiveInteger(countFlag, 1, "--count");
    const { needs } = endpointNeeds(url, how === "dial" ? "--dial" : "--listen");
    if (file !== undefined && file !== "-") needs.push({ name: "read", path: file });
    await requirePermissions(needs);
    if (file !== undefined) {
      const bytes = file === "-"
        ? new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer())
        : await Deno.readFile(file);
      execute = () => bytes;
    } else if (data !== undefined) {
      execute = () => data;
    }
    const stop = untilStopped();
    const controller = new AbortController();
    stop.promise.then(() => controller.abort());
    let cancelNotice = () => {};
    try {
      await using rep = await socket("rep", {
        [how]: url,
        // A worker dialing its broker waits for it (nanonext's dial default), unlike a one-shot
        // req, which reports a refused dial at once as nngcat does; --fail-fast does too.
        retryFirstDial: args.values["fail-fast"] !== true,
        onError: (error) => output.error(`rsock rep: ${error.message}`),
      });
      output.error(
        how === "listen"
          ? `rsock rep: serving on ${rep.urls[0]}`
          : `rsock rep: serving, dialed to ${url}`,
      );
      cancelNotice = noticeWaiting(
        rep,
        [how === "listen" ? rep.urls[0] ?? url : url],
        (line) => output.error(`rsock rep: ${line}`),
      );
      const ctx = rep.context();
      for (let served = 0; served < count && !controller.signal.aborted; served++) {
        try {
          await reply(ctx, execute as (x: unknown) => unknown, {
            sendMode,
            recvMode,
            borrowBuffers: args.values["borrow-buffers"] === true,
            signal: controller.signal,
            onError: (error) =>
              output.error(
                `rsock rep: execute failed: ${error instanceof Error ? error.message : error}`,
              ),
          });
        } catch (error) {
          if (controller.signal.aborted) break;
          throw error;
        }
      }
    } finally {
      cancelNotice();
      stop.dispose();
    }
    return 0;
  },
};
