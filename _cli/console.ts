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

/**
 * Interrupts what the session runs, whoever sent it, on a connection of its own (so it never
 * waits behind this console's lines) and says what it was; true when one was stopped. One
 * request at a time, however often Ctrl-C is pressed.
 */
function sessionInterrupter(args: ParsedArgs, output: Output): () => Promise<boolean> {
  let interrupting: Promise<boolean> | undefined;
  const interrupt = async (): Promise<boolean> => {
    try {
      const result = await interruptFromArgs(args);
      output.error(`rsock console: ${describeInterrupt(result)}`);
      return result.interrupted;
    } catch (error) {
      output.error(`rsock console: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    } finally {
      interrupting = undefined;
    }
  };
  return () => interrupting ??= interrupt();
}

/**
 * Connects and turns console mode on; undefined when the user left first. The setup lines may
 * wait behind another door's runaway: the console says so at once, and Ctrl-C (a signal here:
 * readline does not run yet) interrupts it, or leaves when nothing was running.
 */
async function connectConsole(
  args: ParsedArgs,
  output: Output,
  onPush: (text: string) => void,
): Promise<EvalConnection | undefined> {
  const interrupt = sessionInterrupter(args, output);
  const leave = new AbortController();
  const onSignal = () => void interrupt().then((stopped) => stopped || leave.abort());
  Deno.addSignalListener("SIGINT", onSignal);
  let conn: EvalConnection | undefined;
  try {
    conn = await connectFromArgs(args, {
      onPush,
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
    return conn;
  } catch (error) {
    await conn?.[Symbol.asyncDispose]();
    if (leave.signal.aborted) return undefined;
    throw error;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
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
    const ui: { rl?: Interface } = {};
    let closed = false;
    let busy = false;
    // Pushes (sendSocketClients) show as they come: on a terminal above the line being typed,
    // else on their own lines (then the prompt again when idle).
    await using conn = await connectConsole(args, output, (text) => {
      if (ui.rl !== undefined && terminal && !closed) {
        output.write(`\r\x1b[2K${text}\n`);
        ui.rl.prompt(true);
      } else {
        output.write(`\n${text}\n${busy ? "" : conn?.prompt ?? ""}`);
      }
    });
    if (conn === undefined) return 130; // Ctrl-C before the prompt, with nothing to stop
    // While a line waits, Ctrl-C stops what the session runs, whoever sent it (R's svSocket
    // has no such request: there <<<esc>>> at least drops the pending lines).
    const interruptSession = sessionInterrupter(args, output);
    const interrupt = () =>
      void (conn.dialect === "r" ? conn.interrupt().catch(() => {}) : interruptSession());
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
      if (busy) return interrupt();
      output.write("^C\n");
      rl.write("", { ctrl: true, name: "e" });
      rl.write("", { ctrl: true, name: "u" });
      (async () => {
        // Inside an unfinished block, <<<esc>>> makes the server drop its pending lines.
        if (conn.prompt.startsWith(":+")) await conn.interrupt().catch(() => {});
        showPrompt();
      })();
    });
    // Not on a terminal (piped input), Ctrl-C still reaches us as a signal.
    const onSignal = () => busy ? interrupt() : void conn.interrupt().catch(() => {});
    if (!terminal) Deno.addSignalListener("SIGINT", onSignal);
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
      if (!terminal) Deno.removeSignalListener("SIGINT", onSignal);
      rl.close();
      await saved;
    }
    return 0;
  },
};
