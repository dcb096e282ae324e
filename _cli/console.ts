/**
 * `rsock console`: an interactive terminal client in svSocket's console mode (`<<<e>>>`): a
 * second console for a running program, with prompts and multi-line input.
 *
 * @module
 */

import { readLines } from "../_internal/lines.ts";
import { connectFromArgs } from "./eval.ts";
import type { Command, Output, ParsedArgs } from "./_common.ts";

const HELP = `rsock console — an interactive console on a running eval server

Usage: rsock console [--port 8888] [--hostname 127.0.0.1] [--name NAME] [--token-env VAR]

  --port N          the server's port (default 8888)
  --hostname H      the server's address (default 127.0.0.1)
  --name NAME       client name (letters and digits): its settings persist on the server
  --token-env VAR   read the server's token from environment variable VAR

Type JavaScript or TypeScript at the ":> " prompt; an unfinished block continues at ":+ ".
Ctrl-C interrupts a running evaluation (servers in worker mode) or drops pending lines;
Ctrl-D (end of input) leaves. Text the server pushes (sendSocketClients) shows as it comes.

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
    // Pushes (sendSocketClients) show as they come, on their own lines, then the prompt again.
    let prompt = "";
    await using conn = await connectFromArgs(args, (text) => output.write(`\n${text}\n${prompt}`));
    // Console mode, but without the echo: the terminal already shows what was typed.
    // Through the server's own settings function, so R's svSocket stops echoing too.
    await conn.consoleMode({ echo: false });
    const onInterrupt = () => void conn.interrupt().catch(() => {});
    Deno.addSignalListener("SIGINT", onInterrupt);
    try {
      prompt = conn.prompt;
      output.write(prompt);
      for await (const line of readLines(Deno.stdin.readable)) {
        prompt = "";
        const text = await conn.send(line);
        if (text !== "") output.write(text + "\n");
        prompt = conn.prompt;
        output.write(prompt);
      }
      output.write("\n");
    } finally {
      Deno.removeSignalListener("SIGINT", onInterrupt);
    }
    return 0;
  },
};
