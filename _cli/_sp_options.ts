/**
 * The one option table of the scalability-protocol commands (`req`, `rep` and the NNG family):
 * nngcat's names, meaning what they mean in nngcat, each row naming the commands that take it.
 * Parsing and help are both made from it, so a command's help cannot name a flag it lacks.
 *
 * @module
 */

import type { SpSocket } from "../_internal/sp/socket.ts";
import type { Flag, Output, ParsedArgs } from "./_common.ts";
import { DURATIONS, UsageError } from "./_common.ts";

/** A command built on an SP socket. */
export type SpRole =
  | "req"
  | "rep"
  | "pub"
  | "sub"
  | "push"
  | "pull"
  | "survey"
  | "respond"
  | "pair"
  | "bus";

interface SpFlag extends Flag {
  /** The commands that take it. */
  readonly roles: readonly SpRole[];
  /** Help that reads better for some commands. */
  readonly roleHelp?: Partial<Record<SpRole, string>>;
  /** Aliases only some commands take (rsock's older spellings). */
  readonly roleAliases?: Partial<Record<SpRole, readonly string[]>>;
}

const NNG: readonly SpRole[] = ["pub", "sub", "push", "pull", "survey", "respond", "pair", "bus"];
const ALL: readonly SpRole[] = ["req", "rep", ...NNG];
/** Commands that send what they are given (--data, --file or standard input lines). */
const SENDING: readonly SpRole[] = ["pub", "push", "pair", "bus"];
/** Commands that print what they receive. */
const PRINTING: readonly SpRole[] = ["req", "sub", "pull", "survey", "respond", "pair", "bus"];
/** Commands whose plain URL is listened on: the side that usually binds. */
export const LISTENING_ROLES: readonly SpRole[] = ["rep", "pub", "push", "survey"];

const DURATION = "T";

const FLAGS: readonly SpFlag[] = [
  {
    name: "listen",
    value: "URL",
    multiple: true,
    aliases: ["bind"],
    help: "listen on URL (repeatable)",
    roles: ALL,
    roleHelp: { req: "listen on URL, for a REP peer that dials in", rep: "listen on URL" },
  },
  {
    name: "dial",
    value: "URL",
    multiple: true,
    aliases: ["connect"],
    help: "dial URL, redialing when it goes away (repeatable)",
    roles: ALL,
    roleHelp: { req: "connect to URL", rep: "dial URL, redialing when it goes away" },
  },
  {
    name: "fail-fast",
    help: "exit 1 at once when a dial cannot connect, as nngcat does\n" +
      "(default: redial until the peer listens, as nanonext does)",
    roles: NNG.concat("rep"),
  },
  {
    name: "subscribe",
    value: "TOPIC",
    multiple: true,
    aliases: ["topic"],
    help: 'receive messages starting with TOPIC (repeatable; default "": all)',
    roles: ["sub"],
  },
  {
    name: "data",
    short: "D",
    value: "TEXT",
    help: "send TEXT instead of standard input lines",
    roles: [...SENDING, "survey", "respond", "req", "rep"],
    roleHelp: {
      survey: "the survey",
      respond: "answer every survey with TEXT",
      req: "the request: in serial mode an R string, in raw mode the UTF-8 bytes",
      rep: "answer every request with TEXT (in the send mode) instead of --execute",
    },
    roleAliases: { respond: ["answer"] },
  },
  {
    name: "file",
    short: "F",
    value: "FILE",
    help: 'send the bytes of FILE as one message ("-": standard input)',
    roles: [...SENDING, "survey", "respond", "req", "rep"],
    roleHelp: {
      survey: 'the survey is the bytes of FILE ("-": standard input)',
      respond: "answer every survey with the bytes of FILE",
      req: 'the request is the bytes of FILE, sent raw ("-": standard input)',
      rep: "answer every request with the bytes of FILE, sent raw",
    },
  },
  {
    name: "json",
    value: "JSON",
    help: "the request is this JSON value, R-serialized (objects are named lists,\n" +
      "arrays of numbers double vectors); implies --format json",
    roles: ["req"],
  },
  {
    name: "execute",
    short: "e",
    value: "SRC",
    help: "a function's source, called with each request's value, e.g. '(x) => x + 1'",
    roles: ["rep"],
  },
  {
    name: "send-mode",
    value: "M",
    help: "serial (R serialization, default) or raw",
    roles: ["req", "rep"],
    roleHelp: { rep: "how replies are sent: serial (default) or raw" },
  },
  {
    name: "recv-mode",
    value: "M",
    help: "serial (default), typed (the exact R value tree), character, complex,\n" +
      "double, integer, logical, numeric, raw, string",
    roles: ["req", "rep"],
    roleHelp: {
      rep: "how requests are read: serial (default), typed (the exact R value tree,\n" +
        "see @x/rsock/serial), or a raw mode (--recv-mode of rsock req)",
    },
  },
  {
    name: "format",
    value: "F",
    help: "how a message is printed: text (default: one line, UTF-8), ascii, quoted,\n" +
      "hex, msgpack or raw, as nngcat's formats",
    roles: PRINTING,
    roleHelp: {
      req: "how a reply of bytes is printed: text (default: UTF-8 text, else quoted),\n" +
        "ascii, quoted, hex, msgpack or raw, as nngcat's formats; json prints any\n" +
        "reply as one line of JSON (NA, NaN and Inf as null), for jq",
    },
  },
  {
    name: "ascii",
    short: "A",
    help: "--format ascii: printable ASCII, other bytes as ., no newline (as nngcat)",
    roles: PRINTING,
  },
  {
    name: "quoted",
    short: "Q",
    help: '--format quoted: a C string per line, "a\\nb\\x00", so every message\n' +
      "keeps its boundaries",
    roles: PRINTING,
  },
  { name: "hex", help: '--format hex: every byte as \\xNN, "\\x61\\x00"', roles: PRINTING },
  {
    name: "msgpack",
    help: "--format msgpack: each message as a MessagePack bin",
    roles: PRINTING,
  },
  { name: "raw", help: "--format raw: the bytes as they are, no newline", roles: PRINTING },
  {
    name: "count",
    short: "C",
    value: "N",
    help: "stop after N messages",
    roles: NNG.concat("rep"),
    roleHelp: {
      ...Object.fromEntries(
        SENDING.map((
          role,
        ) => [role, "stop after N messages (with --data or --file: send it N times)"]),
      ),
      rep: "stop after N requests (default: serve until Ctrl-C / SIGTERM)",
      survey: "stop after N answers",
      respond: "stop after answering N surveys",
    },
  },
  {
    name: "delay",
    short: "d",
    value: DURATION,
    help: "wait T before the first send",
    roles: [...SENDING, "survey", "req"],
  },
  {
    name: "interval",
    short: "i",
    value: DURATION,
    help: "with --data or --file: send it again every T (until --count, or Ctrl-C)",
    roles: SENDING,
  },
  {
    name: "recv-timeout",
    value: DURATION,
    help: "stop receiving (exit 0, as nngcat) when no message came for T",
    aliases: ["timeout"],
    roles: ["req", "sub", "pull", "respond", "pair", "bus"],
    roleHelp: { req: "give up (exit 1) when no reply came in T (default 10)" },
  },
  {
    name: "send-timeout",
    value: DURATION,
    help: "give up (exit 1) when no peer took a message for T",
    roles: [...SENDING, "survey", "respond"],
    roleAliases: { pub: ["timeout"], push: ["timeout"], survey: ["timeout"] },
  },
  {
    name: "peers",
    value: "N",
    help: "wait for N peers before sending (default 1; 0: send at once)",
    roles: [...SENDING, "survey"],
  },
  {
    name: "drop-slow",
    help: "never wait for a slow reader: drop what it cannot take, as NNG does",
    roles: ["pub", "bus"],
  },
  {
    name: "survey-time",
    value: DURATION,
    help: "how long answers are taken (default 1)",
    roles: ["survey"],
  },
  {
    name: "borrow-buffers",
    help: "with --recv-mode raw: reuse a request's buffer once its reply is sent\n" +
      "(faster for large messages; the function must not keep its argument)",
    roles: ["rep"],
  },
  {
    name: "tls-cert",
    short: "E",
    value: "FILE",
    aliases: ["cert"],
    help: "PEM certificate (listening: the server's; dialing: the client's)",
    roles: NNG,
  },
  {
    name: "tls-key",
    value: "FILE",
    aliases: ["key"],
    help: "PEM private key of --tls-cert",
    roles: NNG,
  },
  {
    name: "tls-ca",
    value: "FILE",
    aliases: ["cacert"],
    help: "PEM CA: verify servers with it; listening on tls+tcp://, admit only\n" +
      "clients it signed",
    roles: NNG,
  },
  {
    name: "tls-insecure",
    short: "k",
    aliases: ["insecure"],
    help: "dial tls+tcp:// without verifying the server",
    roles: NNG,
  },
];

/** The flags `role` takes, in table order, with its own help and aliases. */
export function flagsFor(role: SpRole): Flag[] {
  return FLAGS.filter((row) => row.roles.includes(role)).map((row) => {
    const aliases = [...(row.aliases ?? []), ...(row.roleAliases?.[role] ?? [])];
    const flag: Flag = {
      name: row.name,
      help: row.roleHelp?.[role] ?? row.help,
      ...(row.short === undefined ? {} : { short: row.short }),
      ...(row.value === undefined ? {} : { value: row.value }),
      ...(row.multiple ? { multiple: true } : {}),
      ...(aliases.length === 0 ? {} : { aliases }),
    };
    return flag;
  });
}

/** The text after a command's option list that every SP command shares. */
export function sharedNotes(role: SpRole): string {
  const transports = role === "req" || role === "rep"
    ? "tcp://host:port, ipc:///path or ws://host:port/path"
    : "tcp://host:port, ipc:///path, ws://host:port/path, tls+tcp://host:port\nor wss://host:port/path";
  const side = LISTENING_ROLES.includes(role)
    ? "listened on (--listen URL)"
    : "dialed (--dial URL)";
  const durations = flagsFor(role).some((flag) => flag.value === DURATION) ? `\n${DURATIONS}` : "";
  return `URL is ${transports}; a URL given alone is ${side}.${durations}`;
}

/** The URLs to listen on and to dial: positional URLs go to the role's usual side. */
export function endpointsOf(
  role: SpRole,
  args: ParsedArgs,
): { listen: string[]; dial: string[] } {
  const listen = list(args, "listen");
  const dial = list(args, "dial");
  (LISTENING_ROLES.includes(role) ? listen : dial).push(...args.positionals);
  return { listen, dial };
}

/** A string flag's values, whether given once or many times. */
export function list(args: ParsedArgs, flag: string): string[] {
  const value = args.values[flag];
  return Array.isArray(value) ? value.map(String) : typeof value === "string" ? [value] : [];
}

/** How received bytes are printed: nngcat's formats, `text` (a line of UTF-8) and `json`. */
export const FORMATS = ["text", "ascii", "quoted", "hex", "msgpack", "raw", "json"] as const;
/** One of {@linkcode FORMATS}. */
export type Format = typeof FORMATS[number];

/** The output format `args` choose: `--format F` or one of the format switches, at most one. */
export function formatOf(args: ParsedArgs, fallback: Format = "text"): Format {
  const chosen = FORMATS.filter((format) => format !== "text" && args.values[format] === true);
  const named = typeof args.values.format === "string" ? args.values.format : undefined;
  if (named !== undefined) {
    // nngcat spells the default "no".
    const format = named === "no" ? "text" : named;
    if (!(FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, got "${named}"`);
    }
    chosen.push(format as Format);
  }
  if (new Set(chosen).size > 1) {
    throw new UsageError(`give one output format, got ${chosen.map((f) => `--${f}`).join(" ")}`);
  }
  return chosen[0] ?? fallback;
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

/** `bytes` as a MessagePack bin (bin 8, 16 or 32 by length), as nngcat's `--msgpack`. */
function msgpackBin(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  const head = n < 0x100
    ? [0xc4, n]
    : n < 0x10000
    ? [0xc5, n >> 8, n & 0xff]
    : [0xc6, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(head.length + n);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}

/**
 * Bytes as `format` shows them: `text` is the UTF-8 text when the bytes are valid UTF-8 and
 * the quoted form otherwise; `ascii`, `quoted`, `hex`, `msgpack` and `raw` are nngcat's formats.
 */
export function formatBytes(bytes: Uint8Array, format: Format): string | Uint8Array {
  switch (format) {
    case "raw":
      return bytes;
    case "msgpack":
      return msgpackBin(bytes);
    case "ascii":
      // No newline after it: nngcat 1.5.2 writes none either.
      return String.fromCharCode(...bytes.map((b) => b >= 0x20 && b < 0x7f ? b : 0x2e));
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

/** Writes `shown` (from {@linkcode formatBytes}) to `output`. */
export function writeShown(output: Output, shown: string | Uint8Array): void {
  if (typeof shown === "string") output.write(shown);
  else if (output.writeBytes !== undefined) output.writeBytes(shown);
  else output.write(new TextDecoder().decode(shown));
}

/** After this long without a peer, a command says what it waits for. */
export const WAITING_NOTICE_MS = 1000;

/**
 * Prints "waiting for a peer at URL (Ctrl-C to stop)" once if `sock` has no peer after
 * {@linkcode WAITING_NOTICE_MS}, so a dial to a closed port or a listener nobody dials does not
 * wait in silence. Returns the function that cancels the notice.
 */
export function noticeWaiting(
  sock: SpSocket,
  urls: readonly string[],
  say: (line: string) => void,
): () => void {
  const timer = setTimeout(() => {
    if (sock.pipeCount === 0) say(`waiting for a peer at ${urls.join(", ")} (Ctrl-C to stop)`);
  }, WAITING_NOTICE_MS);
  return () => clearTimeout(timer);
}
