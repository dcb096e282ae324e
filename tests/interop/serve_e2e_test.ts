/**
 * The product end to end: `rsock serve` as a real process on free ports, reached by every kind
 * of peer at once — a TCP eval client, the browser console in headless Chromium, NNG's nngcat,
 * R through `socketConnection`, `rsock send` into the log — all on one session; SIGTERM frees
 * every port.
 */
import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.49.1";
import { connectEvalServer, evalServer } from "../../eval/mod.ts";
import { CHROMIUM_ARGS, freePort, interopTest, withTimeout } from "../_peers.ts";
import { rsock, TestProcess, WORKER_READ } from "../_process.ts";

/** serve's session runs in a worker, whose module is read from the eval/ folder. */

function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

interopTest("rsock serve: TCP, browser, nngcat, R and rsock send share one session", [
  "chromium",
  "Rscript",
  "nngcat",
], async (t) => {
  await withTimeout(90_000, async () => {
    const evalPort = freePort();
    const wsPort = freePort();
    const socketPort = freePort();
    const repPort = freePort();
    const ports = [evalPort, wsPort, socketPort, repPort];
    const repUrl = `tcp://127.0.0.1:${repPort}`;
    await using serve = rsock(
      [
        `--allow-net=${ports.map((port) => `127.0.0.1:${port}`).join(",")}`,
        "--allow-sys",
        WORKER_READ,
      ],
      [
        "serve",
        "--eval",
        String(evalPort),
        "--ws",
        String(wsPort),
        "--rep",
        repUrl,
        "--socket",
        String(socketPort),
      ],
    );
    await serve.waitForOutput(/Ctrl-C or SIGTERM stops/);

    await t.step("a TCP eval client sets x = 1", async () => {
      await using client = await connectEvalServer({ port: evalPort });
      await evalServer(client, "x", 1);
    });

    await t.step("the browser console reads x", async () => {
      const browser = await chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: CHROMIUM_ARGS,
      });
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${wsPort}/`);
        await page.locator("#status.on").waitFor();
        await page.locator("#input").fill("x + 41");
        await page.locator("#input").press("Enter");
        const result = page.locator(".entry.result:not(.pending)").first();
        await result.waitFor();
        assert.equal(await result.textContent(), "42");
        // The page changes the state the other clients see.
        await page.locator("#input").fill("globalThis.fromBrowser = 'hi from chromium'");
        await page.locator("#input").press("Enter");
        await page.locator(".entry.result:not(.pending)").nth(1).waitFor();
      } finally {
        await browser.close();
      }
    });

    await t.step("nngcat --req sends x + 1 and gets 2", async () => {
      await using cat = new TestProcess("/usr/bin/nngcat", [
        "--req",
        "--dial",
        repUrl,
        "--data",
        "x + 1",
        "--quoted",
      ]);
      assert.equal((await cat.finished()).code, 0, cat.stderr);
      assert.equal(cat.stdout, '"2"\n');
    });

    await t.step("R reads the same state through socketConnection", async () => {
      await using r = new TestProcess("/usr/bin/Rscript", [
        "--vanilla",
        "-e",
        `con <- socketConnection(host = "127.0.0.1", port = ${evalPort}, blocking = TRUE,
                                 open = "r+", timeout = 20)
         cat("x + 1\\n", file = con)
         cat("REPLY", readLines(con, n = 2)[1], "\\n")  # a reply ends in an empty line
         cat("fromBrowser\\n", file = con)
         cat("REPLY", readLines(con, n = 2)[1], "\\n")  # a reply ends in an empty line
         close(con)`,
      ]);
      assert.equal((await r.finished()).code, 0, r.stderr);
      assert.equal(r.stdout, 'REPLY 2 \nREPLY "hi from chromium" \n');
    });

    await t.step("a rsock send line appears in the serve log", async () => {
      await using send = rsock([`--allow-net=127.0.0.1:${socketPort}`], [
        "send",
        "--hostname",
        "127.0.0.1",
        "--port",
        String(socketPort),
        "job 7 finished",
      ]);
      assert.equal((await send.finished()).code, 0, send.stderr);
      await serve.waitForOutput(/socket \[1\] job 7 finished\n/);
    });

    await t.step("SIGTERM stops everything and frees every port", async () => {
      serve.child.kill("SIGTERM");
      assert.equal((await serve.finished()).code, 143, serve.stderr); // 128 + SIGTERM
      for (const port of ports) assert.ok(portIsFree(port), `port ${port} is free`);
    });
  });
});
