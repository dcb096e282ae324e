/**
 * `rsock console` at a real terminal (a pty): line editing, history kept in a file, Ctrl-C at
 * the prompt, Ctrl-D to leave.
 */
import assert from "node:assert/strict";
import { startEvalServer } from "../eval/mod.ts";
import { interopTest, withTimeout } from "./_peers.ts";
import { runInPty } from "./_pty.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const LEFT = "\x1b[D";
const UP = "\x1b[A";

interopTest(
  "rsock console: editing, history across sessions, Ctrl-C at the prompt, Ctrl-D",
  ["python3-websockets"],
  async () => {
    await withTimeout(60_000, async () => {
      await using server = await startEvalServer({ port: 0 });
      const dir = await Deno.makeTempDir({ prefix: "rsock_console_" });
      const history = `${dir}/history`;
      const command = [
        Deno.execPath(),
        "run",
        "--no-prompt",
        `--allow-net=127.0.0.1:${server.port}`,
        `--allow-read=${history}`,
        `--allow-write=${history}`,
        CLI,
        "console",
        "--port",
        String(server.port),
        "--history",
        history,
      ];
      try {
        const first = await runInPty(command, [
          ["expect", ":> "],
          // "1+3", two steps left, insert "0": the line is "10+3".
          ["type", `1+3${LEFT}${LEFT}0\r`],
          ["expect", "\n13\r\n"],
          // ↑ brings "10+3" back.
          ["expect", ":> "],
          ["type", `${UP}\r`],
          ["expect", "\n13\r\n"],
          // Ctrl-C drops the typed "9+9": a fresh prompt, and the session goes on.
          ["expect", ":> "],
          ["type", "9+9\x03"],
          ["expect", "\\^C\r\n"],
          ["expect", ":> "],
          ["type", "2+2\r"],
          ["expect", "\n4\r\n"],
          // Inside an unfinished block, Ctrl-C drops the pending lines too.
          ["expect", ":> "],
          ["type", "{\r"],
          ["expect", ":\\+ "],
          ["type", "\x03"],
          ["expect", ":> "],
          ["type", "5\r"],
          ["expect", "\n5\r\n"],
          ["expect", ":> "],
          ["type", "\x04"],
        ]);
        assert.equal(first.error, null, first.transcript);
        assert.equal(first.status, 0, first.transcript);
        assert.doesNotMatch(first.transcript, /\^\[\[|SyntaxError/);
        const kept = await Deno.readTextFile(history);
        assert.deepEqual(kept.trim().split("\n"), ["10+3", "2+2", "{", "5"]);
        // A new session starts with the old history: ↑↑↑ is "2+2".
        const second = await runInPty(command, [
          ["expect", ":> "],
          ["type", `${UP}${UP}${UP}\r`],
          ["expect", "\n4\r\n"],
          ["expect", ":> "],
          ["type", "\x04"],
        ]);
        assert.equal(second.error, null, second.transcript);
        assert.equal(second.status, 0, second.transcript);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
