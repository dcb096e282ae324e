/**
 * R values through the NNG wire: R writes requests the way nanonext sends them (native `B\n`
 * serialization) and the way base R does (`X\n`), `nngcat` carries them to an rsock REP, and R
 * checks with `identical()` what rsock answered in serial mode. (nanonext itself is a CRAN
 * package that cannot be installed here; these are its bytes, sent by NNG's own tool.)
 */
import assert from "node:assert/strict";
import { reply, socket } from "../../reqrep/mod.ts";
import { interopTest, withTimeout } from "../_peers.ts";

async function run(command: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
}

interopTest("R-serialized requests via nngcat: rsock REP answers values R reads back identical()", [
  "Rscript",
  "nngcat",
], async () => {
  await withTimeout(60_000, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rsock_r_reqrep_" });
    try {
      const made = await run("/usr/bin/Rscript", [
        "--vanilla",
        "-e",
        `setwd("${dir}")
         x <- list(n = 1:10, v = c(1.5, NA, -Inf), s = c("a", NA, "é"),
                   f = factor(c("lo", "hi", "lo")), flag = c(TRUE, NA))
         writeBin(serialize(x, NULL, xdr = FALSE), "native.bin")   # what nanonext sends
         writeBin(serialize(x, NULL), "xdr.bin")                   # what base R writes`,
      ]);
      assert.ok(made.success, new TextDecoder().decode(made.stderr));
      await using rep = await socket("rep", { listen: "tcp://127.0.0.1:0" });
      const url = rep.urls[0]!;
      for (const file of ["native.bin", "xdr.bin"]) {
        const serving = reply(rep, (x) => {
          const value = x as { n: number[]; v: (number | null)[]; s: (string | null)[] };
          return { echo: value.s, total: value.n.reduce((a, b) => a + b), first: value.v[0] };
        });
        const out = await run("/usr/bin/nngcat", [
          "--req",
          "--dial",
          url,
          "--file",
          `${dir}/${file}`,
          "--raw",
        ]);
        await serving;
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
        await Deno.writeFile(`${dir}/reply.bin`, out.stdout);
        assert.deepEqual(
          [...out.stdout.subarray(0, 2)],
          [0x42, 0x0a],
          "rsock answers B\\n, as nanonext",
        );
        const check = await run("/usr/bin/Rscript", [
          "--vanilla",
          "-e",
          `y <- unserialize(readBin("${dir}/reply.bin", "raw", 1e6))
           stopifnot(identical(y, list(echo = c("a", NA, "é"), total = 55, first = 1.5)))
           cat("identical\\n")`,
        ]);
        assert.equal(
          new TextDecoder().decode(check.stdout),
          "identical\n",
          new TextDecoder().decode(check.stderr),
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
