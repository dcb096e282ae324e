/**
 * The directory service and dotfiles: a served folder often holds `.env` or a `.git` folder,
 * so names starting with `.` are answered 404 unless the caller allows them.
 */
import assert from "node:assert/strict";
import { createServer, staticDirectoryService } from "../../ws/mod.ts";
import { withTimeout } from "../_peers.ts";
import { symlink } from "../_process.ts";

/** A raw GET (fetch would normalize the path before sending it). */
async function rawGet(port: number, target: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
  );
  // The response stream closes the connection once read to its end.
  const text = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
  return { status: Number(text.slice(9, 12)), body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

const HIDDEN = [
  "/.env",
  "/.git/config",
  "/sub/.secret",
  "/%2eenv",
  "/%2Egit/config",
  "/.git/",
  "/config", // a symlink to .env
];

Deno.test("ws http: the directory service refuses dotfiles unless allowed", async (t) => {
  await withTimeout(15_000, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/.git`, { recursive: true });
      await Deno.mkdir(`${dir}/sub`);
      await Deno.writeTextFile(`${dir}/.env`, "TOKEN=SECRET");
      await Deno.writeTextFile(`${dir}/.git/config`, "[remote] SECRET");
      await Deno.writeTextFile(`${dir}/.git/index.html`, "SECRET index");
      await Deno.writeTextFile(`${dir}/sub/.secret`, "SECRET");
      await Deno.writeTextFile(`${dir}/sub/page.txt`, "public");
      await symlink(`${dir}/.env`, `${dir}/config`);

      await t.step("by default: 404, as if they were not there", async () => {
        await using server = createServer({ port: 0, webpage: staticDirectoryService(dir) });
        for (const target of HIDDEN) {
          const { status, body } = await rawGet(server.port, target);
          assert.equal(status, 404, `${target} -> ${status}`);
          assert.ok(!body.includes("SECRET"), `${target} leaked ${body}`);
        }
        assert.deepEqual(await rawGet(server.port, "/sub/page.txt"), {
          status: 200,
          body: "public",
        });
      });

      await t.step('dotfiles: "allow" serves them', async () => {
        await using server = createServer({
          port: 0,
          webpage: staticDirectoryService(dir, { dotfiles: "allow" }),
        });
        assert.deepEqual(await rawGet(server.port, "/.env"), { status: 200, body: "TOKEN=SECRET" });
        assert.deepEqual(await rawGet(server.port, "/config"), {
          status: 200,
          body: "TOKEN=SECRET",
        });
        assert.equal((await rawGet(server.port, "/.git/config")).status, 200);
      });

      await t.step("an unknown dotfiles value is a TypeError", () => {
        assert.throws(
          () => staticDirectoryService(dir, { dotfiles: "yes" as "allow" }),
          TypeError,
        );
        return Promise.resolve();
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("ws http: a symlink out of the folder is 403 when rsock may read only the folder", async () => {
  await withTimeout(30_000, async () => {
    // Least privilege (--allow-read=FOLDER) is how a folder should be served. The real path of
    // a symlink is checked against the folder before it is stat-ed: stat-ing it first gives a
    // 500 with a stack trace on stderr per request, and a way to tell which outside paths exist.
    const top = await Deno.makeTempDir();
    const dir = `${top}/site`;
    try {
      await Deno.mkdir(`${dir}/sub`, { recursive: true });
      await Deno.mkdir(`${top}/outside`);
      await Deno.writeTextFile(`${top}/outside/secret.txt`, "SECRET");
      await Deno.writeTextFile(`${dir}/sub/page.txt`, "public");
      await symlink(`${top}/outside`, `${dir}/out`);
      await symlink(`${top}/outside/secret.txt`, `${dir}/file`);
      const script = `${top}/serve.ts`;
      const mod = new URL("../../ws/mod.ts", import.meta.url).href;
      await Deno.writeTextFile(
        script,
        `import { createServer, staticDirectoryService } from "${mod}";
const server = createServer({ port: 0, webpage: staticDirectoryService(${JSON.stringify(dir)}) });
const statuses = {};
for (const target of ["/out", "/out/", "/out/secret.txt", "/out/missing", "/file", "/sub/page.txt"]) {
  const response = await fetch(\`http://127.0.0.1:\${server.port}\${target}\`);
  statuses[target] = [response.status, await response.text()];
}
await server.close();
console.log(JSON.stringify(statuses));
`,
      );
      const moduleDir = new URL("../..", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          `--allow-read=${dir},${moduleDir},${script}`,
          "--allow-net=127.0.0.1",
          script,
        ],
        env: { NO_COLOR: "1" },
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.ok(out.success, stderr);
      const statuses = JSON.parse(new TextDecoder().decode(out.stdout)) as Record<
        string,
        [number, string]
      >;
      assert.equal(statuses["/out/missing"]![0], 404);
      for (const target of ["/out", "/out/", "/out/secret.txt", "/file"]) {
        assert.equal(statuses[target]![0], 403, `${target}: ${statuses[target]}`);
        assert.ok(!statuses[target]![1].includes("SECRET"));
      }
      assert.deepEqual(statuses["/sub/page.txt"], [200, "public"]);
      assert.doesNotMatch(stderr, /NotCapable|Error/);
    } finally {
      await Deno.remove(top, { recursive: true });
    }
  });
});
