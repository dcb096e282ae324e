/**
 * Every `rsock` subcommand, in the order `rsock --help` lists them: the one list the CLI and
 * the tests that check help, README lines and permissions all read.
 *
 * @module
 */

import type { Command } from "./_common.ts";
import { consoleCommand } from "./console.ts";
import { evalCommand } from "./eval.ts";
import { listenCommand } from "./listen.ts";
import { nngCommands } from "./nng.ts";
import { repCommand, reqCommand } from "./req.ts";
import { sendCommand } from "./send.ts";
import { serveCommand } from "./serve.ts";
import { wsCommand } from "./ws.ts";

/** Every subcommand, as `rsock --help` lists them. */
export const COMMANDS: readonly Command[] = [
  listenCommand,
  sendCommand,
  evalCommand,
  consoleCommand,
  reqCommand,
  repCommand,
  wsCommand,
  serveCommand,
  ...nngCommands,
];
