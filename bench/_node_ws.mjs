// Node's `ws` package (server and client in one Node 20 process), doing what bench/ws_bench.ts
// does for rsock: a 32-byte echo round trip, sequential, one-way 1 KiB throughput, and an echo
// of 1 KiB messages sent without waiting (the usual `socket.send` idiom).
// Prints one JSON line: { roundTripUs, messagesPerSecond, unawaitedEchoPerSecond,
// unawaitedEchoCpuMs } (the process CPU time of the unawaited echo, in ms).
// Usage: node bench/_node_ws.mjs <dir holding node_modules/ws> <round trips> <messages>
import { createRequire } from "node:module";

const [dir, roundTrips, count] = process.argv.slice(2);
const { WebSocket, WebSocketServer } = createRequire(`${dir}/`)("ws");
const ROUND_TRIPS = Number(roundTrips);
const MESSAGES = Number(count);
const BOUND = 4 * 1024 * 1024;

const server = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 16 * 1024 * 1024 });
await new Promise((resolve) => server.on("listening", resolve));
let received = 0;
let onAllReceived = () => {};
let echoBinary = false;
server.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => {
    if (!isBinary) socket.send(data, { binary: false });
    else if (echoBinary) socket.send(data, { binary: true });
    else if (++received === MESSAGES) onAllReceived();
  });
});

const client = new WebSocket(`ws://127.0.0.1:${server.address().port}/`);
await new Promise((resolve) => client.on("open", resolve));
let onReply = () => {};
let echoed = 0;
let onAllEchoed = () => {};
client.on("message", (_data, isBinary) => {
  if (isBinary) {
    if (++echoed === MESSAGES) onAllEchoed();
  } else onReply();
});

const small = "x".repeat(32);
const echo = () =>
  new Promise((resolve) => {
    onReply = resolve;
    client.send(small);
  });
for (let i = 0; i < 1000; i++) await echo();
let start = performance.now();
for (let i = 0; i < ROUND_TRIPS; i++) await echo();
const roundTripUs = (performance.now() - start) * 1000 / ROUND_TRIPS;

const kib = new Uint8Array(1024).fill(7);
const done = new Promise((resolve) => onAllReceived = resolve);
start = performance.now();
for (let i = 0; i < MESSAGES; i++) {
  // Same backpressure rule as rsock's write: wait while 4 MiB are unsent.
  while (client.bufferedAmount >= BOUND) await new Promise((resolve) => setTimeout(resolve, 2));
  client.send(kib);
}
await done;
const messagesPerSecond = MESSAGES / ((performance.now() - start) / 1000);

// Echo of writes that are not awaited: every send at once, the server echoing each.
echoBinary = true;
const echoedAll = new Promise((resolve) => onAllEchoed = resolve);
const cpu = process.cpuUsage();
start = performance.now();
for (let i = 0; i < MESSAGES; i++) client.send(kib);
await echoedAll;
const echoMs = performance.now() - start;
const unawaitedEchoPerSecond = MESSAGES / (echoMs / 1000);
const used = process.cpuUsage(cpu);
const unawaitedEchoCpuMs = (used.user + used.system) / 1000;

client.close();
server.close();
for (const socket of server.clients) socket.terminate();
process.stdout.write(
  JSON.stringify({
    roundTripUs,
    messagesPerSecond,
    unawaitedEchoPerSecond,
    unawaitedEchoCpuMs,
  }) + "\n",
);
