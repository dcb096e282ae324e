/**
 * `rsock serve` binds loopback unless it has a token, and its REP door (SP has no
 * authentication) loopback or ipc:// only. "Loopback" must mean an address, not a name that
 * merely starts like one: `127.0.0.1.evil.example` is resolved by DNS and may be any address,
 * 0.0.0.0 included, so it is refused before anything is bound or resolved.
 */
import assert from "node:assert/strict";
import { main } from "../../cli.ts";
import { captured } from "../_process.ts";

const NAMES = ["127.0.0.1.evil.example", "127.evil.example"];

Deno.test("serve: a host name that only looks like 127.x is not loopback", async (t) => {
  for (const name of NAMES) {
    await t.step(`--rep tcp://${name}`, async () => {
      const output = captured();
      assert.equal(await main(["serve", "--rep", `tcp://${name}:0`], output), 2, output.err);
      assert.match(output.err, /is not loopback/);
    });
    await t.step(`--rep ws://${name}`, async () => {
      const output = captured();
      assert.equal(await main(["serve", "--rep", `ws://${name}:0/`], output), 2, output.err);
      assert.match(output.err, /is not loopback/);
    });
    await t.step(`--hostname ${name} without a token`, async () => {
      const output = captured();
      assert.equal(await main(["serve", "--hostname", name, "--ws", "0"], output), 2, output.err);
      assert.match(output.err, /is not loopback/);
    });
  }
  await t.step("127.0.0.2 still is (it gets as far as binding)", async () => {
    // Held ports: the bind fails after every check passed, and nothing is served.
    using held = Deno.listen({ hostname: "127.0.0.2", port: 0 });
    const port = (held.addr as Deno.NetAddr).port;
    for (
      const args of [["--hostname", "127.0.0.2", "--eval", String(port)], [
        "--rep",
        `tcp://127.0.0.2:${port}`,
        "--hostname",
        "127.0.0.2",
      ]]
    ) {
      const output = captured();
      const status = await main(["serve", ...args], output);
      assert.doesNotMatch(output.err, /not loopback/);
      assert.match(output.err, /in use|Cannot listen/, output.err);
      assert.equal(status, 1, output.err);
    }
  });
});
