/**
 * svSocket's line protocol, read from its source (`processSocket`/`process_socket_server`):
 * per-client settings, the markers, and how a reply is put together. No I/O here.
 *
 * @module
 */

import { rString } from "./_dialect.ts";
import { oneLine } from "../_internal/one_line.ts";

/** Per-client settings, with svSocket's names and defaults (`parSocket`). */
export interface ClientSettings {
  /** No prompt, no echo. @default true */
  bare: boolean;
  /** Prompt after a complete transaction (not in bare mode). @default ":> " */
  prompt: string;
  /** Prompt while multi-line code is pending (not in bare mode). @default ":+ " */
  continue: string;
  /** Echo the code in the reply (not in bare mode). @default false */
  echo: boolean;
  /** Keep incomplete code and wait for more lines (not in bare mode). @default true */
  multiline: boolean;
  /** Appended to every reply; `"\n\f"` lets a client read up to a form feed. @default "" */
  last: string;
  /** Pending multi-line code. @default "" */
  code: string;
  /**
   * Send server pushes to this client framed as `<<<push>>>TEXT` + `"\n\f\n"`, so a client that
   * reads replies up to a form feed can tell a push from a reply (rsock's client turns this on
   * when given `onPush`). Off, a push is plain text as in svSocket. @default false
   */
  framePushes: boolean;
  /**
   * Start the reply of a failed evaluation (syntax or runtime error, incomplete input in single
   * line mode, interrupt) with `<<<error>>>`, so a client can tell an error from output that
   * merely looks like one (`console.log("Error: …")`) without guessing from the text. rsock's
   * client turns it on for itself; svSocket has no such setting (its errors are known only by
   * their text). @default false
   */
  markErrors: boolean;
}

/**
 * A fresh client's settings.
 *
 * @example
 * ```ts
 * import { defaultSettings } from "@x/rsock/eval";
 * const settings = defaultSettings(); // bare: true, prompt ":> ", continue ":+ ", …
 * settings.bare = false; // as parSocket(<<<s>>>, { bare: false }) would
 * ```
 */
export function defaultSettings(): ClientSettings {
  return {
    bare: true,
    prompt: ":> ",
    continue: ":+ ",
    echo: false,
    multiline: true,
    last: "",
    code: "",
    framePushes: false,
    markErrors: false,
  };
}

/** The marker that starts a line (after `<<<id=…>>>` and `<<<esc>>>`), if any. */
export type StartMarker = "Q" | "q" | "e" | "h" | "H" | "u";

/** One incoming line, markers taken apart. */
export interface ParsedLine {
  /** The client's name: `<<<id=NAME>>>` or the connection's name. */
  readonly client: string;
  /** The line started with `<<<esc>>>`: drop the pending multi-line code. */
  readonly escape: boolean;
  /** The start marker (`<<<Q>>>`, `<<<q>>>`, `<<<e>>>`, `<<<h>>>`, `<<<H>>>`, `<<<u>>>`), if any. */
  readonly marker: StartMarker | undefined;
  /** The code, with `<<<n>>>` and `<<<s>>>` replaced. */
  readonly code: string;
}

const ID = /^<<<id=([A-Za-z0-9]+)>>>/;
const START = /^<<<([QqehHu])>>>/;

/** Takes one line apart in svSocket's order: id, esc, `<<<n>>>`, `<<<s>>>`, start marker. */
export function parseLine(line: string, connectionName: string, port: number): ParsedLine {
  let rest = line;
  let client = connectionName;
  const id = ID.exec(rest);
  if (id !== null) {
    client = id[1]!;
    rest = rest.slice(id[0].length);
  }
  const escape = rest.startsWith("<<<esc>>>");
  if (escape) rest = rest.slice(9);
  rest = rest.replaceAll("<<<n>>>", "\n").replaceAll("<<<s>>>", `"${client}", ${port}`);
  const start = START.exec(rest);
  const marker = start === null ? undefined : start[1] as StartMarker;
  if (start !== null) rest = rest.slice(start[0].length);
  return { client, escape, marker, code: rest };
}

/** True when the line asks to interrupt (`<<<esc>>>` after an optional `<<<id=…>>>`). */
export function isEscape(line: string): boolean {
  return line.replace(ID, "").startsWith("<<<esc>>>");
}

/**
 * True for a line that is only `<<<esc>>>` (after an optional `<<<id=…>>>`, before an optional
 * start marker), with no code: an interrupt rather than a transaction.
 */
export function isBareEscape(line: string): boolean {
  const rest = line.replace(ID, "");
  return rest.startsWith("<<<esc>>>") && rest.slice(9).replace(START, "").trim() === "";
}

/** The changes a start marker makes to the client's settings before evaluation. */
export function applyMarker(settings: ClientSettings, marker: StartMarker | undefined): void {
  switch (marker) {
    case "q":
      settings.last = "\n\f";
      return;
    case "e":
      Object.assign(settings, {
        bare: false,
        echo: true,
        prompt: ":> ",
        continue: ":+ ",
        multiline: true,
        last: "\n\f",
      });
      return;
    case "h":
      settings.bare = true;
      settings.last = "\n\f";
      return;
    case "H":
      settings.bare = true;
      return;
  }
}

/** Validates and applies changes from the settings function; throws on a wrong name or type. */
export function changeSettings(settings: ClientSettings, changes: unknown): void {
  if (changes === undefined || changes === null) return;
  if (typeof changes !== "object") {
    throw new TypeError(`settings must be an object like { bare: false }, got ${typeof changes}`);
  }
  const defaults = defaultSettings();
  for (const [key, value] of Object.entries(changes)) {
    if (!(key in defaults)) {
      throw new TypeError(
        `unknown setting "${key}"; expected one of ${Object.keys(defaults).join(", ")}`,
      );
    }
    const expected = typeof defaults[key as keyof ClientSettings];
    const actual = typeof value;
    if (actual !== expected) {
      throw new TypeError(`setting "${key}" must be a ${expected}, got ${actual}`);
    }
    (settings as unknown as Record<string, unknown>)[key] = value;
  }
}

/** The code echoed in console mode: prompt before the first line, continue before the rest. */
export function echoCode(code: string, prompt: string, continuation: string): string {
  return code.split("\n").map((line, i) => (i === 0 ? prompt : continuation) + line).join("\n") +
    "\n";
}

/** Results as svSocket returns them: the printed lines, each ending in a newline. */
export function resultsText(text: string): string {
  return text === "" ? "" : text + "\n";
}

/** What goes on the wire for a reply: nothing when empty, else reply + newline, line ends converted. */
export function frameReply(reply: string, lineEnd: string): string {
  if (reply === "") return "";
  const text = reply + "\n";
  return lineEnd === "\n" ? text : text.replaceAll("\n", lineEnd);
}

/** Starts the reply of a failed evaluation for clients with {@linkcode ClientSettings.markErrors}. */
export const ERROR_MARKER = "<<<error>>>";

/** Starts a push framed for clients with {@linkcode ClientSettings.framePushes}. */
export const PUSH_MARKER = "<<<push>>>";

/** A push as sent to one client: plain text, or framed like a reply and marked. */
export function framePush(text: string, settings: ClientSettings | undefined, lineEnd: string) {
  if (settings?.framePushes !== true) return frameReply(text, lineEnd);
  return frameReply(`${PUSH_MARKER}${text}\n\f`, lineEnd);
}

/** The error svSocket gives for incomplete input when multi-line input is off. */
export const INCOMPLETE_SINGLE_LINE = "Error: incomplete command in single line mode\n";

/**
 * True for an HTTP request line (`POST / HTTP/1.1`, `PRI * HTTP/2.0`): what a web page's
 * `fetch` or form sends first when it is pointed at the eval port. No line of R or JS code
 * has this shape, so a connection that starts with one is a browser, not a client.
 */
export function isHttpRequestLine(line: string): boolean {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/\d(\.\d)?$/.test(line);
}

/**
 * rsock's requests about the shared session (svSocket has none), answered without evaluating
 * anything, so never behind a runaway: `<<<status>>>` asks what the session runs now;
 * `<<<interrupt>>>` interrupts it, whoever sent it, the moment the line arrives. Each may
 * follow `<<<id=…>>>` and a start marker, alone on its line; the marker only frames the reply
 * (`<<<q>>>`, `<<<h>>>`, `<<<e>>>`: it ends in a form feed), the client's settings stay as they
 * are. The reply is {@linkcode STATUS_MARKER} + JSON ({@linkcode SessionStatus}).
 */
export type ControlRequest = "status" | "interrupt";

const CONTROL = /^(?:<<<[QqehHu]>>>)?<<<(status|interrupt)>>>$/;

/** The control request a line carries, if it is one. */
export function controlRequest(line: string): ControlRequest | undefined {
  const match = CONTROL.exec(line.replace(ID, "").trim());
  return match === null ? undefined : match[1] as ControlRequest;
}

/** Starts the reply to a control request. */
export const STATUS_MARKER = "<<<status>>>";

/** What the reply to a control request says, as JSON after {@linkcode STATUS_MARKER}. */
export interface SessionStatus {
  /** The evaluation running (when the line arrived), or null when the session was idle. */
  readonly running: {
    readonly door: string;
    /** Its first {@linkcode PREVIEW_LENGTH} characters. */
    readonly code: string;
    /** Milliseconds it had run. */
    readonly ms: number;
  } | null;
  /** For `<<<interrupt>>>`: whether it was interrupted. */
  readonly interrupted?: boolean;
}

/** How much of the code a status or a report shows. */
export const PREVIEW_LENGTH = 60;

/** The first {@linkcode PREVIEW_LENGTH} characters of `code`, on one line. */
export function codePreview(code: string): string {
  return oneLine(code, PREVIEW_LENGTH);
}

/**
 * The status in a reply to a control request, or undefined when the reply is something else.
 * Its last line holds it: pushes that came while the client waited may stand before it (plain
 * text, as svSocket sends them, for clients without `framePushes`).
 */
export function parseStatus(reply: string): SessionStatus | undefined {
  const line = reply.slice(reply.lastIndexOf("\n") + 1);
  if (!line.startsWith(STATUS_MARKER)) return undefined;
  try {
    const status = JSON.parse(line.slice(STATUS_MARKER.length)) as SessionStatus;
    const running = status.running;
    if (running === null) return status;
    if (
      typeof running === "object" && typeof running.door === "string" &&
      typeof running.code === "string" && typeof running.ms === "number"
    ) return status;
  } catch {
    // not a status
  }
  return undefined;
}

/**
 * What rsock answers svSocket's `evalServer()`: it sends R code, and reads until a line with
 * `<<<endflag>>>`, so a plain error reply would leave it waiting forever.
 */
export const NOT_R_MESSAGE = "this svSocket-style server is rsock: it evaluates JavaScript, not " +
  "R, so svSocket's evalServer() cannot run here; write JavaScript lines to the connection " +
  'instead, e.g. cat("1 + 1\\n", file = con); readLines(con)';

// Both of evalServer()'s lines assign `..Last.value` first (never JavaScript: an identifier
// cannot start with a dot) and make the server print `<<<endflag>>>` when done.
const SVSOCKET_EVAL = /^\s*\.\.Last\.value\s*<-/;

/**
 * The reply to a line of svSocket's `evalServer()`, or undefined for any other code. To the
 * line that asks for a value, R code after `<<<startflag>>>` that evalServer() sources, which
 * stops with {@linkcode NOT_R_MESSAGE}; to the line that assigns one, the message itself
 * (evalServer() stops with any text before `<<<endflag>>>`).
 */
export function svSocketEvalReply(code: string): string | undefined {
  if (!SVSOCKET_EVAL.test(code) || !code.includes("<<<endflag>>>")) return undefined;
  if (!code.includes("<<<startflag>>>")) return `Error: ${NOT_R_MESSAGE}\n<<<endflag>>>`;
  return `\n<<<startflag>>>\nstop(${rString(NOT_R_MESSAGE)}, call. = FALSE)\n<<<endflag>>>`;
}
