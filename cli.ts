/**
 * The `rsock` command line: one door to every transport, each subcommand gated by the exact
 * Deno permissions it needs.
 *
 * ```sh
 * deno run -A jsr:@x/rsock/cli listen --port 6000
 * deno run --allow-net=localhost:6000 jsr:@x/rsock/cli send --port 6000 "hello"
 * ```
 *
 * @example Run a subcommand from code
 * ```ts
 * import { main } from "@x/rsock/cli";
 * const status = await main(["--version"]);
 * ```
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import {
  closest,
  commandHelp,
  DURATIONS,
  type Output,
  parseCommandArgs,
  PermissionMissingError,
  standardOutput,
  stoppedStatus,
  takeStopReason,
  UsageError,
} from "./_cli/_common.ts";
import { COMMANDS } from "./_cli/_commands.ts";

export type { Output } from "./_cli/_common.ts";

/**
 * The package version, from `deno.json`.
 *
 * @example
 * ```ts
 * import { VERSION } from "@x/rsock/cli";
 * console.log(`rsock ${VERSION}`); // what rsock --version prints
 * ```
 */
export const VERSION: string = denoJson.version;

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  const list = COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`);
  return `rsock ${VERSION} — R's socket tools for Deno

Usage: rsock <command> [options]
       rsock <command> --help      (or rsock help <command>)
       rsock --version

Commands:
${list.join("\n")}

${DURATIONS}
`;
}

/**
 * Runs the CLI with `args` (without the program name) and returns the exit status: 0 on
 * success, 1 when the work failed (e.g. nothing listens), 2 for a usage or permission error,
 * 130 after Ctrl-C (SIGINT) and 143 after SIGTERM, as shells expect.
 *
 * @example
 * ```ts
 * import { main } from "@x/rsock/cli";
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[], output: Output = standardOutput): Promise<number> {
  let [first, ...rest] = args;
  if (first === "help" && rest.length > 0) {
    // `rsock help CMD` is `rsock CMD --help`, as with git and cargo.
    [first, rest] = [rest[0], ["--help"]];
  }
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    output.write(topHelp());
    return first === undefined ? 2 : 0;
  }
  if (first === "--version" || first === "-V") {
    output.write(`rsock ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === first);
  if (command === undefined) {
    const names = COMMANDS.map((c) => c.name);
    const guess = closest(first, names);
    output.error(
      `rsock: unknown command "${first}"; ${
        guess === undefined ? "" : `did you mean "${guess}"? `
      }expected one of ${names.join(", ")} (see rsock --help)`,
    );
    return 2;
  }
  try {
    const parsed = parseCommandArgs(command, rest);
    if (parsed.values.help === true) {
      output.write(commandHelp(command) + "\n");
      return 0;
    }
    takeStopReason();
    const status = await command.run(parsed, output);
    // A command stopped by Ctrl-C or SIGTERM exits as shells expect (130, 143).
    return status === 0 ? stoppedStatus(takeStopReason()) : status;
  } catch (error) {
    if (error instanceof UsageError || error instanceof PermissionMissingError) {
      output.error(`rsock ${command.name}: ${error.message}`);
      return 2;
    }
    output.error(
      `rsock ${command.name}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
