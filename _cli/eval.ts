/**
 * `rsock eval`: one-shot evaluation on a running eval server (rsock's, or R's svSocket with
 * `--r`), like svSocket's `evalServer()` from a shell.
 *
 * @module
 */

import { connectEvalServer, type EvalConnection } from "../eval/mod.ts";
import {
  type Command,
  netHost,
  type Output,
  type ParsedArgs,
  parsePort,
  requirePermissions,
  stringFlag,
  UsageError,
} from "./_common.ts";

const HELP = `rsock eval — evaluate code on a running eval server and print the result

Usage: rsock eval [--port 8888] [--hostname 127.0.0.1] [--name NAME] [--token-env VAR] 'CODE'

  --port N          the server's port (default 8888, svSocket's)
  --hostname H      the server's address (default 127.0.0.1)
  --name NAME       client name (letters and digits): its settings persist on the server
  --token-env VAR   read the server's token from environment variable VAR

Prints what the server printed (console output, then the value). Exits 1 when the evaluation
failed — rsock's server says so on the wire (its markErrors setting), so printed text that looks
like an error is not one; R's svSocket only in its text (the reply starts with "Error") — and 2 on
a usage error.

Permissions: --allow-net=HOST:PORT (and --allow-env=VAR with --token-env).

Server:  deno run --allow-net=127.0.0.1:8888 cli.ts serve --eval 8888
         or in R: svSocket::startSocketServer(8888)`;

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
  if (name !== undefined && !/^[A-Za-z0-9]+$/.test(name)) {
    throw new UsageError(`--name must be letters and digits only, got "${name}"`);
  }
  await requirePermissions([
    { name: "net", host: netHost(hostname, port) },
    ...(tokenVariable === undefined ? [] : [{ name: "env" as const, variable: tokenVariable }]),
  ]);
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

/** The `eval` subcommand. */
export const evalCommand: Command = {
  name: "eval",
  summary: "evaluate code on a running eval server (rsock's or R svSocket's)",
  help: HELP,
  positionals: true,
  options: {
    port: { type: "string", short: "p" },
    hostname: { type: "string" },
    name: { type: "string" },
    "token-env": { type: "string" },
  },
  async run(args: ParsedArgs, output: Output): Promise<number> {
    if (args.positionals.length === 0) throw new UsageError("expected the CODE to evaluate");
    await using conn = await connectFromArgs(args);
    const { text, error } = await conn.evaluate(args.positionals.join(" "));
    if (error) {
      output.error(text);
      return 1;
    }
    if (text !== "") output.write(text + "\n");
    return 0;
  },
};
