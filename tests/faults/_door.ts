/**
 * One rsock door in a process of its own, for fault tests that must starve that process (run
 * it under `ulimit -n`). Prints `READY <address>` once listening and `ERROR <message>` for each
 * report of the door's error callback; stops when stdin closes.
 *
 * Usage: deno run -A tests/faults/_door.ts eval | rep URL | socket-tcp | socket-unix PATH | ws
 *
 * @module
 */

import { startEvalServer } from "../../eval/mod.ts";
import { serve, socket } from "../../reqrep/mod.ts";
import { listen } from "../../socket/mod.ts";
import { createServer } from "../../ws/mod.ts";

// Deno 2.9 sets up its signal handling lazily, about a second after start, and panics if no
// file descriptor is left at that moment; rsock's CLI registers its signals at start anyway.
const stopped = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", () => stopped.resolve());

const encoder = new TextEncoder();
const print = (line: string) => Deno.stdout.writeSync(encoder.encode(line + "\n"));
const onError = (error: Error) => print(`ERROR ${error.message.replaceAll("\n", " ")}`);

const [kind, arg] = Deno.args;
let close: () => Promise<void>;
switch (kind) {
  case "eval": {
    const server = await startEvalServer({ port: 0, onError });
    print(`READY ${server.port}`);
    close = () => server.close();
    break;
  }
  case "rep": {
    const rep = await socket("rep", { listen: arg!, onError });
    const serving = serve(rep, (x) => x, { recvMode: "raw", sendMode: "raw" });
    print(`READY ${rep.urls[0]}`);
    close = async () => {
      await rep.close();
      await serving;
    };
    break;
  }
  case "socket-tcp":
  case "socket-unix": {
    const server = listen({
      ...(kind === "socket-tcp" ? { port: 0, hostname: "127.0.0.1" } : { path: arg! }),
      framing: "line",
      onError,
    });
    const echoing = (async () => {
      for await (const message of server) {
        await message.client.write(`got:${message.text}\n`).catch(() => {});
      }
    })();
    print(`READY ${kind === "socket-tcp" ? server.port : arg}`);
    close = async () => {
      await server.close();
      await echoing;
    };
    break;
  }
  case "ws": {
    const server = createServer({
      port: 0,
      receive: (data, client) => client.write(`echo:${data}`),
      onAcceptError: onError,
    });
    print(`READY ${server.port}`);
    close = () => server.close({ timeout: 100 });
    break;
  }
  default:
    throw new TypeError(`unknown door ${kind}`);
}

const drain = (async () => {
  const buffer = new Uint8Array(64);
  while ((await Deno.stdin.read(buffer)) !== null) {
    // only the end of stdin matters
  }
})();
await Promise.race([drain, stopped.promise]);
await close();
print("STOPPED");
Deno.exit(0);
