/**
 * The main job (`deno task serve`) needs nothing the tests need: with the npm registry out of
 * reach and an empty Deno cache, the task still starts `rsock serve`.
 */
import assert from "node:assert/strict";
import { withTimeout } from "./_peers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Copies the checkout (not node_modules, .git or coverage) into `to`. */
async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if ([".git", "node_modules", "coverage", "docs"].includes(entry.name)) continue;
    if (entry.isDirectory) await copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    else if (entry.isFile) await Deno.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

Deno.test("deno task serve starts with the npm registry unreachable and a cold cache", async () => {
  await withTimeout(60_000, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rsock_main_job_" });
    try {
      await copyTree(ROOT.replace(/\/$/, ""), `${dir}/rsock`);
      const result = await new Deno.Command(Deno.execPath(), {
        args: ["task", "serve", "--help"],
        cwd: `${dir}/rsock`,
        env: {
          DENO_DIR: `${dir}/deno_dir`,
          // Port 9 (discard) on loopback: every npm request is refused at once.
          NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/",
          NO_COLOR: "1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(result.stdout);
      const stderr = new TextDecoder().decode(result.stderr);
      assert.equal(result.code, 0, stderr);
      assert.match(stdout, /rsock serve — /);
      assert.doesNotMatch(stderr, /npm|playwright/i);
      await assert.rejects(Deno.stat(`${dir}/rsock/node_modules`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
