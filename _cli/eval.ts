/**
 * `rsock eval`: one-shot evaluation on a running eval server (rsock's, or R's svSocket with
 * `--r`), like svSocket's `evalServer()` from a shell.
 *
 * @module
 */

import {
  connectEvalServer,
  type EvalConnection,
  type InterruptResult,
  type RunningEvaluation,
} from "../eval/mod.ts";
import {
  booleanFlag,
  type Command,
  type Flag,
  type Needed,
  netHost,
  type Output,
  type ParsedArgs,
  parsePort,
  requirePermissions,
  secondsSince,
  stringFlag,
  untilStopped,
  UsageError,
} from "./_common.ts";

const NOTES =
  `The code is the arguments, the contents of --file FILE, or standard input (with - or when piped).
Prints what the server printed (console output, then the value). Exits 1 when the evaluation
failed — rsock's server says so on the wire (its markErrors setting), so printed text that looks
like an error is not one; R's svSocket only in its text (the reply starts with "Error") — and 2 on
a usage error.

--interrupt interrupts the evaluation the server runs now, whoever sent it (another client, the
browser console, an NNG request: the doors of rsock serve), and says what it was; the request
never waits behind it. rsock eval '<<<esc>>>' does the same. The server must run its session in
a worker (rsock serve's default) to stop synchronous code, which costs the session's state;
code waiting on an await is given up on and the state kept.

Permissions: --allow-net=HOST:PORT (and --allow-env=VAR with --token-env, --allow-read=FILE
with --file).

Server:  rsock serve --eval 8888
         from a checkout: deno run --no-prompt --allow-net=127.0.0.1:8888 --allow-sys --allow-read=eval/ cli.ts serve --eval 8888
         or in R: svSocket::startSocketServer(8888)`;

/** The flags `rsock eval` and `rsock console` share: where the server is and who we are. */
export const CONNECTION_FLAGS: readonly Flag[] = [
  { name: "port", short: "p", value: "N", help: "the server's port (default 8888, svSocket's)" },
  { name: "hostname", value: "H", help: "the server's address (default 127.0.0.1)" },
  {
    name: "name",
    value: "NAME",
    help: "client name (letters and digits): its settings persist on the server",
  },
  {
    name: "token-env",
    value: "VAR",
    help: "read the server's token from environment variable VAR",
  },
];

/** What {@linkcode connectFromArgs} may add to the connection. */
export interface ConnectHooks {
  readonly onPush?: (text: string) => void;
  /** Told at connect of the evaluation the server runs now (an rsock server), if any. */
  readonly onBusy?: (running: RunningEvaluation) => void;
  /** No setup lines (they would wait behind a runaway): for control requests only. */
  readonly bare?: boolean;
  readonly signal?: AbortSignal;
}

/** The grants a connection made from `args` needs (its flags checked first). */
function connectionNeeds(args: ParsedArgs): Needed[] {
  const port = parsePort(stringFlag(args, "port"), 8888);
  const name = stringFlag(args, "name");
  if (name !== undefined && !/^[A-Za-z0-9]+$/.test(name)) {
    throw new UsageError(`--name must be letters and digits only, got "${name}"`);
  }
  const tokenVariable = stringFlag(args, "token-env");
  return [
    { name: "net", host: netHost(stringFlag(args, "hostname") ?? "127.0.0.1", port) },
    ...(tokenVariable === undefined ? [] : [{ name: "env" as const, variable: tokenVariable }]),
  ];
}

/**
 * Connects as `--port`, `--hostname`, `--name` and `--token-env` say, after checking the
 * permissions that needs; shared by `rsock eval` and `rsock console`.
 */
export async function connectFromArgs(
  args: ParsedArgs,
  hooks: ConnectHooks = {},
): Promise<EvalConnection> {
  const port = parsePort(stringFlag(args, "port"), 8888);
  const hostname = stringFlag(args, "hostname") ?? "127.0.0.1";
  const name = stringFlag(args, "name");
  const tokenVariable = stringFlag(args, "token-env");
  await requirePermissions(connectionNeeds(args));
  const token = tokenVariable === undefined ? undefined : Deno.env.get(tokenVariable);
  if (tokenVariable !== undefined && token === undefined) {
    throw new UsageError(`environment variable ${tokenVariable} is not set`);
  }
  return await connectEvalServer({
    hostname,
    port,
    // rsock's server or R's svSocket: asked once, so errors are told the right way for each.
    dialect: hooks.bare === true ? "rsock" : "auto",
    ...(name === undefined ? {} : { name }),
    ...(token === undefined ? {} : { token }),
    ...(hooks.onPush === undefined ? {} : { onPush: hooks.onPush }),
    ...(hooks.onBusy === undefined ? {} : { onBusy: hooks.onBusy }),
    ...(hooks.signal === undefined ? {} : { signal: hooks.signal }),
  });
}

/** How long `--interrupt` waits for the server's answer. */
const CONTROL_WAIT_MS = 5000;

/**
 * Interrupts what the server's session runs now, on a connection of its own (so it never
 * waits behind this client's lines), as `--interrupt` and `rsock console`'s Ctrl-C do.
 */
export function interruptFromArgs(args: ParsedArgs): Promise<InterruptResult> {
  return controlFromArgs(args, (conn) => conn.interruptRunning());
}

/** What the server's session runs now, asked on a connection of its own. */
export function runningFromArgs(args: ParsedArgs): Promise<RunningEvaluation | undefined> {
  return controlFromArgs(args, (conn) => conn.running());
}

async function controlFromArgs<T>(
  args: ParsedArgs,
  ask: (conn: EvalConnection) => Promise<T>,
): Promise<T> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), CONTROL_WAIT_MS);
  try {
    await using conn = await connectFromArgs(args, { bare: true, signal: timeout.signal });
    return await ask(conn);
  } catch (error) {
    if (!timeout.signal.aborted) throw error;
    throw new Error(
      `no answer from the server within ${CONTROL_WAIT_MS} ms; a server that runs its ` +
        "session in-process cannot answer while its code runs (only stopping it helps)",
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** `eval sock3 (127.0.0.1:50312), running since 16:05:12 (12.5 s): while (true) {}` */
export function describeRunning(running: RunningEvaluation): string {
  return `${running.door}, running since ${running.since.toTimeString().slice(0, 8)} ` +
    `(${secondsSince(running.since)} s): ${running.code}`;
}

/** The line that tells what an interrupt did. */
export function describeInterrupt(result: InterruptResult): string {
  if (result.running === undefined) return "nothing to interrupt: the session is idle";
  return `${result.interrupted ? "interrupted" : "could not interrupt"} ${
    describeRunning(result.running)
  }`;
}

/** How long a stopped `rsock eval` waits for its interrupt to reach the server. */
const INTERRUPT_WAIT_MS = 2000;

/** `<<<esc>>>` alone (svSocket's escape): on the command line, the interrupt. */
function isBareEscape(word: string): boolean {
  return word.trim() === "<<<esc>>>";
}

/** Waits for `promise`, or `ms` at most. */
async function boundedWait(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}

/**
 * The code to evaluate: the arguments, `--file FILE`, or standard input (`-`, or no argument
 * when input is piped: `echo 1+1 | rsock eval`), as `Rscript` and `deno eval` users expect.
 */
async function codeFrom(args: ParsedArgs): Promise<string> {
  const file = stringFlag(args, "file");
  const words = args.positionals;
  if (file !== undefined) {
    if (words.length > 0) throw new UsageError("give the code once: 'CODE', - or --file FILE");
    return await Deno.readTextFile(file);
  }
  if (
    (words.length === 1 && words[0] === "-") || (words.length === 0 && !Deno.stdin.isTerminal())
  ) {
    const code = await new Response(Deno.stdin.readable).text();
    if (code.trim() !== "") return code;
    throw new UsageError("expected the CODE to evaluate; standard input was empty");
  }
  if (words.length === 0) {
    throw new UsageError(
      "expected the CODE to evaluate ('CODE', - for standard input, or --file FILE)",
    );
  }
  return words.join(" ");
}

/** The `eval` subcommand. */
export const evalCommand: Command = {
  name: "eval",
  summary: "evaluate code on a running eval server (rsock's or R svSocket's)",
  synopsis: "['CODE' | -]",
  flags: [
    ...CONNECTION_FLAGS,
    {
      name: "file",
      short: "f",
      value: "FILE",
      help: "evaluate the code in FILE (like Rscript FILE, deno run FILE)",
    },
    {
      name: "interrupt",
      help: "interrupt the evaluation the server runs now, whoever sent it",
    },
  ],
  notes: NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    // Every grant at once, so that one run names every missing flag.
    const file = stringFlag(args, "file");
    await requirePermissions([
      ...connectionNeeds(args),
      ...(file === undefined ? [] : [{ name: "read" as const, path: file }]),
    ]);
    const words = args.positionals;
    if (booleanFlag(args, "interrupt") || (words.length === 1 && isBareEscape(words[0]!))) {
      if (booleanFlag(args, "interrupt") && (words.length > 0 || stringFlag(args, "file"))) {
        throw new UsageError("--interrupt takes no code");
      }
      const result = await interruptFromArgs(args);
      if (result.running !== undefined && !result.interrupted) {
        output.error(
          `rsock eval: ${describeInterrupt(result)}: the server's session cannot be interrupted`,
        );
        return 1;
      }
      output.write(describeInterrupt(result) + "\n");
      return 0;
    }
    const code = await codeFrom(args);
    const port = parsePort(stringFlag(args, "port"), 8888);
    await using conn = await connectFromArgs(args, {
      onBusy: (running) =>
        output.error(
          `rsock eval: waiting: the session is busy with ${describeRunning(running)}; ` +
            `rsock eval --port ${port} --interrupt stops it`,
        ),
    });
    const stop = untilStopped();
    try {
      const evaluation = conn.evaluate(code);
      const reply = await Promise.race([evaluation, stop.promise.then(() => undefined)]);
      if (reply === undefined) {
        // Ctrl-C or SIGTERM while the server runs our code: ask it to stop that code (<<<esc>>>),
        // else the shared session stays busy with it for every other client. main() then exits
        // 130 or 143.
        evaluation.catch(() => {});
        await boundedWait(conn.interrupt().catch(() => {}), INTERRUPT_WAIT_MS);
        return 0;
      }
      if (reply.error) {
        output.error(reply.text);
        return 1;
      }
      if (reply.text !== "") output.write(reply.text + "\n");
      return 0;
    } finally {
      stop.dispose();
    }
  },
};
