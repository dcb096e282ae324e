/**
 * The rsock client of `bench/reqrep_bench.ts`, in its own long-lived process (as a real client
 * program is: a fresh Deno process runs slower for its first second or so). Reads lines
 * `URL SIZE COUNT WARMUP` on stdin; for each, dials URL, sends WARMUP untimed and then COUNT
 * timed sequential raw requests of SIZE bytes, and prints `{"median_us":…,"mb_per_s":…}`.
 *
 * @module
 */

import { readLines } from "../_internal/lines.ts";
import { request, socket } from "../reqrep/mod.ts";

async function measure(url: string, size: number, count: number, warmup: number) {
  await using req = await socket("req", { dial: url });
  const payload = new Uint8Array(size).fill(7);
  const context = req.context();
  const times: number[] = [];
  let start = 0;
  for (let i = -warmup; i < count; i++) {
    if (i === 0) start = performance.now();
    const t0 = performance.now();
    const answer = await request(context, payload, {
      sendMode: "raw",
      recvMode: "raw",
      borrowBuffers: true,
    }) as Uint8Array;
    if (i >= 0) times.push(performance.now() - t0);
    if (answer.length !== size) throw new Error(`reply of ${answer.length} bytes, not ${size}`);
  }
  const total = performance.now() - start;
  times.sort((a, b) => a - b);
  return { median_us: times[count >> 1]! * 1000, mb_per_s: size * count / (total * 1000) };
}

const encoder = new TextEncoder();
for await (const line of readLines(Deno.stdin.readable)) {
  const [url, size, count, warmup] = line.trim().split(" ");
  if (url === undefined || warmup === undefined) {
    throw new TypeError("expected a line: URL SIZE COUNT WARMUP");
  }
  const figures = await measure(url, Number(size), Number(count), Number(warmup));
  await Deno.stdout.write(encoder.encode(`${JSON.stringify(figures)}\n`));
}
