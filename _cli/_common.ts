/**
 * What every rsock subcommand shares: argument errors, permission gating, output.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A mistake in the command line: reported in one line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Where a command writes; tests pass their own. */
export interface Output {
  /** Writes text to standard output as is. */
  write(text: string): void;
  /** Writes bytes to standard output as they are (when absent: as UTF-8 text). */
  writeBytes?(data: Uint8Array): void;
  /** Writes one line to standard error. */
  error(line: string): void;
  /** True when standard output is a terminal (progress bars, colours). */
  readonly isTerminal: boolean;
}

const encoder = new TextEncoder();

/** The process's standard output and error. */
export const standardOutput: Output = {
  write(text: string): void {
    writeAllSync(Deno.stdout, encoder.encode(text));
  },
  writeBytes(data: Uint8Array): void {
    writeAllSync(Deno.stdout, data);
  },
  error(line: string): void {
    writeAllSync(Deno.stderr, encoder.encode(line + "\n"));
  },
  get isTerminal(): boolean {
    return Deno.stdout.isTerminal();
  },
};

function writeAllSync(target: { writeSync(p: Uint8Array): number }, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) offset += target.writeSync(data.subarray(offset));
}

/**
 * One flag of a subcommand. The parser's options, the usage line and the option list are all
 * made from these entries, so help cannot drift from what is accepted.
 */
export interface Flag {
  /** The long name, without `--`. */
  readonly name: string;
  /** A one-letter alias, without `-`. */
  readonly short?: string;
  /** The value's placeholder (`N`, `TEXT`); a flag without one is a switch. */
  readonly value?: string;
  /** The value may be left out (`--eval` alone means its default). */
  readonly optionalValue?: boolean;
  /** The flag may be given more than once; its values come as an array. */
  readonly multiple?: boolean;
  /** Other long names for it (rsock's older spellings, nngcat's aliases), without `--`. */
  readonly aliases?: readonly string[];
  /** What it does; further lines continue under the first. */
  readonly help: string;
}

/** A subcommand of `rsock` whose help is made from its {@linkcode Flag} table. */
export interface TableCommand {
  /** The word after `rsock`. */
  readonly name: string;
  /** One line for `rsock --help`. */
  readonly summary: string;
  /** Its positional arguments as the usage line shows them (`URL`, `[MESSAGE…]`), or `""`. */
  readonly synopsis: string;
  /** Its flags: one table for parsing and help. */
  readonly flags: readonly Flag[];
  /** The help's text after the option list: behaviour, permissions, examples. */
  readonly notes: string;
  /** Rewrites argv before parsing (e.g. flags whose value is optional). */
  preprocess?(args: string[]): string[];
  /** Runs with parsed arguments; returns the exit status. */
  run(args: ParsedArgs, output: Output): Promise<number>;
}

/** One subcommand of `rsock`: its help and its parser are both made from its flag table. */
export type Command = TableCommand;

const HELP_FLAG: Flag = { name: "help", short: "h", help: "show this help" };
const WIDTH = 100;

function flagWithValue(flag: Flag): string {
  if (flag.value === undefined) return `--${flag.name}`;
  return flag.optionalValue ? `--${flag.name} [${flag.value}]` : `--${flag.name} ${flag.value}`;
}

/** A flag's help text, with its aliases named at its end. */
function helpWithAliases(flag: Flag): string {
  if (flag.aliases === undefined || flag.aliases.length === 0) return flag.help;
  return `${flag.help} (also ${flag.aliases.map((alias) => `--${alias}`).join(", ")})`;
}

/** `rsock <name> --help`: the usage line and the option list, both from the command's table. */
export function commandHelp(command: Command): string {
  // Required positionals (URL) lead, optional ones ([MESSAGE…]) close the line.
  const optional = command.synopsis.startsWith("[");
  const head = `Usage: rsock ${command.name}${
    command.synopsis && !optional ? ` ${command.synopsis}` : ""
  }`;
  const indent = " ".repeat(head.length + 1);
  const lines = [head];
  const items = command.flags.map((flag) => `[${flagWithValue(flag)}]${flag.multiple ? "…" : ""}`);
  if (optional) items.push(command.synopsis);
  for (const item of items) {
    const last = lines.length - 1;
    if (lines[last]!.length + 1 + item.length > WIDTH) lines.push(indent + item);
    else lines[last] += ` ${item}`;
  }
  const all = [...command.flags, HELP_FLAG];
  const names = all.map((flag) =>
    `${flag.short === undefined ? "    " : `-${flag.short}, `}${flagWithValue(flag)}`
  );
  const column = Math.max(...names.map((name) => name.length)) + 2;
  const options = all.flatMap((flag, i) =>
    helpWithAliases(flag).split("\n").map((text, j) =>
      `  ${(j === 0 ? names[i]! : "").padEnd(column)}${text}`.trimEnd()
    )
  );
  return [
    `rsock ${command.name} — ${command.summary}`,
    "",
    ...lines,
    "",
    "Options:",
    ...options,
    ...(command.notes === "" ? [] : ["", command.notes]),
  ].join("\n");
}

/** Parsed flags and positionals. */
export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known name closest to `word`, if it is close enough to be a likely typo. */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = candidate.startsWith(word) || word.startsWith(candidate)
      ? 1
      : distance(word, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * Turns a bare `--eval` (at the end, or before another option) into `--eval=`, so parseArgs
 * takes the flags whose value may be left out.
 */
function withOptionalValues(args: string[], names: readonly string[]): string[] {
  if (names.length === 0) return args;
  return args.map((arg, i) => {
    const next = args[i + 1];
    const bare = names.some((name) => arg === `--${name}`);
    return bare && (next === undefined || next.startsWith("-")) ? `${arg}=` : arg;
  });
}

/** The parsed values under each flag's own name, whichever alias gave them. */
function withoutAliases(
  flags: readonly Flag[],
  values: ParsedArgs["values"],
): ParsedArgs["values"] {
  const result: Record<string, ParsedArgs["values"][string]> = { ...values };
  for (const flag of flags) {
    for (const alias of flag.aliases ?? []) {
      const value = result[alias];
      delete result[alias];
      if (value === undefined) continue;
      const own = result[flag.name];
      if (own === undefined) result[flag.name] = value;
      else if (Array.isArray(own) && Array.isArray(value)) result[flag.name] = [...own, ...value];
      else throw new UsageError(`--${alias} is --${flag.name}; give it once`);
    }
  }
  return result;
}

/** Parses `args` for `command`, turning parseArgs' errors into {@linkcode UsageError}s. */
export function parseCommandArgs(command: Command, args: string[]): ParsedArgs {
  const options: ParseArgsOptionsConfig = { help: { type: "boolean", short: "h" } };
  const optional = command.flags.filter((flag) => flag.optionalValue).map((flag) => flag.name);
  args = withOptionalValues(args, optional);
  for (const flag of command.flags) {
    const type = flag.value === undefined ? "boolean" : "string";
    const multiple = flag.multiple ? { multiple: true } : {};
    options[flag.name] = {
      type,
      ...(flag.short === undefined ? {} : { short: flag.short }),
      ...multiple,
    };
    for (const alias of flag.aliases ?? []) options[alias] = { type, ...multiple };
  }
  try {
    const { values, positionals } = parseArgs({
      args: command.preprocess?.(args) ?? args,
      options,
      allowPositionals: command.synopsis !== "",
      strict: true,
    });
    return { values: withoutAliases(command.flags, values), positionals };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /^Unknown option '(-{1,2})([^'=]*)/.exec(message);
    if (unknown !== null) {
      const word = unknown[2]!;
      const guess = unknown[1] === "--" ? closest(word, Object.keys(options)) : undefined;
      throw new UsageError(
        `unknown option ${unknown[1]}${word}` +
          (guess === undefined ? "" : `; did you mean --${guess}?`) +
          ` (see rsock ${command.name} --help)`,
      );
    }
    // parseArgs explains over several lines; the CLI reports one.
    throw new UsageError(message.replace(/\s*\n\s*/g, " "));
  }
}

/** Reads a string flag. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === "string" ? value : undefined;
}

/** Reads a boolean flag. */
export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** Reads a port flag or value (0–65535), with a clear error for "abc" or 70000. */
export function parsePort(text: string | undefined, fallback: number, flag = "--port"): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new UsageError(`${flag} must be a whole number from 0 to 65535, got "${text}"`);
  }
  return Number(text);
}

/** Reads a positive whole number flag. */
export function parsePositiveInteger(
  text: string | undefined,
  fallback: number,
  flag: string,
): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${flag} must be a whole number of at least 1, got "${text}"`);
  }
  return Number(text);
}

/** Seconds since `since`, to a tenth: how long something has run, for a status line. */
export function secondsSince(since: Date): number {
  return Math.round((Date.now() - since.getTime()) / 100) / 10;
}

/** What a duration flag takes, said once in `rsock --help` and in each command that has one. */
export const DURATIONS =
  "T is a duration: a plain number is seconds, as in nngcat (0.5), or give a unit: 500ms, 2s, 1m.";

/**
 * Reads a duration flag, in milliseconds: a plain number is seconds, as in nngcat
 * (`--recv-timeout 1.5`), or a number with a unit, `ms`, `s` or `m` (`500ms`, `2s`).
 */
export function parseDuration(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m)?$/.exec(text.trim());
  if (match === null) {
    throw new UsageError(
      `${flag} must be a duration: seconds (2, 0.5) or a number with ms, s or m (500ms), got "${text}"`,
    );
  }
  const scale = match[2] === "ms" ? 1 : match[2] === "m" ? 60_000 : 1000;
  const ms = Number(match[1]) * scale;
  if (!Number.isSafeInteger(Math.round(ms)) || ms > 2 ** 31 - 1) {
    throw new UsageError(`${flag} is too long, got "${text}" (at most 24 days)`);
  }
  // Durations are whole milliseconds, and 0 often means "never" or "no limit": a positive
  // duration must not round to it.
  if (ms > 0 && Math.round(ms) === 0) {
    throw new UsageError(`${flag} must be at least 1ms, got "${text}"`);
  }
  return Math.round(ms);
}

/** A permission a subcommand needs before it opens anything. */
export type Needed =
  | { readonly name: "net"; readonly host: string }
  | { readonly name: "read"; readonly path: string }
  | { readonly name: "write"; readonly path: string }
  | { readonly name: "run"; readonly command: string }
  | { readonly name: "env"; readonly variable: string }
  /** All of sys: `node:inspector` (the eval engine) has no narrower grant. */
  | { readonly name: "sys" };

/** A permission that was not granted: status 2 and the flags to add. */
export class PermissionMissingError extends Error {
  /** The exact flags that grant what is missing. */
  readonly flags: string[];
  constructor(flags: string[]) {
    super(`missing permissions; run again with ${flags.join(" ")} (or -A)`);
    this.name = "PermissionMissingError";
    this.flags = flags;
  }
}

function descriptor(need: Needed): Deno.PermissionDescriptor {
  switch (need.name) {
    case "net":
      return { name: "net", host: need.host };
    case "read":
      return { name: "read", path: need.path };
    case "write":
      return { name: "write", path: need.path };
    case "run":
      return { name: "run", command: need.command };
    case "env":
      return { name: "env", variable: need.variable };
    case "sys":
      return { name: "sys" };
  }
}

function flagFor(need: Needed): string {
  switch (need.name) {
    case "net":
      return need.host;
    case "read":
    case "write":
      return need.path;
    case "run":
      return need.command;
    case "env":
      return need.variable;
    case "sys":
      return "";
  }
}

/**
 * Checks every permission a command needs, without ever asking: a permission prompt on a
 * terminal stops the command where Ctrl-C and SIGTERM cannot reach it, so anything not granted
 * is reported instead. Throws {@linkcode PermissionMissingError} naming the exact flags.
 */
export async function requirePermissions(needs: Needed[]): Promise<void> {
  const missing: Needed[] = [];
  for (const need of needs) {
    const status = await Deno.permissions.query(descriptor(need));
    if (status.state !== "granted") missing.push(need);
  }
  if (missing.length === 0) return;
  const byFlag = new Map<string, string[]>();
  for (const need of missing) {
    const list = byFlag.get(need.name) ?? [];
    const value = flagFor(need);
    if (!list.includes(value)) list.push(value);
    byFlag.set(need.name, list);
  }
  const flags = [...byFlag].map(([name, values]) =>
    values.join("") === "" ? `--allow-${name}` : `--allow-${name}=${values.join(",")}`
  );
  throw new PermissionMissingError(flags);
}

/**
 * Runs `start`; if its address is taken, the error names `address` and the `flag` that moves
 * the endpoint, instead of the bare "Address already in use (os error 98)".
 */
export async function listening<O, T>(
  where: { address: string; flag: string },
  start: (options: O) => T | Promise<T>,
  options: O,
): Promise<T> {
  const { address, flag } = where;
  try {
    return await start(options);
  } catch (error) {
    const inUse = error instanceof Deno.errors.AddrInUse ||
      (error instanceof Error && error.cause instanceof Deno.errors.AddrInUse);
    if (!inUse) throw error;
    throw new Error(
      `${address} is already in use: stop what listens there, or choose another with ${flag}`,
      { cause: error },
    );
  }
}

/**
 * What a Unix socket at `path` needs: read and write to the file, and, since Deno 2.9 gates a
 * Unix socket as net too, `--allow-net=unix:PATH`.
 */
export function unixSocketNeeds(path: string): Needed[] {
  return [{ name: "read", path }, { name: "write", path }, { name: "net", host: `unix:${path}` }];
}

/** `host:port` as Deno's `--allow-net` spells it. */
export function netHost(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/**
 * The exit status shells expect after a stop by `reason` (from {@linkcode untilStopped}):
 * 128 + the signal's number, so Ctrl-C gives 130 and SIGTERM 143; 0 for an abort from code.
 */
export function stoppedStatus(reason: string | undefined): number {
  return reason === "SIGINT" ? 130 : reason === "SIGTERM" ? 143 : 0;
}

// The signal that last stopped a command, so `main()` can turn a clean stop into 130/143
// without every command threading it through.
let lastStop: string | undefined;

/** Returns the signal that stopped the running command, if any, and forgets it. */
export function takeStopReason(): string | undefined {
  const reason = lastStop;
  lastStop = undefined;
  return reason;
}

/**
 * Resolves on SIGINT or SIGTERM (or when `signal` aborts), and removes its listeners after,
 * so a command can stop cleanly and `main()` stays testable in-process.
 */
export function untilStopped(signal?: AbortSignal): { promise: Promise<string>; dispose(): void } {
  const { promise, resolve } = Promise.withResolvers<string>();
  const onInt = () => resolve(lastStop = "SIGINT");
  const onTerm = () => resolve(lastStop = "SIGTERM");
  const onAbort = () => resolve("abort");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  signal?.addEventListener("abort", onAbort, { once: true });
  return {
    promise,
    dispose() {
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
      signal?.removeEventListener("abort", onAbort);
    },
  };
}
