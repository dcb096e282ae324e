/**
 * The README's main command, run as written from a fresh clone in a temporary folder, on a
 * machine whose only Deno is the one npx fetches. (The README's test command is what CI runs
 * from its own clean clone, so it is not run again from inside the suite.)
 */
import { COMMANDS } from "../../_cli/_commands.ts";
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { connectEvalServer, evalServer } from "../../eval/mod.ts";
import { freePort, IN_CI, waitFor, withTimeout } from "../_peers.ts";
import { rsock, TestProcess, WORKER_READ } from "../_process.ts";
import { parseCommandArgs } from "../../_cli/_common.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function hasNpx(): boolean {
  try {
    return new Deno.Command("npx", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "README: the serve command works from a fresh clone",
  // Under CI a missing npx fails here (the fresh clone cannot start); elsewhere it is ignored.
  ignore: !hasNpx() && !IN_CI,
  async fn() {
    await withTimeout(120_000, async () => {
      const readme = await Deno.readTextFile(`${ROOT}README.md`);
      const commands = [
        ...new Set([...readme.matchAll(/^(npx -y deno@[\d.]+ task \w+)/gm)].map((m) => m[1]!)),
      ];
      assert.equal(commands.length, 2, `two commands in the README, found ${commands}`);
      assert.match(commands[1]!, /task test$/);
      const serveCommand = commands[0]!;
      assert.match(serveCommand, /task serve$/);

      const dir = await Deno.makeTempDir({ prefix: "rsock_readme_" });
      try {
        const clone = new Deno.Command("git", {
          args: ["clone", "--quiet", ROOT, `${dir}/rsock`],
          stdout: "null",
          stderr: "piped",
        }).outputSync();
        assert.ok(clone.success, new TextDecoder().decode(clone.stderr));
        const [command, ...args] = serveCommand.split(" ");
        // npx runs deno as its child: give them a process group of their own, to stop both.
        await using serve = new TestProcess("setsid", [
          "sh",
          "-c",
          `cd "${dir}/rsock" && exec ${command} ${args.join(" ")}`,
        ]);
        const group = -serve.child.pid;
        await using _stopGroup = {
          [Symbol.asyncDispose]: () => {
            try {
              Deno.kill(group, "SIGKILL");
            } catch {
              // already gone
            }
            return Promise.resolve();
          },
        };
        await serve.waitForOutput(/Ctrl-C or SIGTERM stops/, 90_000);
        await using client = await connectEvalServer({ port: 8888 });
        await evalServer(client, "answer", 42);
        assert.equal(await evalServer(client, "answer"), 42);
        const page = await fetch("http://127.0.0.1:7681/");
        assert.equal(page.status, 200);
        await page.body?.cancel();
        client.close();
        Deno.kill(group, "SIGTERM");
        await waitFor("serve to stop", async () => {
          try {
            (await Deno.connect({ hostname: "127.0.0.1", port: 8888 })).close();
            return false;
          } catch {
            return true;
          }
        }, 20_000);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

Deno.test("README: the install line puts a working rsock on PATH", async () => {
  await withTimeout(60_000, async () => {
    const readme = await Deno.readTextFile(`${ROOT}README.md`);
    const line = /^deno install (-g -A -n rsock \.\/cli\.ts)/m.exec(readme);
    assert.ok(line, "the README has a checkout install line");
    const root = await Deno.makeTempDir({ prefix: "rsock_install_" });
    try {
      const path = `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`;
      const install = await new Deno.Command(Deno.execPath(), {
        args: ["install", ...line[1]!.split(" ")],
        cwd: ROOT,
        env: { DENO_INSTALL_ROOT: root, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
      // From another folder, with only the install's bin folder and deno on PATH.
      const run = await new Deno.Command("rsock", {
        args: ["--version"],
        cwd: root,
        env: { PATH: `${root}/bin:${path}`, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
      assert.equal(new TextDecoder().decode(run.stdout), `rsock ${denoJson.version}\n`);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});

/** The README's fenced `ts` blocks, with where they start. */
function tsBlocks(readme: string): { line: number; code: string }[] {
  return [...readme.matchAll(/^```ts\n([^]*?)^```$/gm)].map((match) => ({
    line: readme.slice(0, match.index).split("\n").length,
    code: match[1]!,
  }));
}

Deno.test("README: every ts block lints clean and runs to its end by itself", async (t) => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const blocks = tsBlocks(readme);
  assert.ok(blocks.length >= 5, `found ${blocks.length} ts blocks`);
  // What each door's block prints, by the door it imports.
  const expected: Record<string, string> = {
    socket: "[1] step 1 done\n[1] #progress 3/10 fitting models\n[1] done\n",
    eval: "43\n",
    reqrep: "[ 2, 4, 6 ]\n",
    ws: "hello, everyone\n",
    nng: "job 50%\n",
    "socket+eval+reqrep+ws": "9 functions ready\n",
  };
  const dir = await Deno.makeTempDir({ prefix: "rsock_readme_blocks_" });
  try {
    for (const { line, code } of blocks) {
      await t.step(`README.md line ${line}`, async () => {
        await withTimeout(30_000, async (signal) => {
          // The default ports may be taken on this machine: each block gets free ones.
          const ports = new Map<string, string>();
          const program = code.replace(/\b(6000|8888|5555|7681)\b/g, (port) => {
            if (!ports.has(port)) ports.set(port, String(freePort()));
            return ports.get(port)!;
          });
          const file = `${dir}/block_${line}.ts`;
          await Deno.writeTextFile(file, program);
          const lint = await new Deno.Command(Deno.execPath(), {
            args: ["lint", "--config", `${ROOT}deno.json`, "--rules-exclude=no-console", file],
            stdout: "piped",
            stderr: "piped",
            env: { NO_COLOR: "1" },
          }).output();
          assert.equal(lint.code, 0, new TextDecoder().decode(lint.stdout));
          const run = await new Deno.Command(Deno.execPath(), {
            args: ["run", "--config", `${ROOT}deno.json`, "--no-prompt", "-A", file],
            stdout: "piped",
            stderr: "piped",
            env: { NO_COLOR: "1" },
            signal,
          }).output();
          const stdout = new TextDecoder().decode(run.stdout);
          assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
          const doors = [...code.matchAll(/from "@x\/rsock\/(\w+)"/g)].map((m) => m[1]!);
          const key = [...new Set(doors)].join("+");
          // Every block's output is checked: a new block needs its expected output here.
          assert.ok(key in expected, `README.md line ${line}: no expected output for ${key}`);
          assert.equal(stdout, expected[key], `README.md line ${line}`);
        });
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Splits a command line as a shell would for these examples: quotes kept together. */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

Deno.test("README: every rsock command line it shows parses, with flags and arguments that exist", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const commands = COMMANDS;
  // Inline code, and the lines of fenced blocks other than ts and r (the banner's lines too).
  const pieces = [
    ...[...readme.matchAll(/^```(?:sh)?\n([^]*?)^```$/gm)].flatMap((m) => m[1]!.split("\n")),
    ...[...readme.replace(/^```[^]*?^```$/gm, "").matchAll(/`([^`]+)`/g)].map((m) =>
      m[1]!.replace(/\s*\n\s*/g, " ")
    ),
  ];
  const problems: string[] = [];
  let checked = 0;
  // The banner puts two commands on one line, four spaces apart.
  for (const piece of pieces.flatMap((piece) => piece.split(/ {3,}/))) {
    for (const match of piece.matchAll(/(?:^|[\s(|;])rsock ([a-z]+)((?: [^#|)]*)?)/g)) {
      const command = commands.find((c) => c.name === match[1]);
      if (command === undefined) continue;
      // Usage notation: [optional], alternatives a|b, repeats …
      const args = shellWords(match[2]!.replace(/[[\]…]/g, " "))
        .flatMap((word) => word.startsWith("-") ? word.split("|") : [word]);
      const shown = `rsock ${match[1]}${match[2]!.trimEnd()}`;
      checked++;
      try {
        parseCommandArgs(command, args);
      } catch (error) {
        problems.push(`${shown}: ${error instanceof Error ? error.message : error}`);
      }
    }
  }
  assert.ok(checked >= 30, `found ${checked} rsock command lines`);
  assert.deepEqual(problems, []);
});

Deno.test("README: the serve banner it shows is what rsock serve prints", async () => {
  await withTimeout(30_000, async () => {
    const readme = await Deno.readTextFile(`${ROOT}README.md`);
    const shown = /^```\n(rsock serve: [^]*?)^```$/m.exec(readme)?.[1];
    assert.ok(shown, "the README shows serve's banner");
    // The README's default ports may be taken here: serve on free ones and map them back.
    const ports = { 8888: freePort(), 7681: freePort(), 5555: freePort() };
    await using serve = rsock([
      `--allow-net=${Object.values(ports).map((port) => `127.0.0.1:${port}`).join(",")}`,
      "--allow-sys",
      WORKER_READ,
    ], [
      "serve",
      "--eval",
      String(ports[8888]),
      "--ws",
      String(ports[7681]),
      "--rep",
      `tcp://127.0.0.1:${ports[5555]}`,
    ]);
    await serve.waitForOutput(/Ctrl-C or SIGTERM stops\.\n/);
    let banner = serve.stderr.replace(/pid \d+/, "pid 4242");
    for (const [port, free] of Object.entries(ports)) {
      banner = banner.replaceAll(`:${free}`, `:${port}`).replaceAll(` ${free}`, ` ${port}`);
    }
    assert.equal(banner, shown);
    serve.child.kill("SIGTERM");
    assert.equal((await serve.finished()).code, 143, serve.stderr);
  });
});
