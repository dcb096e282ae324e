/**
 * The console page in real headless Chromium (Debian's `chromium`, driven by npm
 * `playwright-core`), evaluating in the same session as a TCP eval server.
 */
import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.49.1";
import { connectEvalServer, createSession, startEvalServer } from "../../eval/mod.ts";
import { serveConsole } from "../../ws/mod.ts";
import { CHROMIUM_ARGS, interopTest, withTimeout } from "../_peers.ts";

interopTest("console page in headless Chromium shares the eval session", [
  "chromium",
], async (t) => {
  await withTimeout(60_000, async () => {
    await using session = await createSession();
    await using evalServer = await startEvalServer({ port: 0, session });
    await using service = serveConsole({ session, port: 0, title: "rsock console (test)" });
    const dir = await Deno.makeTempDir({ prefix: "rsock_console_" });
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: CHROMIUM_ARGS,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 560 } });
      await page.goto(service.url);
      await page.locator("#status.on").waitFor();
      const results = page.locator(".entry.result:not(.pending), .entry.error");
      // Runs what is in the input (after filling `code`, if given) and reads its result.
      const run = async (code?: string) => {
        const before = await results.count();
        if (code !== undefined) await page.locator("#input").fill(code);
        await page.locator("#input").press("Enter");
        await results.nth(before).waitFor();
        return {
          text: await results.nth(before).textContent(),
          error: (await results.nth(before).getAttribute("class"))!.includes("error"),
        };
      };

      await t.step("let x = 40, then x + 2 shows 42", async () => {
        await run("let x = 40");
        assert.deepEqual(await run("x + 2"), { text: "42", error: false });
      });

      await t.step("a value set by a TCP eval client is visible in the page", async () => {
        await using tcp = await connectEvalServer({ port: evalServer.port });
        await tcp.send("globalThis.fromTcp = 'set over TCP'");
        assert.deepEqual(await run("fromTcp"), { text: '"set over TCP"', error: false });
        const reply = await tcp.send("x * 10");
        assert.equal(reply, "400");
      });

      await t.step("errors are shown distinctly; multi-line input; history", async () => {
        const failed = await run("nope.nothing");
        assert.equal(failed.error, true);
        assert.match(failed.text ?? "", /nope is not defined/);
        await page.locator("#input").fill("const lines = [1, 2,");
        await page.locator("#input").press("Shift+Enter");
        await page.locator("#input").pressSequentially("3];");
        assert.equal(await page.locator("#input").inputValue(), "const lines = [1, 2,\n3];");
        assert.deepEqual(await run(), { text: "undefined", error: false });
        assert.deepEqual(await run("lines.length"), { text: "3", error: false });
        await page.locator("#input").press("ArrowUp");
        assert.equal(await page.locator("#input").inputValue(), "lines.length");
        await page.locator("#input").fill("");
      });

      await t.step("server pushes appear on the page", async () => {
        assert.equal(service.push("build finished: 3 files"), 1);
        await page.locator(".entry.push", { hasText: "build finished: 3 files" }).waitFor();
      });

      await t.step("websockets from another origin are refused", async () => {
        const refused = await page.evaluate((port) =>
          new Promise<string>((resolve) => {
            const socket = new WebSocket(`ws://localhost:${port}/ws`, ["rsock.console.v1"]);
            socket.onopen = () => {
              socket.close();
              resolve("opened");
            };
            socket.onerror = () => resolve("refused");
          }), service.port);
        // localhost vs 127.0.0.1: a different origin from the page's point of view.
        assert.equal(refused, "refused");
      });

      await t.step("with a token, the page's websocket carries it", async () => {
        await using guarded = serveConsole({ session, port: 0, token: "t0k/en?" });
        const other = await browser.newPage();
        try {
          await other.goto(guarded.url);
          await other.locator("#status.on").waitFor();
          await other.locator("#input").fill("x - 1");
          await other.locator("#input").press("Enter");
          await other.locator(".entry.result:not(.pending)", { hasText: "39" }).waitFor();
        } finally {
          await other.close();
        }
      });

      const screenshot = `${dir}/console.png`;
      await page.screenshot({ path: screenshot });
      const size = (await Deno.stat(screenshot)).size;
      assert.ok(size > 5000, `screenshot of ${size} bytes`);
      // deno-lint-ignore no-console
      console.log(`screenshot: ${screenshot}`);
    } finally {
      await browser.close();
      if (Deno.env.get("RSOCK_KEEP_SCREENSHOT") === undefined) {
        await Deno.remove(dir, { recursive: true });
      }
    }
  });
});
