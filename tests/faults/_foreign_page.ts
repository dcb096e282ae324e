/**
 * An attacker's page for the fault tests: a page served from another origin (its own port),
 * open in headless Chromium, from which a test tries to reach a door.
 */
import { chromium, type Page } from "npm:playwright-core@1.49.1";
import { createServer } from "../../ws/mod.ts";
import { CHROMIUM_ARGS } from "../_peers.ts";

/** Opens a page on `http://HOST:PORT/` of a fresh server; disposing closes browser and server. */
export async function foreignPage(host: string): Promise<{ page: Page } & AsyncDisposable> {
  const site = createServer({
    port: 0,
    webpage: () =>
      new Response("<!doctype html><title>elsewhere</title>", {
        headers: { "content-type": "text/html" },
      }),
  });
  try {
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: CHROMIUM_ARGS,
    });
    const dispose = async () => {
      await browser.close();
      await site.close();
    };
    try {
      const page = await browser.newPage();
      await page.goto(`http://${host}:${site.port}/`);
      return { page, [Symbol.asyncDispose]: dispose };
    } catch (error) {
      await dispose();
      throw error;
    }
  } catch (error) {
    await site.close();
    throw error;
  }
}
