/**
 * `rsock listen`: print what clients send, like the seed's `server.R` (`make.socket(server =
 * TRUE)` + a `read.socket` loop), but for many clients, with progress bars.
 *
 * @module
 */

import {
  listen,
  parseProgress,
  renderProgressBar,
  type SocketClient,
  type SocketEvent,
} from "../socket/mod.ts";
import {
  booleanFlag,
  type Command,
  netHost,
  type Output,
  type ParsedArgs,
  parsePort,
  parsePositiveInteger,
  requirePermissions,
  stringFlag,
  untilStopped,
} from "./_common.ts";

const HELP = `rsock listen — print messages sent to a TCP port or Unix socket

Usage: rsock listen [--port 6000] [--hostname 127.0.0.1] [--unix PATH] [--lines] [--once]
                    [--timestamps] [--raw] [--max-bytes N]

  --port N          TCP port to listen on (default 6000; 0 picks a free one)
  --hostname H      address to bind (default 127.0.0.1, loopback only)
  --unix PATH       listen on a Unix socket instead of TCP
  --lines           newline framing: one message per line (default: each read as it comes)
  --once            serve one client and exit when it closes (like R's make.socket server)
  --timestamps      prefix each message with its arrival time (ISO 8601)
  --raw             print the bytes exactly as received, without client tags
  --max-bytes N     largest line accepted with --lines (default 1048576)

Each message is printed as "[CLIENT] text". Lines of the form "#progress DONE/TOTAL LABEL"
are drawn as a live progress bar on a terminal and printed as plain lines otherwise.
Connections and errors are reported on standard error.

Permissions: --allow-net=HOST:PORT (or --allow-read=PATH --allow-write=PATH with --unix).

R client:  s <- make.socket("localhost", 6000); write.socket(s, "hello\\n"); close.socket(s)`;

/** The `listen` subcommand. */
export const listenCommand: Command = {
  name: "listen",
  summary: "print messages that clients send to a TCP port or Unix socket",
  help: HELP,
  positionals: false,
  options: {
    port: { type: "string", short: "p" },
    hostname: { type: "string" },
    unix: { type: "string" },
    lines: { type: "boolean" },
    once: { type: "boolean" },
    timestamps: { type: "boolean" },
    raw: { type: "boolean" },
    "max-bytes": { type: "string" },
  },
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const port = parsePort(stringFlag(args, "port"), 6000);
    const hostname = stringFlag(args, "hostname") ?? "127.0.0.1";
    const path = stringFlag(args, "unix");
    const once = booleanFlag(args, "once");
    const maxMessageBytes = parsePositiveInteger(
      stringFlag(args, "max-bytes"),
      1_048_576,
      "--max-bytes",
    );
    await requirePermissions(
      path === undefined
        ? [{ name: "net", host: netHost(hostname, port) }]
        : [{ name: "read", path }, { name: "write", path }],
    );
    const server = listen({
      ...(path === undefined ? { port, hostname } : { path }),
      framing: booleanFlag(args, "lines") ? "line" : "chunk",
      // The printer is done with each message before it asks for the next.
      borrowBuffers: true,
      maxMessageBytes,
      ...(once ? { maxClients: 1 } : {}),
      onError: (error) => output.error(`rsock: ${error.message}`),
    });
    const where = path ?? netHost(hostname, server.port);
    output.error(`rsock: listening on ${where}${once ? " (one client)" : ""}`);
    const printer = new Printer(output, {
      timestamps: booleanFlag(args, "timestamps"),
      raw: booleanFlag(args, "raw"),
    });
    const stop = untilStopped();
    const events = server.events();
    try {
      const stopped = stop.promise.then(() => "stop" as const);
      while (true) {
        const next = await Promise.race([events.next(), stopped]);
        if (next === "stop" || next.done) break;
        printer.print(next.value);
        if (once && next.value.type === "disconnect") break;
      }
    } finally {
      stop.dispose();
      printer.finish();
      await server.close();
    }
    return 0;
  },
};

/** How a {@linkcode Printer} shows messages. */
export interface PrinterOptions {
  readonly timestamps: boolean;
  readonly raw: boolean;
  /** Put before each client tag, e.g. `"socket "` in `rsock serve`'s log. */
  readonly prefix?: string;
}

/** Prints server events; keeps a progress bar on the current terminal line when it can. */
export class Printer {
  readonly #output: Output;
  readonly #options: PrinterOptions;
  #barOpen = false;

  constructor(output: Output, options: PrinterOptions) {
    this.#output = output;
    this.#options = options;
  }

  print(event: SocketEvent): void {
    const { client } = event;
    switch (event.type) {
      case "connect":
        this.#status(
          `rsock: ${this.#tag}client ${client.id} connected from ${client.remoteAddress}`,
        );
        return;
      case "disconnect":
        this.#status(`rsock: ${this.#tag}client ${client.id} disconnected`);
        return;
      case "error":
        this.#status(`rsock: ${event.error.message}`);
        return;
      case "message":
        if (this.#options.raw) {
          this.#closeBar();
          this.#output.write(event.message.text);
          return;
        }
        for (const line of splitLines(event.message.text)) this.#line(client, line);
    }
  }

  finish(): void {
    this.#closeBar();
  }

  get #tag(): string {
    return this.#options.prefix ?? "";
  }

  #line(client: SocketClient, line: string): void {
    const stamp = (this.#options.timestamps ? new Date().toISOString() + " " : "") +
      (this.#options.prefix ?? "");
    const progress = parseProgress(line);
    if (progress !== undefined && this.#output.isTerminal) {
      const complete = progress.total > 0 && progress.done >= progress.total;
      this.#output.write(`\r\x1b[2K${stamp}[${client.id}] ${renderProgressBar(progress)}`);
      this.#barOpen = !complete;
      if (complete) this.#output.write("\n");
      return;
    }
    this.#closeBar();
    if (progress !== undefined) {
      const percent = progress.total > 0
        ? ` (${Math.floor(Math.min(1, progress.done / progress.total) * 100)}%)`
        : "";
      const count = progress.total > 0 ? `${progress.done}/${progress.total}` : `${progress.done}`;
      const label = progress.label === "" ? "" : ` ${progress.label}`;
      this.#output.write(`${stamp}[${client.id}] progress ${count}${percent}${label}\n`);
      return;
    }
    this.#output.write(`${stamp}[${client.id}] ${line}\n`);
  }

  #status(line: string): void {
    this.#closeBar();
    this.#output.error(line);
  }

  #closeBar(): void {
    if (!this.#barOpen) return;
    this.#barOpen = false;
    this.#output.write("\n");
  }
}

/** Lines of a chunk; a trailing newline does not make an empty last line. */
function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines.map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
}
