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
  unixSocketNeeds,
  untilStopped,
} from "./_common.ts";

const NOTES =
  `Each message is printed as "[CLIENT] text". Lines of the form "#progress DONE/TOTAL LABEL"
are drawn as a live progress bar on a terminal and printed as plain lines otherwise.
Connections and errors are reported on standard error.

Permissions: --allow-net=HOST:PORT (or --allow-read=PATH --allow-write=PATH
--allow-net=unix:PATH with --unix).

R client:  s <- make.socket("localhost", 6000); write.socket(s, "hello\\n"); close.socket(s)`;

/** The `listen` subcommand. */
export const listenCommand: Command = {
  name: "listen",
  summary: "print messages that clients send to a TCP port or Unix socket",
  synopsis: "",
  flags: [
    {
      name: "port",
      short: "p",
      value: "N",
      help: "TCP port to listen on (default 6000; 0 picks a free one)",
    },
    { name: "hostname", value: "H", help: "address to bind (default 127.0.0.1, loopback only)" },
    { name: "unix", value: "PATH", help: "listen on a Unix socket instead of TCP" },
    {
      name: "lines",
      help: "newline framing: one message per line (default: each read as it comes)",
    },
    {
      name: "once",
      help: "serve one client and exit when it closes (like R's make.socket server)",
    },
    { name: "timestamps", help: "prefix each message with its arrival time (ISO 8601)" },
    { name: "raw", help: "print the bytes exactly as received, without client tags" },
    { name: "max-bytes", value: "N", help: "largest line accepted with --lines (default 1048576)" },
  ],
  notes: NOTES,
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
      path === undefined ? [{ name: "net", host: netHost(hostname, port) }] : unixSocketNeeds(path),
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

/**
 * Prints server events. On a terminal, progress reports are live bars kept below the log, one
 * per label across connections, so `rsock send --progress i/N` run once per step (a connection
 * each) moves one bar; a client that only reports progress shows as its bar, without
 * connect/disconnect lines. A finished bar stays in the log.
 */
export class Printer {
  readonly #output: Output;
  readonly #options: PrinterOptions;
  /** Live bars by label, in the order they appeared. */
  readonly #bars = new Map<string, string>();
  /** How many bar lines are on the screen below the log. */
  #drawn = 0;
  /** Status lines held back until the client sends more than progress (terminal only). */
  readonly #held = new Map<number, string>();

  constructor(output: Output, options: PrinterOptions) {
    this.#output = output;
    this.#options = options;
  }

  print(event: SocketEvent): void {
    const { client } = event;
    switch (event.type) {
      case "connect": {
        const line =
          `rsock: ${this.#tag}client ${client.id} connected from ${client.remoteAddress}`;
        if (this.#output.isTerminal && !this.#options.raw) this.#held.set(client.id, line);
        else this.#status(line);
        return;
      }
      case "disconnect":
        // A client that only drew its bar leaves no trace but the bar.
        if (this.#held.delete(client.id)) return;
        this.#status(`rsock: ${this.#tag}client ${client.id} disconnected`);
        return;
      case "error":
        this.#release(client.id);
        this.#status(`rsock: ${event.error.message}`);
        return;
      case "message":
        if (this.#options.raw) {
          this.#above(() => this.#output.write(event.message.text));
          return;
        }
        for (const line of splitLines(event.message.text)) this.#line(client, line);
    }
  }

  /** Leaves the live bars on the screen as they are, ending their block. */
  finish(): void {
    this.#bars.clear();
    this.#drawn = 0;
    this.#held.clear();
  }

  get #tag(): string {
    return this.#options.prefix ?? "";
  }

  #stamp(): string {
    return (this.#options.timestamps ? new Date().toISOString() + " " : "") +
      (this.#options.prefix ?? "");
  }

  #line(client: SocketClient, line: string): void {
    const progress = parseProgress(line);
    if (progress !== undefined && this.#output.isTerminal) {
      const bar = `${this.#stamp()}${renderProgressBar(progress)}`;
      const complete = progress.total > 0 && progress.done >= progress.total;
      if (complete) {
        // Finished: it leaves the live block and stays in the log.
        this.#bars.delete(progress.label);
        this.#above(() => this.#output.write(bar + "\n"));
      } else {
        this.#bars.set(progress.label, bar);
        this.#above(() => {});
      }
      return;
    }
    this.#release(client.id);
    if (progress !== undefined) {
      const percent = progress.total > 0
        ? ` (${Math.floor(Math.min(1, progress.done / progress.total) * 100)}%)`
        : "";
      const count = progress.total > 0 ? `${progress.done}/${progress.total}` : `${progress.done}`;
      const label = progress.label === "" ? "" : ` ${progress.label}`;
      this.#output.write(`${this.#stamp()}[${client.id}] progress ${count}${percent}${label}\n`);
      return;
    }
    this.#above(() => this.#output.write(`${this.#stamp()}[${client.id}] ${line}\n`));
  }

  /** The client sent more than progress: its held connect line is printed after all. */
  #release(id: number): void {
    const held = this.#held.get(id);
    if (held === undefined) return;
    this.#held.delete(id);
    this.#status(held);
  }

  #status(line: string): void {
    this.#above(() => this.#output.error(line));
  }

  /** Writes above the live bars: erase them, write, draw them again. */
  #above(write: () => void): void {
    if (this.#drawn > 0) this.#output.write(`\x1b[${this.#drawn}A\x1b[0J`);
    write();
    const bars = [...this.#bars.values()];
    if (bars.length > 0) this.#output.write(bars.map((bar) => bar + "\n").join(""));
    this.#drawn = bars.length;
  }
}

/** Lines of a chunk; a trailing newline does not make an empty last line. */
function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines.map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
}
