/**
 * `rsock ws`: a WebSocket client (standard input lines out as messages, messages to standard
 * output) or, with `--listen`, a server that prints what clients send — what `websocat` users
 * reach for.
 *
 * @module
 */

import { createServer, websocket, type WsData } from "../ws/mod.ts";
import { readLines } from "../_internal/lines.ts";
import {
  booleanFlag,
  type Command,
  netHost,
  type Output,
  type ParsedArgs,
  parsePort,
  requirePermissions,
  stringFlag,
  untilStopped,
  UsageError,
} from "./_common.ts";
import { formatBytes } from "./req.ts";

const NOTES = `With URL (ws://host:port/path or wss://…): each line of standard input is sent as one
message, and each message received is printed on its own line (binary ones as text when they
are UTF-8, else as a quoted C string). End of input closes the connection (code 1000).

With --listen PORT: a server on HOST:PORT (any path) that prints each message as
"[CLIENT] text", connections on standard error; with --broadcast each line of standard input
goes to every client. Ctrl-C or SIGTERM stops it.

Permissions: --allow-net=HOST:PORT of the URL, or of --hostname and --listen.

  rsock ws ws://127.0.0.1:7681/ --protocol chat
  rsock ws --listen 7681 --broadcast`;

/** The `ws` subcommand. */
export const wsCommand: Command = {
  name: "ws",
  summary: "WebSocket client (stdin to messages, messages to stdout) or, with --listen, server",
  synopsis: "[URL]",
  flags: [
    { name: "listen", short: "l", value: "PORT", help: "be the server, on PORT (0 picks one)" },
    { name: "hostname", value: "H", help: "with --listen: address to bind (default 127.0.0.1)" },
    { name: "binary", short: "b", help: "send each line as a binary message (default text)" },
    {
      name: "protocol",
      value: "P",
      help: "the subprotocol to offer (client) or to speak (server)",
    },
    { name: "broadcast", help: "with --listen: send each line of standard input to all clients" },
  ],
  notes: NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const listenFlag = stringFlag(args, "listen");
    const [url, ...extra] = args.positionals;
    if (extra.length > 0 || (url === undefined) === (listenFlag === undefined)) {
      throw new UsageError("give a URL to connect to, or --listen PORT to be the server");
    }
    if (listenFlag === undefined && booleanFlag(args, "broadcast")) {
      throw new UsageError("--broadcast goes with --listen");
    }
    const protocol = stringFlag(args, "protocol");
    const encode = booleanFlag(args, "binary")
      ? (line: string): WsData => new TextEncoder().encode(line)
      : (line: string): WsData => line;
    if (url !== undefined) return await client(url, protocol, encode, output);
    return await server(args, listenFlag!, protocol, encode, output);
  },
};

/** A message as a line of output. */
function shown(data: WsData): string {
  if (typeof data === "string") return data + "\n";
  return formatBytes(data, "text") as string;
}

async function client(
  url: string,
  protocol: string | undefined,
  encode: (line: string) => WsData,
  output: Output,
): Promise<number> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new UsageError(`"${url}" is not a URL; expected ws://host:port/path or wss://…`);
  }
  if (target.protocol !== "ws:" && target.protocol !== "wss:") {
    throw new UsageError(
      `"${url}" is not a WebSocket URL; expected ws://host:port/path or wss://…`,
    );
  }
  const port = target.port === "" ? (target.protocol === "wss:" ? 443 : 80) : Number(target.port);
  const hostname = target.hostname.replace(/^\[(.*)\]$/, "$1");
  await requirePermissions([{ name: "net", host: netHost(hostname, port) }]);
  await using socket = await websocket(url, {
    ...(protocol === undefined ? {} : { protocols: [protocol] }),
    receive: (data) => output.write(shown(data)),
  });
  output.error(
    `rsock ws: connected to ${url}${
      socket.protocol === "" ? "" : ` (protocol ${socket.protocol})`
    }`,
  );
  // Lines go out until input ends or the server closes.
  const sending = (async () => {
    for await (const line of readLines(Deno.stdin.readable)) await socket.write(encode(line));
    socket.close(1000);
  })();
  // The server may close first; a line still being read then goes nowhere.
  sending.catch((error) => output.error(`rsock ws: ${error.message ?? error}`));
  const info = await socket.closed;
  if (info.code === 1000 || info.code === 1001) return 0;
  output.error(
    `rsock ws: the connection closed with ${info.code}${info.reason ? ` ${info.reason}` : ""}`,
  );
  return 1;
}

async function server(
  args: ParsedArgs,
  portFlag: string,
  protocol: string | undefined,
  encode: (line: string) => WsData,
  output: Output,
): Promise<number> {
  const port = parsePort(portFlag, 0, "--listen");
  const hostname = stringFlag(args, "hostname") ?? "127.0.0.1";
  await requirePermissions([{ name: "net", host: netHost(hostname, port) }]);
  const stop = untilStopped();
  try {
    await using server = createServer({
      port,
      hostname,
      ...(protocol === undefined ? {} : { protocols: [protocol] }),
      established: (client) =>
        output.error(
          `rsock ws: client ${client.id} connected from ${client.remoteAddress}` +
            (client.protocol === "" ? "" : ` (protocol ${client.protocol})`),
        ),
      closed: (client, info) =>
        output.error(`rsock ws: client ${client.id} disconnected (${info.code})`),
      receive: (data, client) => output.write(`[${client.id}] ${shown(data)}`),
    });
    output.error(`rsock ws: listening on ${server.url}`);
    if (booleanFlag(args, "broadcast")) {
      (async () => {
        for await (const line of readLines(Deno.stdin.readable)) server.broadcast(encode(line));
      })().catch((error) => output.error(`rsock ws: standard input: ${error}`));
    }
    await stop.promise;
  } finally {
    stop.dispose();
  }
  return 0;
}
