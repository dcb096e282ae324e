/**
 * Fault injection against the REQ/REP doors: requests that are not what they look like, peers
 * that never read, peers that are not there. Each case checks the door with a healthy client
 * afterwards.
 */
import assert from "node:assert/strict";
import { request, serialize, socket } from "../../reqrep/mod.ts";
import { freePort, withTimeout } from "../_peers.ts";
import { rsock, type TestProcess } from "../_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `rsock serve --rep tcp://…` as a subprocess, ready to answer. */
async function serveRep(): Promise<{ child: TestProcess; url: string }> {
  const port = freePort();
  const url = `tcp://127.0.0.1:${port}`;
  const child = rsock([`--allow-net=127.0.0.1:${port}`, "--allow-sys"], ["serve", "--rep", url]);
  await child.waitForOutput(/Ctrl-C or SIGTERM stops/);
  return { child, url };
}

Deno.test("serve --rep: 100 requests that only look like R serialization end no loop", async () => {
  await withTimeout(60_000, async () => {
    const { child, url } = await serveRep();
    await using _child = child;
    await using req = await socket("req", { dial: url });
    const truncated = serialize("1 + 1").subarray(0, 20);
    const bodies: [Uint8Array, string | Uint8Array | undefined][] = [
      // Starts with "A" and is longer than 12 bytes: the R decoder's first guess.
      [encoder.encode("Array.from([1,2,3]).length"), "3"],
      [encoder.encode("Boolean(1) && 'B starts me'"), '"B starts me"'],
      [encoder.encode("X\n= 'not XDR at all, still text'"), '"not XDR at all, still text"'],
      // 0x07 (nanonext's header byte), then text: valid UTF-8, so it is code (a SyntaxError).
      [Uint8Array.of(0x07, ...encoder.encode("not a nanonext header")), undefined],
      // A broken R stream and bytes that are not UTF-8: the error reply.
      [
        Uint8Array.of(0x42, 0x0a, 0xff, 0xfe, 0xfd, 0, 0, 0, 0xc3, 0x28, 0, 0, 0, 9),
        Uint8Array.of(0),
      ],
      [truncated, undefined],
    ];
    for (let i = 0; i < 100; i++) {
      const [body, expected] = bodies[i % bodies.length]!;
      const answer = await request(req, body, {
        sendMode: "raw",
        recvMode: "raw",
        timeout: 10_000,
      }) as Uint8Array;
      if (expected instanceof Uint8Array) assert.deepEqual(answer, expected, `request ${i}`);
      else if (expected !== undefined) assert.equal(decoder.decode(answer), expected);
      else assert.ok(answer.length > 0, `request ${i} answered`);
    }
    // A healthy nanonext-style request is still answered, R-serialized.
    assert.equal(await request(req, "20 + 22", { timeout: 10_000 }), 42);
  });
});
