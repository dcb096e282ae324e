/**
 * An eval server in its own process, so a test can watch its memory: `deno run …
 * _eval_server_child.ts '{"maxBacklogBytes": …}'` prints `port N`, answers each `rss` line on
 * its standard input with `rss BYTES` (its resident memory), and stops when the input closes.
 */
import { startEvalServer } from "../../eval/mod.ts";
import { readLines } from "../../_internal/lines.ts";

const options = JSON.parse(Deno.args[0] ?? "{}");
await using server = await startEvalServer({ port: 0, ...options });
// deno-lint-ignore no-console
console.log(`port ${server.port}`);
for await (const line of readLines(Deno.stdin.readable)) {
  // deno-lint-ignore no-console
  if (line === "rss") console.log(`rss ${Deno.memoryUsage().rss}`);
}
