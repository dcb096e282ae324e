/**
 * socket/ throughput beside a bare `Deno.listen`/`Deno.connect` loop doing the same work, in
 * one run: MB/s for 1 MiB chunks, and lines per second for 64-byte lines.
 * Targets (issue 2): rsock ≥ 0.8× bare for 1 MiB chunks; ≥ 300,000 lines/s.
 *
 * @module
 */

import { connect, listen } from "../socket/mod.ts";

const MiB = 1024 * 1024;
const CHUNK_TOTAL_MIB = 256;
const LINES = 1_024_000; // a whole number of 1024-line blocks
const LINE_BYTES = 64;
const ROUNDS = 3;

/** Writes `total` bytes in `piece`-sized writes to `port`. */
async function bareWriter(port: number, piece: Uint8Array, count: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (let i = 0; i < count; i++) {
      let offset = 0;
      while (offset < piece.length) offset += await conn.write(piece.subarray(offset));
    }
  } finally {
    conn.close();
  }
}

async function bareChunks(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const piece = new Uint8Array(MiB).fill(7);
  const start = performance.now();
  const writing = bareWriter(port, piece, CHUNK_TOTAL_MIB);
  const conn = await listener.accept();
  const buffer = new Uint8Array(256 * 1024);
  let received = 0;
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    received += n;
  }
  await writing;
  const seconds = (performance.now() - start) / 1000;
  conn.close();
  listener.close();
  if (received !== CHUNK_TOTAL_MIB * MiB) throw new Error(`bare: received ${received} bytes`);
  return CHUNK_TOTAL_MIB * MiB / 1e6 / seconds;
}

async function rsockChunks(borrowBuffers: boolean): Promise<number> {
  await using server = listen({ port: 0, borrowBuffers });
  const piece = new Uint8Array(MiB).fill(7);
  const start = performance.now();
  const writing = (async () => {
    await using conn = await connect({ hostname: "127.0.0.1", port: server.port });
    for (let i = 0; i < CHUNK_TOTAL_MIB; i++) await conn.write(piece);
  })();
  let received = 0;
  for await (const event of server.events()) {
    if (event.type === "message") received += event.message.data.length;
    else if (event.type === "disconnect") break;
  }
  await writing;
  const seconds = (performance.now() - start) / 1000;
  if (received !== CHUNK_TOTAL_MIB * MiB) throw new Error(`rsock: received ${received} bytes`);
  return CHUNK_TOTAL_MIB * MiB / 1e6 / seconds;
}

function lineBlock(): { block: Uint8Array; perBlock: number } {
  const line = "x".repeat(LINE_BYTES - 1) + "\n";
  const perBlock = 1024;
  return { block: new TextEncoder().encode(line.repeat(perBlock)), perBlock };
}

async function bareLines(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const { block, perBlock } = lineBlock();
  const start = performance.now();
  const writing = bareWriter(port, block, LINES / perBlock);
  const conn = await listener.accept();
  const buffer = new Uint8Array(256 * 1024);
  let lines = 0;
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    const view = buffer.subarray(0, n);
    for (let i = view.indexOf(10); i !== -1; i = view.indexOf(10, i + 1)) lines++;
  }
  await writing;
  const seconds = (performance.now() - start) / 1000;
  conn.close();
  listener.close();
  const expected = Math.floor(LINES / perBlock) * perBlock;
  if (lines !== expected) throw new Error(`bare: ${lines} lines`);
  return lines / seconds;
}

async function rsockLines(): Promise<number> {
  await using server = listen({ port: 0, framing: "line" });
  const { block, perBlock } = lineBlock();
  const start = performance.now();
  const writing = (async () => {
    await using conn = await connect({ hostname: "127.0.0.1", port: server.port });
    for (let i = 0; i < LINES / perBlock; i++) await conn.write(block);
  })();
  let lines = 0;
  for await (const event of server.events()) {
    if (event.type === "message") {
      if (event.message.data.length !== LINE_BYTES - 1) throw new Error("rsock: bad line");
      lines++;
    } else if (event.type === "disconnect") break;
  }
  await writing;
  const seconds = (performance.now() - start) / 1000;
  const expected = Math.floor(LINES / perBlock) * perBlock;
  if (lines !== expected) throw new Error(`rsock: ${lines} lines`);
  return lines / seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs every contender once per round, interleaved so machine noise hits all alike. */
async function measure(contenders: (() => Promise<number>)[]): Promise<number[]> {
  const results: number[][] = contenders.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, contender] of contenders.entries()) results[i]!.push(await contender());
  }
  return results.map(median);
}

/** Runs the socket benchmark and prints figures and ratios. */
export async function run(): Promise<void> {
  const [bareChunk, oursChunk, oursBorrowed] = await measure([
    bareChunks,
    () => rsockChunks(false),
    () => rsockChunks(true),
  ]) as [number, number, number];
  const [bareLine, oursLine] = await measure([bareLines, rsockLines]) as [number, number];
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const rows = [
    ["1 MiB chunks, owned data (MB/s)", oursChunk, bareChunk, "-"],
    ["1 MiB chunks, borrowBuffers (MB/s)", oursBorrowed, bareChunk, ">= 0.80x"],
    ["64-byte lines (lines/s)", oursLine, bareLine, ">= 300,000/s"],
  ] as const;
  const table = rows.map(([name, ours, bare, target]) =>
    `${name.padEnd(36)}${fmt(ours).padStart(12)}${fmt(bare).padStart(14)}` +
    `${(ours / bare).toFixed(2).padStart(7)}  ${target}`
  );
  // deno-lint-ignore no-console
  console.log([
    `\nsocket: median of ${ROUNDS} runs; ${CHUNK_TOTAL_MIB} MiB in 1 MiB writes; ` +
    `${LINES.toLocaleString("en-US")} lines of ${LINE_BYTES} bytes`,
    `${"measure".padEnd(36)}${"rsock".padStart(12)}${"bare Deno".padStart(14)}${
      "ratio".padStart(7)
    }  target`,
    ...table,
  ].join("\n"));
}

if (import.meta.main) await run();
