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
  type RRaw,
  type RValue,
  type SendMode,
  socket,
} from "../reqrep/mod.ts";

import {
  type Command,
  type Flag,
  type Needed,
  netHost,
  type Output,
  type ParsedArgs,
  parsePositiveInteger,
  requirePermissions,
  stringFlag,
  unixSocketNeeds,
  untilStopped,
  UsageError,
} from "./_common.ts";

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

/** `--dial URL` and `--listen URL`, as nngcat spells them. */
function endpointFlags(how: "dial" | "listen"): Flag[] {
  const other = how === "dial" ? "listen" : "dial";
  return [
    {
      name: "dial",
      value: "URL",
      help: `connect to URL${how === "dial" ? " (what URL alone does)" : ""}`,
    },
    {
      name: "listen",
      value: "URL",
      help: `listen on URL${how === "listen" ? " (what URL alone does)" : ""}` +
        (other === "listen" ? ", for a peer that dials in" : ""),
    },
  ];
}

/** The one endpoint: `URL` (dialed or listened on, as `how` says), `--dial URL` or `--listen URL`. */
function endpointOf(
  args: ParsedArgs,
  how: "dial" | "listen",
): { url: string; how: "dial" | "listen" } {
  const [url, ...extra] = args.positionals;
  const given: { url: string; how: "dial" | "listen" }[] = [];
  if (url !== undefined) given.push({ url, how });
  const dial = stringFlag(args, "dial");
  if (dial !== undefined) given.push({ url: dial, how: "dial" });
  const listen = stringFlag(args, "listen");
  if (listen !== undefined) given.push({ url: listen, how: "listen" });
  if (given.length !== 1 || extra.length > 0) {
    throw new UsageError("give exactly one endpoint: URL, --dial URL or --listen URL");
  }
  return given[0]!;
}

/**
 * The send and receive modes. `req` passes `rawIn: true`: an explicit `--send-mode raw` means a
 * byte-level peer (nngcat, rsock serve), so raw bytes are expected back unless told otherwise.
 */
function modes(args: ParsedArgs, options: { sendDefault?: SendMode; rawIn?: boolean } = {}): {
  sendMode: SendMode;
  recvMode: RecvMode;
} {
  try {
    const explicit = stringFlag(args, "send-mode");
    const sendMode = checkSendMode(explicit ?? options.sendDefault ?? "serial");
    const recvDefault = options.rawIn && explicit === "raw" ? "raw" : "serial";
    return { sendMode, recvMode: checkRecvMode(stringFlag(args, "recv-mode") ?? recvDefault) };
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

/** How `rsock req` prints a reply that is bytes, after nngcat's `--format`; or `json`. */
const FORMATS = ["text", "ascii", "quoted", "hex", "raw", "json"] as const;
type Format = typeof FORMATS[number];

function formatOf(args: ParsedArgs): Format {
  const chosen = FORMATS.filter((format) => format !== "text" && args.values[format] === true);
  const named = stringFlag(args, "format") ??
    (stringFlag(args, "json") !== undefined && chosen.length === 0 ? "json" : undefined);
  if (named !== undefined) {
    if (!(FORMATS as readonly string[]).includes(named)) {
      throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, got "${named}"`);
    }
    chosen.push(named as Format);
  }
  if (new Set(chosen).size > 1) {
    throw new UsageError(`give one output format, got ${chosen.map((f) => `--${f}`).join(" ")}`);
  }
  return chosen[0] ?? "text";
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** One byte as C writes it in a string literal. */
function escaped(byte: number): string {
  const named: Record<number, string> = {
    0x0a: "\\n",
    0x0d: "\\r",
    0x09: "\\t",
    0x22: '\\"',
    0x5c: "\\\\",
  };
  if (named[byte] !== undefined) return named[byte];
  return byte >= 0x20 && byte < 0x7f
    ? String.fromCharCode(byte)
    : `\\x${byte.toString(16).padStart(2, "0")}`;
}

/**
 * Bytes as `format` shows them: `text` is the UTF-8 text when the bytes are valid UTF-8 and
 * the quoted form otherwise; `ascii`, `quoted`, `hex` and `raw` are nngcat's formats.
 */
export function formatBytes(bytes: Uint8Array, format: Format): string | Uint8Array {
  switch (format) {
    case "raw":
      return bytes;
    case "ascii":
      return String.fromCharCode(...bytes.map((b) => b >= 0x20 && b < 0x7f ? b : 0x2e)) + "\n";
    case "hex":
      return `"${[...bytes].map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("")}"\n`;
    case "quoted":
      return `"${[...bytes].map(escaped).join("")}"\n`;
    case "json":
      return `${JSON.stringify(Array.from(bytes))}\n`;
    case "text":
      try {
        return strictUtf8.decode(bytes) + "\n";
      } catch {
        return formatBytes(bytes, "quoted");
      }
  }
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

const REQ_NOTES =
  `URL is tcp://host:port, ipc:///path or ws://host:port/path; dialed unless --listen.
With --send-mode raw, raw bytes are expected back unless --recv-mode says otherwise (a --file
request is sent raw, and its reply read as serial, unless told otherwise).
Exits 1 when the server did not answer in time, or answered its error reply: a 1-byte reply in
--recv-mode serial, double, integer, numeric, complex or logical, where it cannot be a value.

Permissions: --allow-net=HOST:PORT (ipc: --allow-read=PATH --allow-write=PATH
             --allow-net=unix:PATH; --file: --allow-read=F)

  rsock req tcp://127.0.0.1:5555 --data 'x + 1'                   # a string, R-serialized
  rsock req tcp://127.0.0.1:5555 --json '{"a": [1, 2, 3]}' | jq .a  # list(a = c(1, 2, 3))
  rsock req tcp://127.0.0.1:5555 --data ping --send-mode raw --recv-mode string`;

const RECV_MODES = "serial (default), typed (the exact R value tree), character, complex,\n" +
  "double, integer, logical, numeric, raw, string";

/** The `req` subcommand. */
export const reqCommand: Command = {
  name: "req",
  summary: "send one request to a REP server (NNG, nanonext) and print the reply",
  synopsis: "[URL]",
  flags: [
    ...endpointFlags("dial"),
    {
      name: "data",
      short: "D",
      value: "TEXT",
      help: "the request: in serial mode an R string, in raw mode the UTF-8 bytes",
    },
    {
      name: "json",
      value: "JSON",
      help: "the request is this JSON value, R-serialized (objects are named lists,\n" +
        "arrays of numbers double vectors); implies --format json",
    },
    {
      name: "file",
      short: "F",
      value: "F",
      help: 'the request is the bytes of file F (raw mode) — "-" reads standard input',
    },
    { name: "send-mode", value: "M", help: "serial (R serialization, default) or raw" },
    { name: "recv-mode", value: "M", help: RECV_MODES },
    { name: "timeout", value: "MS", help: "give up after MS milliseconds (default 10000)" },
    {
      name: "format",
      value: "F",
      help: "how a reply of bytes is printed: text (default: UTF-8 text, else quoted),\n" +
        "ascii, quoted, hex or raw (the bytes as they are), as nngcat's formats;\n" +
        "json prints any reply as one line of JSON (NA, NaN and Inf as null), for jq",
    },
    { name: "ascii", short: "A", help: "--format ascii: printable ASCII, other bytes as ." },
    { name: "quoted", short: "Q", help: '--format quoted: a C string, "a\\x00b"' },
    { name: "hex", help: '--format hex: every byte as \\xNN, "\\x61\\x00"' },
    { name: "raw", help: "--format raw: the bytes as they are, no newline" },
  ],
  notes: REQ_NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const { url, how } = endpointOf(args, "dial");
    const data = stringFlag(args, "data");
    const file = stringFlag(args, "file");
    const json = stringFlag(args, "json");
    if ([data, file, json].filter((x) => x !== undefined).length !== 1) {
      throw new UsageError("give the request with one of --data TEXT, --json JSON or --file F");
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
    // A file is bytes: raw unless told otherwise.
    const { sendMode, recvMode } = modes(args, {
      sendDefault: file !== undefined ? "raw" : "serial",
      rawIn: true,
    });
    const format = formatOf(args);
    const timeout = parsePositiveInteger(stringFlag(args, "timeout"), 10_000, "--timeout");
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
    } else {
      body = sendMode === "raw" ? new TextEncoder().encode(data) : data;
    }
    await using req = await socket("req", { [how]: url });
    const answer = await request(req, body, {
      sendMode,
      recvMode,
      timeout,
      // As nanonext warns: bytes printed raw under a typed mode otherwise look like a bad answer.
      onWarning: (message) => output.error(`rsock req: ${message}; printed as received`),
    });
    const errorReply = isNulByte(answer) ||
      (recvMode === "typed" && (answer as RValue).type === "raw" &&
        (answer as RRaw).data.length === 1);
    if (errorReply && ERROR_BYTE_MODES.includes(recvMode)) {
      output.error(
        `rsock req: the server answered its error reply (1 byte, like nanonext's NUL byte; ` +
          `no --recv-mode ${recvMode} value is 1 byte)`,
      );
      return 1;
    }
    if (format === "json") {
      output.write(showJson(answer) + "\n");
      return 0;
    }
    if (answer instanceof Uint8Array) {
      const shown = formatBytes(answer, format);
      if (typeof shown === "string") output.write(shown);
      else if (output.writeBytes !== undefined) output.writeBytes(shown);
      else output.write(new TextDecoder().decode(shown));
      return 0;
    }
    output.write(show(answer) + "\n");
    return 0;
  },
};

const REP_NOTES =
  `URL is tcp://host:port, ipc:///path or ws://host:port/path; listened on unless --dial
(which redials until the peer listens).
A request whose execute throws gets the NUL-byte error reply; the server goes on.

Permissions: --allow-net=HOST:PORT (ipc: --allow-read=PATH --allow-write=PATH
             --allow-net=unix:PATH)

  rsock rep tcp://127.0.0.1:5555 --execute '(x) => x * 2'
  # R: library(nanonext); s <- socket("req", dial = "tcp://127.0.0.1:5555"); call_aio(request(context(s), 21))$data`;

/** The `rep` subcommand. */
export const repCommand: Command = {
  name: "rep",
  summary: "serve requests on a REP socket with a JavaScript function",
  synopsis: "[URL]",
  flags: [
    ...endpointFlags("listen"),
    {
      name: "execute",
      short: "e",
      value: "SRC",
      help: "a function's source, called with each request's value, e.g. '(x) => x + 1'",
    },
    {
      name: "recv-mode",
      value: "M",
      help: "how requests are read: serial (default; R values as JS, and the reply keeps\n" +
        "the request's R type and attributes where it still fits them), typed (the exact\n" +
        "R value tree, see @x/rsock/serial), or a raw mode (--recv-mode of rsock req)",
    },
    { name: "send-mode", value: "M", help: "how replies are sent (default serial)" },
    {
      name: "count",
      value: "N",
      help: "stop after N requests (default: serve until Ctrl-C / SIGTERM)",
    },
    {
      name: "borrow-buffers",
      help: "with --recv-mode raw: reuse a request's buffer once its reply is sent\n" +
        "(faster for large messages; the function must not keep its argument)",
    },
  ],
  notes: REP_NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const { url, how } = endpointOf(args, "listen");
    const source = stringFlag(args, "execute");
    if (source === undefined) throw new UsageError("--execute 'JS FUNCTION' is required");
    let execute: unknown;
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
    const { sendMode, recvMode } = modes(args);
    const countFlag = stringFlag(args, "count");
    const count = countFlag === undefined
      ? Infinity
      : parsePositiveInteger(countFlag, 1, "--count");
    const { needs } = endpointNeeds(url, how === "dial" ? "--dial" : "--listen");
    await requirePermissions(needs);
    const stop = untilStopped();
    const controller = new AbortController();
    stop.promise.then(() => controller.abort());
    try {
      await using rep = await socket("rep", {
        [how]: url,
        // A worker dialing its broker waits for it (nanonext's dial default), unlike a one-shot
        // req, which reports a refused dial at once as nngcat does.
        retryFirstDial: true,
        onError: (error) => output.error(`rsock rep: ${error.message}`),
      });
      output.error(
        how === "listen"
          ? `rsock rep: serving on ${rep.urls[0]}`
          : `rsock rep: serving, dialed to ${url}`,
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
      stop.dispose();
    }
    return 0;
  },
};
