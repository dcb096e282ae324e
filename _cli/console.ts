/**
 * `rsock console`: an interactive terminal client in svSocket's console mode (`<<<e>>>`): a
 * second console for a running program, with prompts and multi-line input.
 *
 * @module
 */

import { createInterface, type Interface } from "node:readline";
import process from "node:process";
import type { EvalConnection } from "../eval/mod.ts";
import {
  connectFromArgs,
  CONNECTION_FLAGS,
  describeInterrupt,
  describeRunning,
  interruptFromArgs,
  runningFromArgs,
} from "./eval.ts";
import { type Command, type Output, type ParsedArgs, stringFlag } from "./_common.ts";

const NOTES =
  `Type JavaScript or TypeScript at the ":> " prompt; an unfinished block continues at ":+ ".
On a terminal the line can be edited (arrows, Home/End, Ctrl-A/E/K/U/W) and ↑/↓ walk the history,
which is kept in FILE across sessions when rsock may read and write it.
Ctrl-C interrupts the evaluation the session runs (servers in worker mode), whoever sent it: when
the session is busy as the console starts (it says since when, and for which door), or while a
line waits for its answer. At the prompt it drops the line being typed (and pending lines of an
unfinished block) and gives a fresh prompt.
Ctrl-D (end of input) leaves. Text the server pushes (sendSocketClients) shows as it comes.

Permissions: --allow-net=HOST:PORT (and --allow-env=VAR with --token-env); the history needs
--allow-read=FILE --allow-write=FILE (and --allow-env=HOME for the default FILE).`;

/** How long a line waits for its answer before the console says what the session runs. */
const BUSY_NOTICE_MS = 1000;

/** How many history entries are kept, like Deno's REPL. */
const HISTORY_SIZE = 1000;

/** The history file, if rsock may use it: `--history FILE`, else `~/.rsock_history`. */
async function historyFile(args: ParsedArgs): Promise<string | undefined> {
  let path = stringFlag(args, "history");
  if (path === undefined) {
    const home = await Deno.permissions.query({ name: "env", variable: "HOME" });
    if (home.state !== "granted") return undefined;
    const dir = Deno.env.get("HOME");
    if (dir === undefined || dir === "") return undefined;
    path = `${dir}/.rsock_history`;
  }
  for (const name of ["read", "write"] as const) {
    const status = await Deno.permissions.query({ name, path });
    if (status.state !== "granted") return undefined;
  }
  return path;
}

async function loadHistory(path: string | undefined): Promise<string[]> {
  if (path === undefined) return [];
  try {
    const lines = (await Deno.readTextFile(path)).split("\n").filter((line) => line !== "");
    // readline wants the newest entry first.
    return lines.slice(-HISTORY_SIZE).reverse();
  } catch {
    return []; // no history yet
  }
}

/** The `console` subcommand. */
export const consoleCommand: Command = {
  name: "console",
  summary: "interactive console on a running eval server (svSocket console mode)",
  synopsis: "",
  flags: [
    ...CONNECTION_FLAGS,
    {
      name: "history",
      value: "FILE",
      help: "keep the input history in FILE (default ~/.rsock_history)",
    },
  ],
  notes: NOTES,
  async run(args: ParsedArgs, output: Output): Promise<number> {
    const terminal = Deno.stdin.isTerminal();
    // Made after connecting (so no typed line is lost), used by the push handler before that.
    const ui: { rl?: Interface; conn?: EvalConnection } = {};
    let closed = false;
    let busy = false;
    let interrupting: Promise<boolean> | undefined;
    /** Interrupts what the session runs, on a connection of its own: true if it stopped one. */
    const interruptSession = (): Promise<boolean> =>
      interrupting ??= (async () => {
        try {
          if (ui.conn?.dialect === "r") {
            // R's svSocket has no interrupt: <<<esc>>> at least drops the pending lines.
            await ui.conn.interrupt();
            return true;
          }
          const result = await interruptFromArgs(args);
          output.error(`rsock console: ${describeInterrupt(result)}`);
          return result.interrupted;
        } catch (error) {
          output.error(`rsock console: ${error instanceof Error ? error.message : String(error)}`);
          return false;
        } finally {
          interrupting = undefined;
        }
      })();
    // Until the prompt shows, the setup lines may wait behind another door's runaway: Ctrl-C
    // (a signal then, as with piped input; at a terminal's prompt it is a key, see below)
    // interrupts it, or leaves when nothing was running.
    const leave = new AbortController();
    const onSignal = () => {
      if (ui.conn !== undefined && !busy) return void ui.conn.interrupt().catch(() => {});
      void interruptSession().then((stopped) => {
        if (ui.conn === undefined && !stopped) leave.abort();
      });
    };
    Deno.addSignalListener("SIGINT", onSignal);
    try {
      return await session();
    } catch (error) {
      if (leave.signal.aborted) return 130; // Ctrl-C before the prompt, with nothing to stop
      throw error;
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
    }

    async function session(): Promise<number> {
      // Pushes (sendSocketClients) show as they come: on a terminal above the line being typed,
      // else on their own lines (then the prompt again when idle).
      await using conn = await connectFromArgs(args, {
        onPush: (text) => {
          if (ui.rl !== undefined && terminal && !closed) {
            output.write(`\r\x1b[2K${text}\n`);
            ui.rl.prompt(true);
          } else {
            output.write(`\n${text}\n${busy ? "" : conn.prompt}`);
          }
        },
        onBusy: (running) =>
          output.error(
            `rsock console: the session is busy with ${describeRunning(running)}\n` +
              "Ctrl-C interrupts it (whoever sent it), or wait for it to end.",
          ),
        signal: leave.signal,
      });
      // Console mode, but without the echo: the terminal already shows what was typed.
      // Through the server's own settings function, so R's svSocket stops echoing too.
      await conn.consoleMode({ echo: false });
      ui.conn = conn;
      // History is what was typed at a terminal, not piped input.
      const path = terminal ? await historyFile(args) : undefined;
      const history = await loadHistory(path);
      const rl = ui.rl = createInterface({
        input: process.stdin,
        output: process.stdout,
        terminal,
        history,
        historySize: HISTORY_SIZE,
        removeHistoryDuplicates: true,
        prompt: conn.prompt,
      });
      rl.on("close", () => closed = true);
      const showPrompt = () => {
        if (!terminal) return output.write(conn.prompt);
        if (closed) return;
        rl.setPrompt(conn.prompt);
        rl.prompt();
      };
      const lines = rl[Symbol.asyncIterator]();
      // Ctrl-C: interrupt a running evaluation; at the prompt, drop the line (and the pending
      // lines of an unfinished block) and start afresh, like R's console and Deno's REPL.
      rl.on("SIGINT", () => {
        if (busy) return void interruptSession();
        output.write("^C\n");
        rl.write("", { ctrl: true, name: "e" });
        rl.write("", { ctrl: true, name: "u" });
        (async () => {
          // Inside an unfinished block, <<<esc>>> makes the server drop its pending lines.
          if (conn.prompt.startsWith(":+")) await conn.interrupt().catch(() => {});
          showPrompt();
        })();
      });
      let sent = 0;
      let saved = Promise.resolve();
      let lastSaved = history[0];
      try {
        showPrompt();
        while (true) {
          const next = await lines.next();
          if (next.done) break;
          const line: string = next.value;
          if (path !== undefined && line.trim() !== "" && line !== lastSaved) {
            lastSaved = line;
            saved = saved.then(() => Deno.writeTextFile(path, line + "\n", { append: true }))
              .catch(() => {});
          }
          busy = true;
          const waiting = ++sent;
          // A line still unanswered after a moment: say what holds the session (maybe another
          // door's runaway), since Ctrl-C stops it.
          const notice = conn.dialect === "r" ? undefined : setTimeout(() => {
            runningFromArgs(args).then((running) => {
              if (running === undefined || !busy || sent !== waiting) return;
              output.error(
                `rsock console: waiting: the session runs ${describeRunning(running)}\n` +
                  "Ctrl-C interrupts it (whoever sent it).",
              );
            }, () => {});
          }, BUSY_NOTICE_MS);
          let text: string;
          try {
            text = await conn.send(line);
          } finally {
            busy = false;
            clearTimeout(notice);
          }
          if (text !== "") output.write(text + "\n");
          showPrompt();
        }
        output.write("\n");
      } finally {
        rl.close();
        await saved;
      }
      return 0;
    }
  },
};
