/**
 * R 4.2's own socket functions (the seed's server.R / client.R code) against rsock, both ways.
 */
import assert from "node:assert/strict";
import { connect } from "../../socket/mod.ts";
import { freePort, interopTest, waitFor, withTimeout } from "../_peers.ts";
import { rsock, TestProcess } from "../_process.ts";

function rscript(code: string): TestProcess {
  return new TestProcess("/usr/bin/Rscript", ["--vanilla", "-e", code]);
}

interopTest("R make.socket/write.socket client → rsock listen --once", ["Rscript"], async () => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    await using listener = rsock([`--allow-net=127.0.0.1:${port}`], [
      "listen",
      "--port",
      String(port),
      "--once",
    ]);
    await listener.waitForOutput(/listening on/);
    await using r = rscript(`
      s <- make.socket(host = "localhost", port = ${port}, server = FALSE)
      for (i in 1:20) {
        write.socket(s, sprintf("message %d from R\\n", i))
        Sys.sleep(0.01)
      }
      write.socket(s, sprintf("#progress %d/%d %s\\n", 20L, 20L, "all sent"))
      close.socket(s)
    `);
    assert.equal((await r.finished()).code, 0, r.stderr);
    const status = await listener.finished();
    assert.equal(status.code, 0, "listen --once exits when R closes");
    const lines = listener.stdout.trimEnd().split("\n");
    const expected = Array.from({ length: 20 }, (_, i) => `[1] message ${i + 1} from R`);
    expected.push("[1] progress 20/20 (100%) all sent");
    assert.deepEqual(lines, expected);
  });
});

interopTest("rsock send and connect().write → R make.socket(server = TRUE)/read.socket", [
  "Rscript",
], async () => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    // The R server prints what each read.socket returns, framed, until the client closes.
    const serve = (clients: number) =>
      rscript(`
      for (k in seq_len(${clients})) {
        s <- make.socket(port = ${port}, server = TRUE)
        repeat {
          x <- read.socket(s, maxlen = 256L)
          if (identical(x, "")) break
          cat(x)
        }
        close.socket(s)
        cat("<closed>\\n")
      }
    `);
    await using r = serve(2);
    const lines = ["hello from rsock", "second line", "ünïcødé ✓"];
    // make.socket(server = TRUE) binds only when R gets there: retry until it listens.
    await waitFor("R to listen", async () => {
      const sender = rsock([`--allow-net=localhost:${port}`], [
        "send",
        "--port",
        String(port),
        ...lines,
      ]);
      const status = await sender.finished();
      return status.code === 0;
    }, 30_000);
    await r.waitForOutput(/<closed>\n/);
    // The second client is the library itself.
    let conn: Awaited<ReturnType<typeof connect>> | undefined;
    await waitFor("R to listen again", async () => {
      try {
        conn = await connect({ hostname: "localhost", port });
        return true;
      } catch {
        return false;
      }
    }, 30_000);
    const big = "z".repeat(1000);
    for (let i = 1; i <= 5; i++) await conn!.write(`chunk ${i}\n`);
    await conn!.write(big + "\n");
    conn!.close();
    assert.equal((await r.finished()).code, 0, r.stderr);
    const expected = lines.map((line) => line + "\n").join("") + "<closed>\n" +
      [1, 2, 3, 4, 5].map((i) => `chunk ${i}\n`).join("") + big + "\n<closed>\n";
    assert.equal(r.stdout, expected);
  });
});
