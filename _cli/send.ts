/**
 * `rsock send`: write messages to a listening socket, like the seed's `client.R`
 * (`make.socket` + `write.socket`), from arguments or standard input.
 *
 * @module
 */

import { connect, formatProgress } from "../socket/mod.ts";
import {
  type Command,
  netHost,
  type Output,
  type ParsedArgs,
  parsePort,
  requirePermissions,
  stringFlag,
  unixSocketNeeds,
  UsageError,
} from "./_common.ts";

const NOTES =
  `Each MESSAGE is sent as one line. With no MESSAGE, standard input is sent line by line as it
arrives (so "tail -f app.log | rsock send" relays a log).

Permissions: --allow-net=HOST:PORT (or --allow-read=PATH --allow-write=PATH
--allow-net=unix:PATH with --unix).

R server:  s <- make.socket(port = 6000, server = TRUE); repeat print(read.socket(s))`;

/** The `send` subcommand. */
export const sendCommand: Command = {
  name: "send",
  summary: "send messages (arguments or standard input) to a listening socket",
  synopsis: "[MESSAGE…]",
  flags: [
    { name: "port", short: "p", value: "N", help: "TCP port to connect to (default 6000)" },
    { name: "hostname", value: "H", help: "host to connect to (default localhost)" },
    { name: "unix", value: "PATH", help: "connect to a Unix socket instead of TCP" },
    {
      name: "progress",
      value: "D/T",
      help: 'send one progress report ("#progress D/T LABEL"), MESSAGE words as its LABEL',
    },
  ],
  notes: NOTES,
  async run(args: ParsedArgs, _output: Output): Promise<number> {
    const port = parsePort(stringFlag(args, "port"), 6000);
    const hostname = stringFlag(args, "hostname") ?? "localhost";
    const path = stringFlag(args, "unix");
    const progress = stringFlag(args, "progress");
    let lines: string[] | undefined = args.positionals.length > 0
      ? [...args.positionals]
      : undefined;
    if (progress !== undefined) {
      const match = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(progress);
      if (match === null) {
        throw new UsageError(`--progress must look like DONE/TOTAL (e.g. 3/10), got "${progress}"`);
      }
      lines = [formatProgress(Number(match[1]), Number(match[2]), args.positionals.join(" "))];
    }
    await requirePermissions(
      path === undefined ? [{ name: "net", host: netHost(hostname, port) }] : unixSocketNeeds(path),
    );
    await using conn = await connect(path === undefined ? { hostname, port } : { path });
    if (lines !== undefined) {
      // One write, so a reader in chunk framing sees whole lines.
      await conn.write(lines.map((line) => line + "\n").join(""));
      return 0;
    }
    // Forward whole lines only, so a chunk-framed reader never sees half a line per read.
    let pending: Uint8Array = new Uint8Array(0);
    for await (const chunk of Deno.stdin.readable) {
      const end = chunk.lastIndexOf(0x0a);
      if (end === -1) {
        pending = concat(pending, chunk);
        continue;
      }
      await conn.write(concat(pending, chunk.subarray(0, end + 1)));
      pending = chunk.slice(end + 1);
    }
    if (pending.length > 0) await conn.write(concat(pending, new Uint8Array([0x0a])));
    return 0;
  },
};

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
