/**
 * Progress relay between two processes: this script listens on a free port and starts a worker
 * process (itself, with `--worker PORT`) that reports its progress over a socket; the parent
 * prints each report. In a terminal, `rsock listen` draws the same reports as a live bar.
 *
 *   deno run --allow-net=127.0.0.1 --allow-run --allow-read examples/progress_relay.ts
 *
 * The worker side is all an R script needs too:
 *   s <- make.socket("localhost", PORT); write.socket(s, "#progress 3/10 step\n")
 */
// deno-lint-ignore-file no-console -- an example prints what it receives
import { connect, listen, parseProgress, renderProgressBar } from "../socket/mod.ts";

const STEPS = 10;

async function worker(port: number): Promise<void> {
  await using conn = await connect({ hostname: "127.0.0.1", port });
  await conn.writeLine("worker started");
  for (let step = 1; step <= STEPS; step++) {
    await new Promise((resolve) => setTimeout(resolve, 100)); // the "work"
    await conn.sendProgress(step, STEPS, `step ${step}`);
  }
  await conn.writeLine("worker done");
}

async function parent(): Promise<void> {
  await using server = listen({ port: 0, framing: "line" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-net=127.0.0.1:${server.port}`,
      import.meta.filename!,
      "--worker",
      String(server.port),
    ],
  }).spawn();
  for await (const event of server.events()) {
    if (event.type === "message") {
      const progress = parseProgress(event.message.text);
      console.log(progress ? renderProgressBar(progress) : `worker says: ${event.message.text}`);
    }
    if (event.type === "disconnect") break;
  }
  await child.status;
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--worker");
  if (at === -1) await parent();
  else await worker(Number(Deno.args[at + 1]));
}
