/**
 * `rsock eval`: one-shot evaluation on a running eval server (rsock's, or R's svSocket with
 * `--r`), like svSocket's `evalServer()` from a shell.
 *
 * @module
 */

import { connectEvalServer, type EvalConnection } from "../eval/mod.ts";
import {
  type Command,
  type Flag,
  type Needed,
  netHost,
  type Output,
  type ParsedArgs,
  parsePort,
  requirePermissions,
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
  onPush?: (text: string) => void,
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
    dialect: "auto",
    ...(name === undefined ? {} : { name }),
    ...(token === undefined ? {} : { token }),
    ...(onPush === undefined ? {} : { onPush }),
  });
}

/** How long a stopped `rsock eval` waits for its interrupt to reach the server. */
const INTERRUPT_WAIT_MS = 2000;

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
  ],
  notes: NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    // Every grant at once, so that one run names every missing flag.
    const file = stringFlag(args, "file");
    await requirePermissions([
      ...connectionNeeds(args),
      ...(file === undefined ? [] : [{ name: "read" as const, path: file }]),
    ]);
    const code = await codeFrom(args);
    await using conn = await connectFromArgs(args);
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
