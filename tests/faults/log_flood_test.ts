/**
 * A flood of failing connections must not become a flood of stderr: 300 connect-and-close
 * cycles, or one connection sending 300 requests with too many backtrace hops, would print a
 * line each. Each door prints a few lines per window and counts the rest.
 */
import assert from "node:assert/strict";
import { ReportLimiter } from "../../_cli/_reports.ts";
import { request, socket } from "../../reqrep/mod.ts";
import { freePort, waitFor, withTimeout } from "../_peers.ts";
import { rsock } from "../_process.ts";

const encoder = new TextEncoder();

Deno.test("ReportLimiter: a burst per window, the rest counted in one line", async () => {
  await withTimeout(5_000, async () => {
    const lines: string[] = [];
    const log = new ReportLimiter("door", (line) => lines.push(line), {
      burst: 3,
      windowMs: 100,
    });
    try {
      for (let i = 0; i < 100; i++) log.report(`door: report ${i}`);
      assert.deepEqual(lines, ["door: report 0", "door: report 1", "door: report 2"]);
      await waitFor("the window's summary", () => lines.length === 4, 2_000);
      assert.match(lines[3]!, /^door: 97 more reports not shown .*the last: door: report 99$/);
      // A new window prints again.
      log.report("door: later");
      assert.equal(lines[4], "door: later");
    } finally {
      log.close();
    }
    assert.equal(lines.length, 5, "close() had nothing left to sum up");
  });
});

Deno.test("rsock serve: 300 connect-and-close cycles and 300 bad requests print a few lines, and the door still answers", async () => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    const url = `tcp://127.0.0.1:${port}`;
    // Read access to eval/: serve's session may run in a worker loaded from there.
    const workerRead = `--allow-read=${new URL("../../eval/", import.meta.url).pathname}`;
    await using child = rsock([`--allow-net=127.0.0.1:${port}`, "--allow-sys", workerRead], [
      "serve",
      "--rep",
      url,
    ]);
    await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
    const dropped = () => child.stderr.match(/rep: pipe \d+ .*dropped/g)?.length ?? 0;

    // Connections that close before their SP header: each is a "pipe N dropped" report.
    for (let i = 0; i < 300; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
    }
    // One pipe, 300 requests with 9 backtrace hops (NNG accepts 8): each is a report too.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(Uint8Array.of(0, 0x53, 0x50, 0, 0, 0x30, 0, 0)); // SP header, REQ
      const frame = new Uint8Array(8 + 9 * 4);
      new DataView(frame.buffer).setBigUint64(0, BigInt(9 * 4));
      frame[8 + 8 * 4] = 0x80; // only the ninth word ends the backtrace
      const frames = new Uint8Array(frame.length * 300);
      for (let i = 0; i < 300; i++) frames.set(frame, i * frame.length);
      await conn.write(frames);
      await waitFor("the door healthy again", async () => {
        await using req = await socket("req", { dial: url });
        return await request(req, encoder.encode("1 + 1"), {
          sendMode: "raw",
          recvMode: "string",
          timeout: 5_000,
        }) === "2";
      });
    } finally {
      conn.close();
    }
    const printed = child.stderr.split("\n").filter((line) => line.startsWith("rsock serve: rep"));
    assert.ok(printed.length <= 10, `${printed.length} lines:\n${printed.join("\n")}`);
    assert.ok(dropped() >= 1);

    child.child.kill("SIGTERM");
    await child.finished();
    const summary = /rsock serve: rep: (\d+) more reports not shown/.exec(child.stderr);
    assert.ok(summary !== null, child.stderr);
    // Every connection and every bad request was counted, if not printed.
    assert.ok(printed.length + Number(summary[1]) >= 300, child.stderr);
    assert.match(child.stderr, /rsock serve: stopped/);
  });
});
