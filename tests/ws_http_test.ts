import assert from "node:assert/strict";
import {
  createServer,
  httpResponse,
  httpVars,
  MessageTooLargeError,
  staticDirectoryService,
  staticFileService,
  staticTextService,
} from "../ws/mod.ts";
import { withTimeout } from "./_peers.ts";
import { symlink } from "./_process.ts";

/** Sends a raw request target, as fetch would normalize `..` away before sending. */
async function rawGet(port: number, target: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    const text = new TextDecoder().decode(
      await new Response(conn.readable).arrayBuffer(),
    );
    const status = Number(text.slice(9, 12));
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } catch (error) {
    conn.close();
    throw error;
  }
}

Deno.test("ws http: directory service never escapes its folder", async (t) => {
  await withTimeout(15_000, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/public/sub`, { recursive: true });
      await Deno.writeTextFile(`${dir}/public/index.html`, "<p>index</p>");
      await Deno.writeTextFile(`${dir}/public/sub/a.txt`, "inside");
      await Deno.writeTextFile(`${dir}/secret.txt`, "SECRET");
      await symlink(`${dir}/secret.txt`, `${dir}/public/link.txt`);
      await symlink(dir, `${dir}/public/up`);
      await symlink(`${dir}/public/sub/a.txt`, `${dir}/public/inner.txt`);
      await using server = createServer({
        port: 0,
        webpage: staticDirectoryService(`${dir}/public`),
      });

      await t.step("files inside are served, with index and content types", async () => {
        assert.deepEqual(await rawGet(server.port, "/"), { status: 200, body: "<p>index</p>" });
        assert.deepEqual(await rawGet(server.port, "/sub/a.txt"), { status: 200, body: "inside" });
        assert.deepEqual(await rawGet(server.port, "/inner.txt"), { status: 200, body: "inside" });
        assert.equal((await rawGet(server.port, "/missing")).status, 404);
        const response = await fetch(`http://127.0.0.1:${server.port}/sub/a.txt`);
        assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
        await response.body?.cancel();
      });

      await t.step(
        "`..`, `%2e%2e`, encoded separators and absolute paths are refused",
        async () => {
          for (
            const target of [
              "/../secret.txt",
              "/sub/../../secret.txt",
              "/%2e%2e/secret.txt",
              "/%2E%2E/%2e%2e/secret.txt",
              "/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
              "/..%2fsecret.txt",
              "/%2fetc%2fpasswd",
              "//etc/passwd",
              `/${encodeURIComponent(`${dir}/secret.txt`)}`,
              "/..%5csecret.txt",
              "/%252e%252e/secret.txt",
            ]
          ) {
            const { status, body } = await rawGet(server.port, target);
            assert.ok(status === 403 || status === 404 || status === 400, `${target} -> ${status}`);
            assert.ok(!body.includes("SECRET"), `${target} leaked the secret`);
          }
        },
      );

      await t.step("symlinks that point out of the folder are refused", async () => {
        const viaFile = await rawGet(server.port, "/link.txt");
        assert.equal(viaFile.status, 403);
        const viaDir = await rawGet(server.port, "/up/secret.txt");
        assert.equal(viaDir.status, 403);
        assert.ok(!viaFile.body.includes("SECRET") && !viaDir.body.includes("SECRET"));
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("ws http: file and text services, httpVars, httpResponse", async (t) => {
  await withTimeout(15_000, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/page.html`;
      await Deno.writeTextFile(file, "version 1");
      await using fileServer = createServer({ port: 0, webpage: staticFileService(file) });
      const get = async (port: number, path = "/") => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`);
        return { type: response.headers.get("content-type"), text: await response.text() };
      };

      await t.step("static file service re-reads a changed file", async () => {
        assert.deepEqual(await get(fileServer.port), {
          type: "text/html; charset=utf-8",
          text: "version 1",
        });
        await Deno.writeTextFile(file, "version two");
        assert.equal((await get(fileServer.port, "/any/path")).text, "version two");
      });

      await t.step("static text service", async () => {
        await using server = createServer({
          port: 0,
          webpage: staticTextService("plain", "text/plain"),
        });
        assert.deepEqual(await get(server.port), { type: "text/plain", text: "plain" });
      });

      await t.step("httpVars reads query strings, url-encoded and multipart bodies", async () => {
        const seen: unknown[] = [];
        await using server = createServer({
          port: 0,
          webpage: async (request) => {
            const vars = await httpVars(request);
            const plain = Object.fromEntries(
              Object.entries(vars).map((
                [k, v],
              ) => [k, v instanceof File ? `file ${v.name} ${v.size}` : v]),
            );
            seen.push(plain);
            return httpResponse(201, "application/json", JSON.stringify(plain));
          },
        });
        const base = `http://127.0.0.1:${server.port}`;
        let response = await fetch(`${base}/?a=1&b=x%20y&a=2`);
        assert.equal(response.status, 201);
        assert.deepEqual(await response.json(), { a: ["1", "2"], b: "x y" });
        response = await fetch(`${base}/?q=1`, {
          method: "POST",
          body: new URLSearchParams({ name: "Ada", note: "é&=" }),
        });
        assert.deepEqual(await response.json(), { q: "1", name: "Ada", note: "é&=" });
        const form = new FormData();
        form.append("field", "value");
        form.append("upload", new File(["12345"], "data.csv"));
        response = await fetch(base, { method: "POST", body: form });
        assert.deepEqual(await response.json(), { field: "value", upload: "file data.csv 5" });
        assert.equal(seen.length, 3);
      });

      await t.step(
        "httpVars bounds bodies, chunked ones too, with MessageTooLargeError",
        async () => {
          await using server = createServer({
            port: 0,
            webpage: async (request) => {
              try {
                const vars = await httpVars(request, { maxBodySize: 1000 });
                return httpResponse(200, "text/plain", String(vars.a).length.toString());
              } catch (error) {
                if (!(error instanceof MessageTooLargeError)) throw error;
                return httpResponse(413, "text/plain", error.message);
              }
            },
          });
          const base = `http://127.0.0.1:${server.port}`;
          const form = "application/x-www-form-urlencoded";
          let response = await fetch(base, {
            method: "POST",
            headers: { "content-type": form },
            body: `a=${"x".repeat(900)}`,
          });
          assert.equal(await response.text(), "900");
          response = await fetch(base, {
            method: "POST",
            headers: { "content-type": form },
            body: `a=${"x".repeat(2000)}`,
          });
          assert.equal(response.status, 413);
          assert.match(await response.text(), /2002 bytes exceeds the 1000-byte limit/);
          // A stream body goes out chunked, without content-length: counted as it arrives.
          const chunk = new TextEncoder().encode("x".repeat(400));
          let sent = 0;
          const body = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (sent === 0) controller.enqueue(new TextEncoder().encode("a="));
              if (sent++ < 10) controller.enqueue(chunk);
              else controller.close();
            },
          });
          response = await fetch(base, { method: "POST", headers: { "content-type": form }, body });
          assert.equal(response.status, 413);
          assert.match(await response.text(), /exceeds the 1000-byte limit/);
        },
      );

      await t.step("httpResponse checks its status", () => {
        assert.throws(() => httpResponse(99, "text/plain", ""), RangeError);
        assert.equal(httpResponse(204, "text/plain", "ignored").body, null);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
