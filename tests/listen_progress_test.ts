/**
 * `rsock send --progress i/N`, run once per step (a connection each), moves one live bar per
 * label in `rsock listen`/`serve`'s printer on a terminal.
 */
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { Printer } from "../_cli/listen.ts";
import { listen, renderProgressBar, type SocketEvent } from "../socket/mod.ts";
import { waitFor, withTimeout } from "./_peers.ts";
import { captured } from "./_process.ts";

/** A terminal just capable enough for the printer: text, newline, cursor up, clear below. */
// The printer's escapes, as a terminal reads them.
const TOKEN = new RegExp("(\u001b\\[\\d*[A-Za-z]|\\n)");
const ESCAPE = new RegExp("^\u001b\\[(\\d*)([A-Za-z])$");

class Screen {
  lines: string[] = [""];
  row = 0;
  feed(text: string): void {
    for (const part of text.split(TOKEN)) {
      if (part === "") continue;
      if (part === "\n") {
        this.row++;
        if (this.lines.length <= this.row) this.lines.push("");
        continue;
      }
      const escape = ESCAPE.exec(part);
      if (escape === null) {
        this.lines[this.row] += part;
      } else if (escape[2] === "A") {
        this.row = Math.max(0, this.row - Number(escape[1] || 1));
      } else if (escape[2] === "J") {
        this.lines.length = this.row + 1;
        this.lines[this.row] = "";
      } else {
        throw new Error(`unexpected escape ${JSON.stringify(part)}`);
      }
    }
  }
  get text(): string[] {
    return this.lines.filter((line, i) => i < this.lines.length - 1 || line !== "");
  }
}

Deno.test("one live bar per label across connections; progress-only clients leave no log", async () => {
  await withTimeout(30_000, async () => {
    const screen = new Screen();
    const printer = new Printer({
      isTerminal: true,
      write: (text) => screen.feed(text),
      error: (line) => screen.feed(line + "\n"),
    }, { timestamps: false, raw: false });
    await using server = listen({ port: 0, framing: "line" });
    let disconnects = 0;
    const pump = (async () => {
      for await (const event of server.events() as AsyncIterable<SocketEvent>) {
        printer.print(event);
        if (event.type === "disconnect") disconnects++;
      }
    })();
    const send = async (...args: string[]) => {
      const before = disconnects;
      const output = captured();
      const port = String(server.port);
      assert.equal(
        await main(["send", "--hostname", "127.0.0.1", "--port", port, ...args], output),
        0,
      );
      await waitFor("the sender's disconnect", () => disconnects > before);
    };
    await send("--progress", "1/4", "fitting");
    await send("--progress", "1/2", "loading");
    await send("hello");
    await send("--progress", "2/4", "fitting");
    await send("--progress", "3/4", "fitting");
    assert.deepEqual(screen.text.slice(1, 3), ["[3] hello", "rsock: client 3 disconnected"]);
    assert.match(screen.text[0]!, /^rsock: client 3 connected from 127\.0\.0\.1:\d+$/);
    assert.deepEqual(screen.text.slice(3), [
      renderProgressBar({ done: 3, total: 4, label: "fitting" }),
      renderProgressBar({ done: 1, total: 2, label: "loading" }),
    ]);
    // A finished bar leaves the live block and stays in the log.
    await send("--progress", "4/4", "fitting");
    assert.deepEqual(screen.text.slice(3), [
      renderProgressBar({ done: 4, total: 4, label: "fitting" }),
      renderProgressBar({ done: 1, total: 2, label: "loading" }),
    ]);
    printer.finish();
    await server.close();
    await pump;
  });
});
