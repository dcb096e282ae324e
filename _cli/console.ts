/**
 * `rsock console`: an interactive terminal client in svSocket's console mode (`<<<e>>>`): a
 * second console for a running program, with prompts and multi-line input.
 *
 * @module
 */

import { connectEvalServer } from "../eval/mod.ts";
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

const HELP = `rsock console — an interactive console on a running eval server

Usage: rsock console [--port 8888] [--hostname 127.0.0.1] [--name NAME] [--token-env VAR]

  --port N          the server's port (default 8888)
  --hostname H      the server's address (default 127.0.0.1)
  --name NAME       client name (letters and digits): its settings persist on the server
  --token-env VAR   read the server's token from environment variable VAR

Type JavaScript or TypeScript at the ":> " prompt; an unfinished block continues at ":+ ".
Ctrl-C interrupts a running evaluation (servers in worker mode) or drops pending lines;
Ctrl-D (end of input) leaves.

Permissions: --allow-net=HOST:PORT (and --allow-env=VAR with --token-env).`;

/** The `console` subcommand. */
export const consoleCommand: Command = {
  name: "console",
  summary: "interactive console on a running eval server (svSocket console mode)",
  help: HELP,
  positionals: false,
  options: {
    port: { type: "string", short: "p" },
    hostname: { type: "string" },
    name: { type: "string" },
    "token-env": { type: "string" },
  },
  async run(args: ParsedArgs, output: Output): Promise<number> {
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
    await using conn = await connectEvalServer({
      hostname,
      port,
      ...(name === undefined ? {} : { name }),
      ...(token === undefined ? {} : { token }),
    });
    // Console mode, but without the echo: the terminal already shows what was typed.
    await conn.send("<<<e>>>parSocket(<<<s>>>, { echo: false }); undefined");
    const onInterrupt = () => void conn.interrupt().catch(() => {});
    Deno.addSignalListener("SIGINT", onInterrupt);
    try {
      output.write(conn.prompt);
      for await (const line of readLines(Deno.stdin.readable)) {
        const text = await conn.send(line);
        if (text !== "") output.write(text + "\n");
        output.write(conn.prompt);
      }
      output.write("\n");
    } finally {
      Deno.removeSignalListener("SIGINT", onInterrupt);
    }
    return 0;
  },
};

/** Lines of a byte stream, without their line ends. */
async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let end: number;
    while ((end = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, end).replace(/\r$/, "");
      pending = pending.slice(end + 1);
    }
  }
  if (pending !== "") yield pending;
}
