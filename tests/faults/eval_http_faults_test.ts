/**
 * The eval door and web pages. A page cannot open a raw TCP connection, but it can POST to
 * any port: `fetch(url, { method: "POST", mode: "no-cors", body })` or a `text/plain` form.
 * The eval server reads lines, so read as code, the request line and headers would be errors
 * and the body's lines would run in the session (a cross-protocol attack, as on Redis); without
 * a token (the loopback default), any page the user opened could run code. So a connection
 * whose first line is an HTTP request line gets a 400 and is closed, nothing in it evaluated.
 */
import assert from "node:assert/strict";
import { createSession, startEvalServer } from "../../eval/mod.ts";
import { interopTest, waitFor, withTimeout } from "../_peers.ts";
import { foreignPage } from "./_foreign_page.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes `text`, reads until the peer closes or `until` matches; returns what came back. */
async function exchange(port: number, text: string, until?: RegExp): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(text));
    const buffer = new Uint8Array(4096);
    let received = "";
    while (until === undefined || !until.test(received)) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch {
        break; // reset: the server closed with our bytes unread
      }
      if (n === null) break;
      received += decoder.decode(buffer.subarray(0, n));
    }
    return received;
  } finally {
    conn.close();
  }
}

/** Asks the eval server for `typeof globalThis[name]`. */
async function typeOfGlobal(port: number, name: string): Promise<string> {
  const reply = await exchange(port, `typeof globalThis[${JSON.stringify(name)}]\n`, /\n/);
  return reply.trim();
}

Deno.test("eval server: an HTTP request is refused with 400 and none of its lines run", async (t) => {
  await withTimeout(20_000, async () => {
    const errors: Error[] = [];
    await using session = await createSession();
    await using server = await startEvalServer({
      port: 0,
      session,
      onError: (error) => errors.push(error),
    });
    const requests: [string, string][] = [
      ["POST, as fetch and forms send it", "POST"],
      ["GET with a body line after it", "GET"],
      ["PUT", "PUT"],
    ];
    for (const [what, method] of requests) {
      await t.step(what, async () => {
        const name = `__rsock_http_${method}`;
        const body = `globalThis.${name} = "ran"\n`;
        const reply = await exchange(
          server.port,
          `${method} / HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
            `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
        assert.match(reply, /^HTTP\/1\.1 400 /);
        assert.equal(await typeOfGlobal(server.port, name), '"undefined"');
      });
    }
    await t.step("HTTP/2 prior knowledge and HTTP/1.0", async () => {
      assert.match(
        await exchange(server.port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        /^HTTP\/1\.1 400/,
      );
      const reply = await exchange(
        server.port,
        "POST /x?y=1 HTTP/1.0\r\n\r\nglobalThis.__rsock_http_10 = 1\n",
      );
      assert.match(reply, /^HTTP\/1\.1 400/);
      assert.equal(await typeOfGlobal(server.port, "__rsock_http_10"), '"undefined"');
    });
    await t.step("reported, and code that only mentions HTTP still runs", async () => {
      await waitFor("a report", () => errors.length > 0);
      assert.match(errors[0]!.message, /HTTP request/);
      assert.equal(
        (await exchange(server.port, '"GET / HTTP/1.1".length\n', /\n/)).trim(),
        "14",
      );
    });
  });
});

interopTest(
  "eval server: a page on another origin in Chromium cannot run code by POSTing to it",
  ["chromium"],
  async () => {
    await withTimeout(60_000, async () => {
      await using session = await createSession();
      await using server = await startEvalServer({ port: 0, session });
      {
        // Another origin (another port) than any door.
        await using foreign = await foreignPage("localhost");
        const page = foreign.page;
        for (const host of ["127.0.0.1", "localhost"]) {
          await page.evaluate(({ host, port }) =>
            fetch(`http://${host}:${port}/`, {
              method: "POST",
              mode: "no-cors",
              body: `globalThis.__rsock_page = "${host}"\n`,
            }).catch(() => "failed"), { host, port: server.port });
        }
        // A text/plain form: name=value on a line of its own.
        await page.setContent(
          `<form id="f" method="POST" enctype="text/plain" action="http://127.0.0.1:${server.port}/">` +
            `<input name="globalThis.__rsock_form" value="'ran'; //"></form>`,
        );
        // The form's request ends either way: failed (not HTTP) or answered (the 400).
        const settled = new Promise((resolve) => {
          page.once("requestfinished", resolve);
          page.once("requestfailed", resolve);
        });
        await page.evaluate('document.getElementById("f").submit()');
        await settled;
      }
      assert.equal(await typeOfGlobal(server.port, "__rsock_page"), '"undefined"');
      assert.equal(await typeOfGlobal(server.port, "__rsock_form"), '"undefined"');
    });
  },
);
