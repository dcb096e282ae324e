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

/** One subcommand of `rsock`. */
export interface Command {
  /** The word after `rsock`. */
  readonly name: string;
  /** One line for `rsock --help`. */
  readonly summary: string;
  /** The full `rsock <name> --help` text. */
  readonly help: string;
  /** Its flags, for `node:util` `parseArgs`. */
  readonly options: ParseArgsOptionsConfig;
  /** Whether it takes positional arguments. */
  readonly positionals: boolean;
  /** Rewrites argv before parsing (e.g. flags whose value is optional). */
  preprocess?(args: string[]): string[];
  /** Runs with parsed arguments; returns the exit status. */
  run(args: ParsedArgs, output: Output): Promise<number>;
}

/** Parsed flags and positionals. */
export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
}

/** Parses `args` for `command`, turning parseArgs' errors into {@linkcode UsageError}s. */
export function parseCommandArgs(command: Command, args: string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: command.preprocess?.(args) ?? args,
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      allowPositionals: command.positionals,
      strict: true,
    });
    return { values, positionals };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
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
 * Checks every permission a command needs; asks only when standard input is a terminal
 * (Deno itself refuses to prompt under `--no-prompt`); throws
 * {@linkcode PermissionMissingError} naming the exact flags otherwise.
 */
export async function requirePermissions(needs: Needed[]): Promise<void> {
  const missing: Needed[] = [];
  const interactive = Deno.stdin.isTerminal();
  for (const need of needs) {
    const desc = descriptor(need);
    let status = await Deno.permissions.query(desc);
    if (status.state === "prompt" && interactive) status = await Deno.permissions.request(desc);
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
