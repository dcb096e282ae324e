import { COMMANDS } from "../_cli/_commands.ts";
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { main } from "../cli.ts";
import { commandHelp, parseCommandArgs, parseDuration } from "../_cli/_common.ts";
import { repCommand, reqCommand } from "../_cli/req.ts";
import { serveCommand } from "../_cli/serve.ts";
import { nngCommands } from "../_cli/nng.ts";
import { freePort, withTimeout } from "./_peers.ts";
import { serve, socket } from "../reqrep/mod.ts";
import { serialize, simplify, unserialize } from "../serial/mod.ts";
import { captured, rsock, WORKER_READ } from "./_process.ts";

Deno.test("--version and --help", async () => {
  const output = captured();
  assert.equal(await main(["--version"], output), 0);
  assert.equal(output.out, `rsock ${denoJson.version}\n`);
  const help = captured();
  assert.equal(await main(["--help"], help), 0);
  assert.match(help.out, /listen .*\n.*send /s);
  const listenHelp = captured();
  assert.equal(await main(["listen", "--help"], listenHelp), 0);
  assert.match(listenHelp.out, /--once/);
});

Deno.test("bad command lines exit 2 with a one-line reason", async (t) => {
  const cases: [string[], RegExp][] = [
    [["listen", "--port", "70000"], /--port must be a whole number from 0 to 65535, got "70000"/],
    [["listen", "--port", "abc"], /--port must be a whole number from 0 to 65535, got "abc"/],
    [["send", "--port", "-1"], /--port/],
    [["listen", "--bogus"], /unknown option --bogus \(see rsock listen --help\)/],
    [["listen", "--timestamp"], /unknown option --timestamp; did you mean --timestamps\?/],
    [["rep", "--concurrency", "2"], /unknown option --concurrency/],
    [["lisen"], /unknown command "lisen"; did you mean "listen"\?/],
    [["listen", "stray"], /positional argument/i],
    [["listen", "--max-bytes", "0"], /--max-bytes must be a whole number of at least 1/],
    [["send", "--progress", "half"], /--progress must look like DONE\/TOTAL/],
    [["frobnicate"], /unknown command "frobnicate"; expected one of listen, send/],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" "), async () => {
      const output = captured();
      assert.equal(await main(args, output), 2);
      assert.match(output.err, pattern);
      assert.equal(output.err.trim().split("\n").length, 1, "one line, no stack trace");
    });
  }
});

Deno.test("permission gating: without --allow-net the command names the exact flag", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    {
      await using child = rsock([], ["listen", "--port", String(port)]);
      const status = await child.finished();
      assert.equal(status.code, 2);
      assert.match(child.stderr, new RegExp(`--allow-net=127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(child.stderr, /^\s+at /m, "no stack trace");
    }
    {
      // Access to another port is not enough.
      await using child = rsock([`--allow-net=127.0.0.1:${port + 1}`], [
        "send",
        "--port",
        String(port),
        "x",
      ]);
      assert.equal((await child.finished()).code, 2);
      assert.match(child.stderr, new RegExp(`--allow-net=localhost:${port}`));
    }
    {
      await using child = rsock([], ["send", "--unix", "/tmp/rsock-nowhere.sock", "x"]);
      assert.equal((await child.finished()).code, 2);
      assert.match(
        child.stderr,
        /--allow-read=\/tmp\/rsock-nowhere\.sock --allow-write=\/tmp\/rsock-nowhere\.sock --allow-net=unix:\/tmp\/rsock-nowhere\.sock/,
      );
    }
  });
});

Deno.test("rsock listen/send --unix run with exactly the permissions their help names", async () => {
  await withTimeout(30_000, async () => {
    const path = `/tmp/rsock-cli-unix-${Deno.pid}.sock`;
    // Deno 2.9 gates a Unix socket as net too: read + write alone are refused by Deno.listen.
    const grants = [`--allow-read=${path}`, `--allow-write=${path}`, `--allow-net=unix:${path}`];
    await using listener = rsock(grants, ["listen", "--unix", path, "--once", "--lines"]);
    await listener.waitForOutput(/listening on/);
    await using sender = rsock(grants, ["send", "--unix", path, "over a unix socket"]);
    assert.equal((await sender.finished()).code, 0, sender.stderr);
    assert.equal((await listener.finished()).code, 0, listener.stderr);
    assert.match(listener.stdout, /over a unix socket/);
  });
});

Deno.test("rsock listen --once prints what rsock send sends, then exits", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using listener = rsock([`--allow-net=127.0.0.1:${port}`], [
      "listen",
      "--port",
      String(port),
      "--once",
      "--lines",
      "--timestamps",
    ]);
    await listener.waitForOutput(/listening on 127\.0\.0\.1:\d+/);
    {
      await using sender = rsock([`--allow-net=127.0.0.1:${port}`], [
        "send",
        "--hostname",
        "127.0.0.1",
        "--port",
        String(port),
        "first message",
        "#progress 4/8 halfway",
        "second é",
      ]);
      assert.equal((await sender.finished()).code, 0, sender.stderr);
    }
    const status = await listener.finished();
    assert.equal(status.code, 0, listener.stderr);
    const lines = listener.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3, listener.stdout);
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[1\] /;
    assert.match(lines[0]!, new RegExp(stamp.source + "first message$"));
    assert.match(lines[1]!, new RegExp(stamp.source + "progress 4/8 \\(50%\\) halfway$"));
    assert.match(lines[2]!, new RegExp(stamp.source + "second é$"));
    assert.match(listener.stderr, /client 1 connected from 127\.0\.0\.1:\d+/);
    assert.match(listener.stderr, /client 1 disconnected/);
  });
});

Deno.test("rsock send relays standard input line by line; a refused connect exits 1", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    await using listener = rsock([`--allow-net=127.0.0.1:${port}`], [
      "listen",
      "--port",
      String(port),
      "--once",
      "--raw",
    ]);
    await listener.waitForOutput(/listening on/);
    {
      await using sender = rsock([`--allow-net=127.0.0.1:${port}`], [
        "send",
        "--hostname",
        "127.0.0.1",
        "--port",
        String(port),
      ], { stdin: "piped" });
      const writer = sender.child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("from stdin 1\nfrom stdin 2\nno newline"));
      await writer.close();
      assert.equal((await sender.finished()).code, 0, sender.stderr);
    }
    assert.equal((await listener.finished()).code, 0);
    assert.equal(listener.stdout, "from stdin 1\nfrom stdin 2\nno newline\n");
    {
      await using refused = rsock([`--allow-net=127.0.0.1:${port}`], [
        "send",
        "--hostname",
        "127.0.0.1",
        "--port",
        String(port),
        "x",
      ]);
      assert.equal((await refused.finished()).code, 1);
      assert.match(
        refused.stderr,
        new RegExp(`Cannot connect to "127\\.0\\.0\\.1:${port}": connection refused`),
      );
    }
  });
});

Deno.test("a server stopped by Ctrl-C exits 130, by SIGTERM 143", async (t) => {
  await withTimeout(30_000, async () => {
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      await t.step(signal, async () => {
        await using listener = rsock(["--allow-net=127.0.0.1"], ["listen", "--port", "0"]);
        await listener.waitForOutput(/listening on/);
        listener.child.kill(signal);
        assert.equal((await listener.finished()).code, code, listener.stderr);
      });
    }
  });
});

Deno.test("docs/ (deno doc --html) is ignored by git", () => {
  const check = new Deno.Command("git", {
    args: ["check-ignore", "-q", "docs/index.html"],
    cwd: new URL("..", import.meta.url).pathname,
  }).outputSync();
  assert.equal(check.code, 0, "docs/ is not in .gitignore");
});

/** The words of one example line after `rsock CMD`, as a shell splits them (no comments, pipes). */
function exampleWords(line: string): string[] {
  const words: string[] = [];
  for (const [, quoted, bare] of line.matchAll(/'([^']*)'|(\S+)/g)) {
    if (bare === "#" || bare === "|" || bare?.startsWith("#")) break;
    words.push(quoted ?? bare!);
  }
  return words;
}

Deno.test("help: every command's help is made from its parser's table, and only names its flags", async (t) => {
  const commands = COMMANDS;
  const top = captured();
  await main(["--help"], top);
  for (const command of commands) {
    await t.step(command.name, async () => {
      assert.match(top.out, new RegExp(`^  ${command.name} `, "m"), "listed in rsock --help");
      const help = captured();
      assert.equal(await main(["help", command.name], help), 0);
      assert.equal(help.out, commandHelp(command) + "\n", "rsock help CMD = rsock CMD --help");
      const usage = /^Usage:[^]*?\n\n/m.exec(help.out)?.[0] ?? "";
      for (const flag of command.flags) {
        assert.match(
          usage,
          new RegExp(`--${flag.name}\\b`),
          `--${flag.name} missing from the usage`,
        );
        // Each flag's own line in the option list, with the first line of its help.
        assert.ok(help.out.includes(flag.help.split("\n")[0]!), `--${flag.name}'s help is listed`);
        for (const alias of flag.aliases ?? []) {
          assert.match(help.out, new RegExp(`--${alias}\\b`), `alias --${alias} is listed`);
        }
      }
      for (const flag of command.flags.filter((flag) => flag.short !== undefined)) {
        assert.match(help.out, new RegExp(`-${flag.short}, --${flag.name}\\b`));
      }
      // Every --flag the help names on an rsock line (usage, options, notes, examples) is one
      // the parser takes: no help mentions a flag its command lacks. Lines about other tools
      // (nngcat, R, Deno's --allow-*) are theirs.
      for (const line of help.out.split("\n")) {
        if (/nngcat|\bR:|Rscript/.test(line)) continue;
        const others = [...line.matchAll(/(?:rsock|cli\.ts) ([a-z]+)/g)].map((m) => m[1]);
        if (others.some((name) => name !== command.name)) continue;
        for (const [, name] of line.matchAll(/(?<![\w-])--([a-z][a-z-]*[a-z])/g)) {
          // Deno's own flags (the permission lines) and --help are not the command's.
          if (/^(allow-|deny-)/.test(name!) || ["help", "no-prompt"].includes(name!)) continue;
          try {
            parseCommandArgs(command, [`--${name}`]);
          } catch (error) {
            assert.doesNotMatch(String(error), /unknown option/, `help names --${name}: ${line}`);
          }
        }
      }
      // Every example line (one that starts with the command, maybe after a pipe) parses as
      // written; prose that names the command is not an example.
      const example = new RegExp(`^ +(?:[^"'(|]*\\| )?rsock ${command.name} ([^\n]*)$`, "gm");
      let examples = 0;
      for (const [, rest] of help.out.matchAll(example)) {
        examples++;
        const words = exampleWords(rest!);
        if (words.some((word) => /^[[(]|…|^(URL|N|T|TEXT|FILE)$/.test(word))) continue; // a usage pattern
        try {
          parseCommandArgs(command, words);
        } catch (error) {
          assert.fail(`example "rsock ${command.name} ${rest}" does not parse: ${error}`);
        }
      }
      if ([...nngCommands, reqCommand, repCommand].includes(command)) {
        assert.ok(examples > 0, `rsock ${command.name}'s help shows an example`);
      }
    });
  }
});

Deno.test("nngcat's spellings parse as their rsock flags; old rsock spellings stay aliases", () => {
  const sub = nngCommands.find((command) => command.name === "sub")!;
  const respond = nngCommands.find((command) => command.name === "respond")!;
  const parsed = parseCommandArgs(sub, [
    "tcp://127.0.0.1:1",
    "--subscribe",
    "a",
    "--topic",
    "b",
    "-C",
    "2",
    "--recv-timeout",
    "1.5",
    "-Q",
  ]);
  assert.deepEqual(parsed.values.subscribe, ["a", "b"]);
  assert.equal(parsed.values.count, "2");
  assert.equal(parsed.values.quoted, true);
  assert.deepEqual(parsed.positionals, ["tcp://127.0.0.1:1"]);
  assert.equal(parseCommandArgs(sub, ["--timeout", "2"]).values["recv-timeout"], "2");
  assert.equal(parseCommandArgs(respond, ["--answer", "ok"]).values.data, "ok");
  assert.throws(
    () => parseCommandArgs(respond, ["--answer", "a", "--data", "b"]),
    /--answer is --data; give it once/,
  );
});

Deno.test("durations: plain numbers are seconds, as in nngcat; ms, s and m are units", () => {
  assert.equal(parseDuration("2", 0, "--x"), 2000);
  assert.equal(parseDuration("0.5", 0, "--x"), 500);
  assert.equal(parseDuration("500ms", 0, "--x"), 500);
  assert.equal(parseDuration("2s", 0, "--x"), 2000);
  assert.equal(parseDuration("1m", 0, "--x"), 60_000);
  assert.equal(parseDuration(undefined, 7, "--x"), 7);
  assert.throws(() => parseDuration("soon", 0, "--delay"), /--delay must be a duration/);
  assert.throws(() => parseDuration("-1", 0, "--delay"), /--delay must be a duration/);
  // Whole milliseconds: half of one rounds up, less would be 0 and is refused.
  assert.equal(parseDuration("0.5ms", 0, "--x"), 1);
  assert.equal(parseDuration("0ms", 7, "--x"), 0);
  assert.throws(() => parseDuration("0.0004", 0, "--delay"), /--delay must be at least 1ms/);
});

Deno.test("req --listen and rep --dial: either side may listen, as with nngcat", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    await using req = rsock([net], [
      "req",
      "--listen",
      url,
      "--data",
      "21",
      "--send-mode",
      "raw",
      "--recv-mode",
      "string",
    ]);
    // The REQ listens first; the REP dials in (and redials until the listener is up).
    await using rep = rsock([net], [
      "rep",
      "--dial",
      url,
      "--recv-mode",
      "string",
      "--send-mode",
      "raw",
      "--count",
      "1",
      "--execute",
      "(x) => new TextEncoder().encode(String(Number(x) * 2))",
    ]);
    assert.equal((await req.finished()).code, 0, req.stderr);
    assert.equal(req.stdout, "42\n");
    assert.equal((await rep.finished()).code, 0, rep.stderr);
    assert.match(rep.stderr, new RegExp(`serving, dialed to tcp://127\\.0\\.0\\.1:${port}`));
    const both = captured();
    assert.equal(await main(["req", url, "--dial", url, "--data", "x"], both), 2);
    assert.match(both.err, /give exactly one endpoint: URL, --dial URL or --listen URL/);
  });
});

Deno.test("req reads its request from standard input; --file - sends it raw and prints the raw reply", async (t) => {
  await withTimeout(30_000, async () => {
    // Answers a serial request with its value R-serialized, raw bytes with raw bytes: what
    // rsock serve --rep does for nanonext and for nngcat.
    await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
    const url = rep.urls[0]!;
    const port = new URL(url.replace("tcp:", "http:")).port;
    const net = `--allow-net=127.0.0.1:${port}`;
    const controller = new AbortController();
    const serving = serve(rep, (x) => {
      const bytes = x as Uint8Array;
      const isSerial = bytes.length > 12 && (bytes[0] === 0x42 || bytes[0] === 0x58);
      if (isSerial) return serialize(`got ${JSON.stringify(simplify(unserialize(bytes)))}`);
      return new TextEncoder().encode(String(new TextDecoder().decode(bytes).length));
    }, { recvMode: "raw", sendMode: "raw", signal: controller.signal });
    const ask = async (args: string[], input: string) => {
      await using req = rsock([net], ["req", url, ...args], { stdin: "piped" });
      const writer = req.child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(input));
      await writer.close();
      return { status: await req.finished(), out: req.stdout, err: req.stderr };
    };
    await t.step("echo '1+2' | rsock req URL: an R string, one newline left out", async () => {
      const { status, out, err } = await ask([], "1+2\n");
      assert.equal(status.code, 0, err);
      assert.equal(out, 'got "1+2"\n');
    });
    await t.step("rep --data TEXT answers every request with TEXT, as nngcat's rep", async () => {
      const port = freePort();
      const repUrl = `tcp://127.0.0.1:${port}`;
      await using fixed = rsock([`--allow-net=127.0.0.1:${port}`], [
        "rep",
        repUrl,
        "--data",
        "pong",
        "--count",
        "1",
      ]);
      await fixed.waitForOutput(/serving on/);
      const output = captured();
      assert.equal(await main(["req", repUrl, "--data", "ping"], output), 0, output.err);
      assert.equal(output.out, "pong\n");
      assert.equal((await fixed.finished()).code, 0, fixed.stderr);
    });
    await t.step("--file -: the bytes, and a 1-byte raw reply printed as text", async () => {
      const { status, out, err } = await ask(["--file", "-"], "1+2\n");
      assert.equal(status.code, 0, err);
      assert.equal(out, "4\n");
    });
    controller.abort();
    await serving;
  });
});

Deno.test("echo '1+2' | rsock req URL and --file - get 3 from rsock serve --rep", async (t) => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    const net = `--allow-net=127.0.0.1:${port}`;
    await using server = rsock([net, "--allow-sys", WORKER_READ], ["serve", "--rep", url]);
    await server.waitForOutput(/Ctrl-C or SIGTERM stops/);
    for (const args of [[], ["--file", "-"]]) {
      await t.step(`rsock req URL ${args.join(" ")}`.trim(), async () => {
        await using req = rsock([net], ["req", url, ...args], { stdin: "piped" });
        const writer = req.child.stdin.getWriter();
        await writer.write(new TextEncoder().encode("1+2\n"));
        await writer.close();
        assert.equal((await req.finished()).code, 0, req.stderr);
        assert.equal(req.stdout, "3\n");
      });
    }
    server.child.kill("SIGTERM");
    assert.equal((await server.finished()).code, 143, server.stderr);
  });
});

Deno.test("req prints raw replies as text when UTF-8, in nngcat's formats otherwise", async (t) => {
  await withTimeout(30_000, async () => {
    // A byte-level REP, like rsock serve answering nngcat: code in, printed value out.
    await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
    const url = rep.urls[0]!;
    const controller = new AbortController();
    const replies: Record<string, Uint8Array> = {
      "1+1": new TextEncoder().encode("2"),
      "10+1": new TextEncoder().encode("11"),
      "bytes": new Uint8Array([0x61, 0x00, 0xff, 0x0a, 0x22]),
    };
    const serving = serve(rep, (x) => replies[new TextDecoder().decode(x as Uint8Array)], {
      recvMode: "raw",
      sendMode: "raw",
      signal: controller.signal,
    });
    const cases: [string[], string][] = [
      [["--data", "1+1", "--send-mode", "raw"], "2\n"],
      [["--data", "10+1", "--send-mode", "raw"], "11\n"],
      [["--data", "bytes", "--send-mode", "raw"], '"a\\x00\\xff\\n\\""\n'],
      [["--data", "bytes", "--send-mode", "raw", "--hex"], '"\\x61\\x00\\xff\\x0a\\x22"\n'],
      [["--data", "bytes", "--send-mode", "raw", "-A"], 'a..."'],
      [["--data", "1+1", "--send-mode", "raw", "--format", "quoted"], '"2"\n'],
      [["--data", "1+1", "--send-mode", "raw", "--recv-mode", "string"], "2\n"],
    ];
    for (const [args, expected] of cases) {
      await t.step(args.join(" "), async () => {
        const output = captured();
        assert.equal(await main(["req", url, ...args], output), 0, output.err);
        assert.equal(output.out, expected);
      });
    }
    await t.step("a 1-byte reply is an error only where it cannot be a value", async () => {
      const output = captured();
      const args = ["req", url, "--data", "1+1", "--send-mode", "raw", "--recv-mode", "double"];
      assert.equal(await main(args, output), 1);
      assert.match(
        output.err,
        /error reply \(1 byte, like nanonext's NUL byte; no --recv-mode double value is 1 byte\)/,
      );
    });
    await t.step("a reply that does not fit --recv-mode is printed raw, and says so", async () => {
      const output = captured();
      const args = ["req", url, "--data", "10+1", "--send-mode", "raw", "--recv-mode", "double"];
      assert.equal(await main(args, output), 0, output.err);
      assert.equal(output.out, "11\n");
      // nanonext warns here too; silently raw bytes looked like a wrong answer.
      assert.match(output.err, /^rsock req: received data could not be converted to double/m);
    });
    const both = captured();
    assert.equal(await main(["req", url, "--data", "x", "--hex", "--raw"], both), 2);
    assert.match(both.err, /give one output format, got --hex --raw/);
    controller.abort();
    await serving;
  });
});

Deno.test("serve with a port in use names the address and the flag that moves it", async () => {
  await withTimeout(30_000, async () => {
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = taken.addr.port;
    await using serve = rsock([`--allow-net=127.0.0.1:${port}`, "--allow-sys", WORKER_READ], [
      "serve",
      "--eval",
      String(port),
    ]);
    assert.equal((await serve.finished()).code, 1, serve.stderr);
    assert.match(
      serve.stderr,
      new RegExp(`127\\.0\\.0\\.1:${port} is already in use: .* with --eval PORT`),
    );
  });
});

Deno.test("ws: permission-gated like the others; one of URL or --listen", async () => {
  await withTimeout(30_000, async () => {
    const port = freePort();
    {
      await using child = rsock([], ["ws", `ws://127.0.0.1:${port}/`]);
      assert.equal((await child.finished()).code, 2);
      assert.match(child.stderr, new RegExp(`--allow-net=127\\.0\\.0\\.1:${port}`));
    }
    {
      await using child = rsock([], ["ws", "--listen", String(port)]);
      assert.equal((await child.finished()).code, 2);
      assert.match(child.stderr, new RegExp(`--allow-net=127\\.0\\.0\\.1:${port}`));
    }
    const neither = captured();
    assert.equal(await main(["ws"], neither), 2);
    assert.match(neither.err, /give a URL to connect to, or --listen PORT/);
    const notWs = captured();
    assert.equal(await main(["ws", "http://127.0.0.1:1/"], notWs), 2);
    assert.match(notWs.err, /is not a WebSocket URL/);
  });
});

Deno.test("serve: flags whose value may be left out come from the table (--eval alone is 8888)", () => {
  const bare = parseCommandArgs(serveCommand, ["--eval", "--ws", "9000", "--rep"]);
  assert.equal(bare.values.eval, "");
  assert.equal(bare.values.ws, "9000");
  assert.equal(bare.values.rep, "");
  assert.match(
    commandHelp(serveCommand),
    /\[--eval \[PORT\]\] \[--ws \[PORT\]\] \[--rep \[URL\]\]/,
  );
  for (const name of ["pub", "tls-ca", "in-process", "worker", "token-env", "timeout"]) {
    assert.match(commandHelp(serveCommand), new RegExp(`^ +--${name}\\b`, "m"), `--${name}`);
  }
});
