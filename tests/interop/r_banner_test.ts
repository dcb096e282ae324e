/**
 * The R line that `rsock serve` prints in its banner, run as printed by Rscript, several times:
 * it must answer every time (a non-blocking connection often read `character(0)`).
 */
import assert from "node:assert/strict";
import { connectEvalServer } from "../../eval/mod.ts";
import { interopTest, withTimeout } from "../_peers.ts";
import { rsock } from "../_process.ts";

interopTest("the R line of rsock serve's banner works every time", ["Rscript"], async () => {
  await withTimeout(90_000, async () => {
    await using serve = rsock(["--allow-net=127.0.0.1", "--allow-sys"], ["serve", "--eval", "0"]);
    const [, port] = await serve.waitForOutput(/eval +tcp:\/\/127\.0\.0\.1:(\d+)/);
    const [, line] = await serve.waitForOutput(/^ +R: (con <- socketConnection\(.*)$/m);
    {
      await using client = await connectEvalServer({ port: Number(port) });
      await client.send("var x = 42");
    }
    for (let run = 0; run < 6; run++) {
      const result = await new Deno.Command("Rscript", {
        args: ["-e", line!],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(result.stdout);
      assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
      assert.equal(stdout, '[1] "42"\n', `run ${run + 1}: ${line}`);
    }
  });
});
