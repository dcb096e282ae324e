/**
 * No rsock command stops at a Deno permission prompt. On a terminal Deno asks where a pipe
 * would deny, and a process waiting at that prompt ignores Ctrl-C and SIGTERM: so `deno task
 * serve`, and every command line the help and the serve banner print, are started here on a
 * pseudo-terminal. Each runs, or exits 2 naming the flags to add; none prompts, none hangs.
 */
import { COMMANDS } from "../_cli/_commands.ts";
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { connectEvalServer, evalServer } from "../eval/mod.ts";
import { parseCommandArgs, stringFlag } from "../_cli/_common.ts";
import { LISTENING_ROLES, type SpRole } from "../_cli/_sp_options.ts";
import { freePort, IN_CI, waitFor, withTimeout } from "./_peers.ts";
import { captured, rsock } from "./_process.ts";
import { PtyProcess } from "./_pty.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI = `${ROOT}cli.ts`;
/** What Deno shows when it asks. */
const PROMPT = /Deno requests|Allow\? \[y\/n/;
/** What rsock says instead, with the flags to add. */
const MISSING = /missing permissions; run again with ((?:--allow-\S+ ?)+) \(or -A\)/;
const BANNER_END = /Ctrl-C or SIGTERM stops\./;
/** `deno task serve`'s endpoints: fixed, as the README promises them. */
const SERVE_PORTS = [8888, 7681, 5555];

/** The fixed ports something else holds on this machine now. */
function takenServePorts(): number[] {
  return SERVE_PORTS.filter((port) => {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return false;
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) return true;
      throw error;
    }
  });
}

/**
 * A test on serve's fixed ports: ignored with the reason when another program holds one on a
 * developer's machine, failed under CI, where they must be free.
 */
function fixedPortsTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  const taken = takenServePorts();
  const reason = `127.0.0.1 port ${taken.join(", ")} is in use (deno task serve's fixed ports)`;
  if (taken.length > 0 && !IN_CI) {
    // deno-lint-ignore no-console
    console.warn(`ignored "${name}": ${reason}`);
  }
  Deno.test({
    name,
    ignore: taken.length > 0 && !IN_CI,
    async fn(t) {
      if (taken.length > 0) throw new Error(`${reason}; under CI they must be free`);
      await fn(t);
    },
  });
}

/** What `args` prints with status 0 (`--help` texts), from `main()` itself. */
async function printed(args: string[]): Promise<string> {
  const out = captured();
  assert.equal(await main(args, out), 0, out.err);
  return out.out;
}

/** The top help and every command's help, the command names read from the top one. */
async function helpTexts(): Promise<string[]> {
  const top = await printed(["--help"]);
  const list = top.split("\nCommands:\n")[1] ?? "";
  const names = [...list.matchAll(/^ {2}([a-z]+) /gm)].map((match) => match[1]!);
  assert.ok(names.length >= 16, `found ${names.length} commands in rsock --help`);
  return [top, ...await Promise.all(names.map((name) => printed([name, "--help"])))];
}

/** Splits a command line as a shell would for these examples: quotes kept together. */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** The placeholders of the help's usage lines: a line holding one is a template, not a command. */
const PLACEHOLDER = /^(?:URL|PORT|FILE|PATH|HOST|VAR|TEXT|SRC|MS|N|T|H|M)$/;

/**
 * Every `rsock CMD …` command line in `text`: a piece of a line (the banner puts two on one
 * line, four spaces apart) that starts with it, maybe after a label (`Server:`) or a pipe
 * (`seq 1 100 | rsock push …`). Not titles (`rsock eval — …`), prose or templates.
 */
function rsockLines(text: string): string[][] {
  const found: string[][] = [];
  for (const line of text.split("\n")) {
    if (/^\s*Usage:/.test(line)) continue;
    for (const piece of line.trim().split(/ {3,}/)) {
      const match = /^(?:[A-Za-z ]+: +)?(?:[^"'(|]*\| )?rsock ([a-z]+)(?: (.*))?$/.exec(piece);
      if (match === null || !COMMANDS.some((command) => command.name === match[1])) continue;
      const words = shellWords(match[2] ?? "");
      const end = words.findIndex((word) => word === "|" || word.startsWith("#"));
      const args = end < 0 ? words : words.slice(0, end);
      if (args[0] === "—" || args.some((word) => PLACEHOLDER.test(word))) continue;
      found.push([match[1]!, ...args]);
    }
  }
  return found;
}

/**
 * `line` with its addresses moved out of the way: every port a free one, every ipc:// path
 * in `dir`. What the line does is unchanged.
 */
function relocated(line: string[], dir: string): string[] {
  const ports = new Map<string, string>();
  return line.map((word) =>
    word
      .replace(/\b\d{4,5}\b/g, (port) => {
        if (Number(port) < 1024) return port;
        if (!ports.has(port)) ports.set(port, String(freePort()));
        return ports.get(port)!;
      })
      .replace(/^ipc:\/\/\/(?:[^/]+\/)*([^/]+)$/, `ipc://${dir}/$1`)
  );
}

type Address = { hostname: string; port: number } | { path: string };

function addressOf(url: string): Address {
  const ipc = /^ipc:\/\/(\/.+)$/.exec(url);
  if (ipc !== null) return { path: ipc[1]! };
  const net = /^[a-z+]+:\/\/\[?([^/\]]+?)\]?:(\d+)/.exec(url);
  if (net === null) throw new Error(`no address in ${url}`);
  return { hostname: net[1]!, port: Number(net[2]) };
}

/** Where the command of `line` listens and where it dials, from its own parsed flags. */
function endpointsOf(line: string[]): { listens: Address[]; dials: Address[] } {
  const [name, ...args] = line;
  const command = COMMANDS.find((candidate) => candidate.name === name)!;
  const parsed = parseCommandArgs(command, args);
  const flag = (key: string) => stringFlag(parsed, key);
  const many = (key: string) => [parsed.values[key] ?? []].flat().map(String).map(addressOf);
  const at = (fallbackHost: string, fallbackPort: number): Address =>
    flag("unix") !== undefined
      ? { path: flag("unix")! }
      : { hostname: flag("hostname") ?? fallbackHost, port: Number(flag("port") ?? fallbackPort) };
  const url = parsed.positionals[0];
  switch (name) {
    case "listen":
      return { listens: [at("127.0.0.1", 6000)], dials: [] };
    case "send":
      return { listens: [], dials: [at("localhost", 6000)] };
    case "eval":
    case "console":
      return { listens: [], dials: [at("127.0.0.1", 8888)] };
    case "req":
      return {
        listens: many("listen"),
        dials: [...many("dial"), ...[url ?? []].flat().map(addressOf)],
      };
    case "rep":
      return {
        listens: [...many("listen"), ...[url ?? []].flat().map(addressOf)],
        dials: many("dial"),
      };
    case "ws": {
      const port = flag("listen");
      return port === undefined ? { listens: [], dials: [addressOf(url!)] } : {
        listens: [{ hostname: flag("hostname") ?? "127.0.0.1", port: Number(port) }],
        dials: [],
      };
    }
    case "serve":
      return { listens: [], dials: [] };
    default: {
      // The family: a URL alone goes to the command's usual side, as its help says.
      const alone = parsed.positionals.map(addressOf);
      return LISTENING_ROLES.includes(name as SpRole)
        ? { listens: [...many("listen"), ...alone], dials: many("dial") }
        : { listens: many("listen"), dials: [...many("dial"), ...alone] };
    }
  }
}

function connectTo(address: Address): Promise<Deno.Conn> {
  return "path" in address
    ? Deno.connect({ transport: "unix", path: address.path })
    : Deno.connect({
      hostname: address.hostname === "0.0.0.0" ? "127.0.0.1" : address.hostname,
      port: address.port,
    });
}

/** A listener standing in for the peer a command dials, or undefined if it cannot be had. */
function standIn(address: Address): Deno.Listener | undefined {
  try {
    return "path" in address
      ? Deno.listen({ transport: "unix", path: address.path })
      : Deno.listen({
        hostname: address.hostname === "localhost" ? "127.0.0.1" : address.hostname,
        port: address.port,
      });
  } catch {
    return undefined; // a name that does not resolve here (tls+tcp://host:5570)
  }
}

/**
 * Rejects as soon as `pty` shows a Deno permission prompt: a process waiting there would
 * never end by itself.
 */
function noPrompt(pty: PtyProcess, what: string, signal: AbortSignal): Promise<never> {
  return pty.expect(PROMPT, signal).then(
    () => {
      throw new assert.AssertionError({
        message: `${what} stopped at a Deno permission prompt:\n${pty.transcript}`,
      });
    },
    () => new Promise<never>(() => {}), // it ended, or the test gave up: no prompt shown
  );
}

/**
 * Runs `line` on a pty with no permission flags: it must exit 2 naming them, without a prompt.
 * Returns the flags it named.
 */
async function namedFlags(line: string[], signal: AbortSignal): Promise<string[]> {
  const shown = `rsock ${line.join(" ")}`;
  await using bare = new PtyProcess([Deno.execPath(), "run", CLI, ...line], { cwd: ROOT });
  const status = await Promise.race([bare.status(signal), noPrompt(bare, shown, signal)]);
  assert.equal(status, 2, `${shown} without permissions:\n${bare.transcript}`);
  const missing = MISSING.exec(bare.transcript);
  assert.ok(missing, `${shown} exits 2 without naming the flags:\n${bare.transcript}`);
  return missing[1]!.trim().split(" ");
}

/**
 * Runs `line` on a pty with no permission flags (it must exit 2 naming them), then with exactly
 * the flags it named: it must then exit on its own or be seen at work (serving its banner,
 * accepting a connection, dialing its peer) and end on Ctrl-C — never prompting either time.
 */
async function runsOrNamesFlags(line: string[], signal: AbortSignal): Promise<void> {
  const shown = `rsock ${line.join(" ")}`;
  const flags = await namedFlags(line, signal);
  const { listens, dials } = endpointsOf(line);
  const peers = dials.map(standIn).filter((listener) => listener !== undefined);
  try {
    await using granted = new PtyProcess([Deno.execPath(), "run", ...flags, CLI, ...line], {
      cwd: ROOT,
    });
    let exited = false;
    const status = granted.status(signal).finally(() => exited = true);
    // Not seen at work within its bound fails the test, unless the command ended on its own:
    // then its status below judges it.
    const atWork = line[0] === "serve"
      ? granted.expect(BANNER_END, signal).then(() => {}, () => status.then(() => {}))
      : listens.length > 0
      ? waitFor(`${shown} to listen`, async () => {
        if (exited) return true;
        try {
          (await connectTo(listens[0]!)).close();
          return true;
        } catch {
          return false;
        }
      }, 30_000)
      : peers.length > 0
      ? peers[0]!.accept().then((conn) => conn.close())
      : new Promise<void>(() => {});
    const prompted = noPrompt(granted, `${shown} with ${flags.join(" ")}`, signal);
    await Promise.race([status, atWork, prompted]);
    if (!exited) await granted.type("\x03");
    const code = await Promise.race([status, prompted]);
    assert.doesNotMatch(granted.transcript, PROMPT, granted.transcript);
    assert.doesNotMatch(granted.transcript, MISSING, `${shown} ${flags}:\n${granted.transcript}`);
    assert.notEqual(code, 2, `${shown} ${flags}:\n${granted.transcript}`);
  } finally {
    for (const peer of peers) peer.close();
  }
}

fixedPortsTest(
  "deno task serve on a terminal: its banner with no prompt, a working session, Ctrl-C ends it (130)",
  async () => {
    await withTimeout(120_000, async (signal) => {
      await using serve = new PtyProcess([Deno.execPath(), "task", "serve"], { cwd: ROOT });
      await serve.expect(new RegExp(`${BANNER_END.source}|${PROMPT.source}`), signal);
      assert.doesNotMatch(serve.transcript, PROMPT, serve.transcript);
      assert.match(serve.transcript, /rsock serve: one session \(worker\)/);
      // The session's worker, whose start asked for env access, answers.
      await using client = await connectEvalServer({ port: SERVE_PORTS[0]! });
      assert.equal(await evalServer(client, "6 * 7"), 42);
      client.close();
      await serve.type("\x03");
      assert.equal(await serve.status(signal), 130, serve.transcript);
      assert.doesNotMatch(serve.transcript, PROMPT, serve.transcript);
    });
  },
);

fixedPortsTest(
  "every deno run line the help prints serves on a terminal, with or without --no-prompt, and SIGTERM ends it (143)",
  async (t) => {
    const lines = (await helpTexts()).flatMap((text) =>
      [...text.matchAll(/\bdeno run (?:-\S+ )*\S+\.ts\b.*/g)].map((match) => match[0])
    );
    assert.ok(lines.length >= 2, `found ${lines.length} deno run lines in the help`);
    // As printed, and as typed by someone who leaves out --no-prompt: the up-front checks,
    // not that flag, keep rsock from prompting.
    const typed = lines.map((line) => line.replace(" --no-prompt", ""));
    assert.ok(typed.every((line, i) => line !== lines[i]), "every deno run line has --no-prompt");
    for (const line of new Set([...lines, ...typed])) {
      await t.step(line, async () => {
        await withTimeout(120_000, async (signal) => {
          const [, ...args] = shellWords(line);
          await using serve = new PtyProcess([Deno.execPath(), ...args], { cwd: ROOT });
          await serve.expect(
            new RegExp(`${BANNER_END.source}|${PROMPT.source}|${MISSING.source}`),
            signal,
          );
          assert.doesNotMatch(serve.transcript, PROMPT, serve.transcript);
          assert.doesNotMatch(serve.transcript, MISSING, serve.transcript);
          await serve.kill("SIGTERM");
          assert.equal(await serve.status(signal), 143, serve.transcript);
        });
      });
    }
  },
);

Deno.test("every rsock command line the help and the serve banner print: it runs or exits 2 naming the flags, never a prompt", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "rsock_prompt_" });
  try {
    const texts = await helpTexts();
    // The banner with every line it can show: each door, the pub monitor and the socket relay.
    const [evalPort, wsPort, repPort, socketPort] = [
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ];
    const ipc = `${dir}/pub.ipc`;
    {
      await using serve = rsock([
        `--allow-net=${
          [evalPort, wsPort, repPort, socketPort].map((p) => `127.0.0.1:${p}`)
        },unix:${ipc}`,
        "--allow-sys",
        `--allow-read=${ROOT}eval/,${ipc}`,
        `--allow-write=${ipc}`,
      ], [
        "serve",
        ...["--eval", `${evalPort}`, "--ws", `${wsPort}`, "--rep", `tcp://127.0.0.1:${repPort}`],
        ...["--socket", `${socketPort}`, "--pub", `ipc://${ipc}`],
      ]);
      await serve.waitForOutput(BANNER_END);
      texts.push(serve.stderr);
      serve.child.kill("SIGTERM");
      assert.equal((await serve.finished()).code, 143, serve.stderr);
    }
    const lines = new Map(
      texts.flatMap(rsockLines).map((line) => [line.join("\u0000"), line] as const),
    );
    const names = new Set([...lines.values()].map((line) => line[0]));
    // Every family of command shows up: the banner's clients and the help's examples.
    for (
      const name of ["eval", "console", "send", "sub", "req", "rep", "ws", "serve", "pub", "bus"]
    ) {
      assert.ok(names.has(name), `no rsock ${name} line found in the help and the banner`);
    }
    // Modes and transports no printed line shows.
    await Deno.writeTextFile(`${dir}/code.js`, "1 + 1\n");
    const variants = [
      ["serve", "--in-process", "--eval", "8888"],
      ["serve", "--eval", "8888", "--rep", `ipc://${dir}/rep.ipc`, "--pub", `ipc://${dir}/out.ipc`],
      ["listen", "--unix", `${dir}/listen.sock`],
      ["send", "--unix", `${dir}/send.sock`, "hello"],
      ["req", `ipc://${dir}/req.ipc`, "--data", "1"],
      ["rep", `ipc://${dir}/rep2.ipc`, "--execute", "(x) => x"],
      ["eval", "--file", `${dir}/code.js`, "--port", "8888"],
      ["ws", "wss://127.0.0.1:7681/"],
      ["sub", "--dial", "tls+tcp://127.0.0.1:5600", "--tls-ca", `${dir}/code.js`],
    ];
    for (const line of [...lines.values(), ...variants]) {
      await t.step(`rsock ${line.join(" ")}`, async () => {
        await withTimeout(120_000, (signal) => runsOrNamesFlags(relocated(line, dir), signal));
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the banner's rsock eval and rsock console lines, on a terminal with the flags they name, reach the session", async () => {
  await withTimeout(120_000, async (signal) => {
    const port = freePort();
    await using serve = rsock(
      [`--allow-net=127.0.0.1:${port}`, "--allow-sys", `--allow-read=${ROOT}eval/`],
      ["serve", "--eval", String(port)],
    );
    await serve.waitForOutput(BANNER_END);
    const lines = rsockLines(serve.stderr);
    const evalLine = lines.find((line) => line[0] === "eval");
    const consoleLine = lines.find((line) => line[0] === "console");
    assert.ok(evalLine && consoleLine, serve.stderr);
    await using client = await connectEvalServer({ port });
    // The banner's eval line evaluates `x`.
    await evalServer(client, "x", 41);
    client.close();

    const evalFlags = await namedFlags(evalLine, signal);
    {
      await using evaluation = new PtyProcess([
        Deno.execPath(),
        "run",
        ...evalFlags,
        CLI,
        ...evalLine,
      ]);
      const status = await Promise.race([
        evaluation.status(signal),
        noPrompt(evaluation, evalLine.join(" "), signal),
      ]);
      assert.equal(status, 0, evaluation.transcript);
      assert.equal(evaluation.transcript, "41\r\n");
    }

    // The console's line editor runs on the terminal, as its user has it.
    const consoleFlags = await namedFlags(consoleLine, signal);
    await using terminal = new PtyProcess([
      Deno.execPath(),
      "run",
      ...consoleFlags,
      CLI,
      ...consoleLine,
    ]);
    const prompted = noPrompt(terminal, consoleLine.join(" "), signal);
    await Promise.race([terminal.expect(/:> /, signal), prompted]);
    await terminal.type("x + 1\r");
    await Promise.race([terminal.expect(/\r\n42\r\n/, signal), prompted]);
    await terminal.type("\x04");
    assert.equal(await Promise.race([terminal.status(signal), prompted]), 0, terminal.transcript);
    serve.child.kill("SIGTERM");
    assert.equal((await serve.finished()).code, 143, serve.stderr);
  });
});
