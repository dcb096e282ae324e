/**
 * A browser dashboard fed by broadcast: a page served by the same server shows a metric the
 * program pushes to every connected browser once a second — R `websockets`' broadcast pattern.
 *
 *   deno run --allow-net=127.0.0.1:7690 examples/dashboard.ts
 *   # open http://127.0.0.1:7690/
 */
// deno-lint-ignore-file no-console -- an example talks to its user
import { createServer, staticTextService } from "../ws/mod.ts";

const PAGE = `<!doctype html><meta charset="utf-8"><title>rsock dashboard</title>
<style>body{font:16px system-ui;margin:3rem}b{font-size:3rem}</style>
<p>a metric pushed by the program every second: <b id="value">…</b></p>
<p id="clients"></p>
<script>
  const socket = new WebSocket("ws://" + location.host + "/");
  socket.onmessage = (event) => {
    const { value, clients } = JSON.parse(event.data);
    document.getElementById("value").textContent = value.toFixed(2);
    document.getElementById("clients").textContent = clients + " browser(s) watching";
  };
</script>`;

const port = Number(Deno.args[0] ?? 7690);
await using server = createServer({ port, webpage: staticTextService(PAGE) });
console.log(`dashboard on http://127.0.0.1:${server.port}/`);

let value = 1;
const timer = setInterval(() => {
  value = Math.max(0, value + (Math.random() - 0.5) / 2); // a stand-in for a real metric
  server.broadcast(JSON.stringify({ value, clients: server.clients.length }));
}, 1000);
const { promise, resolve } = Promise.withResolvers<void>();
Deno.addSignalListener("SIGINT", () => resolve());
await promise;
clearInterval(timer);
