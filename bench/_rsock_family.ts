/**
 * rsock's side of bench/nng_bench.ts: the same roles and arguments as `bench/nng_family.c`
 * (see there), on `@x/rsock/nng` and `@x/rsock/reqrep`. TLS: listeners read NNG_TLS_CERT and
 * NNG_TLS_KEY, dialers NNG_TLS_CA (PEM files).
 *
 * @module
 */

import { socket } from "../nng/mod.ts";
import { request, socket as reqrepSocket } from "../reqrep/mod.ts";

const [role, url, ...rest] = Deno.args;
const numbers = rest.map(Number);
const env = (name: string) => Deno.env.get(name);
const listenTls = env("NNG_TLS_CERT") === undefined ? {} : {
  tls: {
    cert: await Deno.readTextFile(env("NNG_TLS_CERT")!),
    key: await Deno.readTextFile(env("NNG_TLS_KEY")!),
  },
};
const dialTls = env("NNG_TLS_CA") === undefined
  ? {}
  : { tls: { ca: await Deno.readTextFile(env("NNG_TLS_CA")!) } };
const print = (messages: number, seconds: number) =>
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify({ messages, seconds }) + "\n"));
const ready = () => Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
const yieldToIo = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Receives until `count` messages came, or 1 s passes without one after the first. */
async function receive(sock: Awaited<ReturnType<typeof socket>>, count: number): Promise<void> {
  let got = 0;
  let first = 0;
  let last = 0;
  while (count < 0 || got < count) {
    try {
      await sock.recvMessage(got === 0 ? {} : { timeout: 1000 });
    } catch {
      break;
    }
    last = performance.now();
    if (got++ === 0) first = last;
  }
  print(got, (last - first) / 1000);
}

switch (role) {
  case "pub": {
    const [size, count, subs] = numbers as [number, number, number];
    await using pub = await socket("pub", { listen: url!, ...listenTls });
    ready();
    await pub.waitForPipes(subs);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const payload = new Uint8Array(size);
    for (let i = 0; i < count; i++) {
      await pub.sendBytes(payload);
      // A publisher that never yields lets no write out: its per-pipe queues would overflow.
      if (i % 64 === 63) await yieldToIo();
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    break;
  }
  case "sub": {
    await using sub = await socket("sub", {
      dial: url!,
      subscribe: "",
      retryFirstDial: true,
      ...dialTls,
    });
    await receive(sub, -1);
    break;
  }
  case "push": {
    const [size, count] = numbers as [number, number];
    await using push = await socket("push", { dial: url!, retryFirstDial: true, ...dialTls });
    const payload = new Uint8Array(size);
    for (let i = 0; i < count; i++) await push.sendBytes(payload);
    await push.flush({ timeout: 10_000 });
    break;
  }
  case "pull": {
    await using pull = await socket("pull", { listen: url!, borrowBuffers: true, ...listenTls });
    ready();
    await receive(pull, numbers[0]!);
    break;
  }
  case "rep": {
    await using rep = await reqrepSocket("rep", { listen: url!, ...listenTls });
    ready();
    const ctx = rep.context();
    while (true) {
      const bytes = await ctx.recvBytes();
      await ctx.sendBytes(bytes);
    }
  }
  case "req": {
    const [size, count] = numbers as [number, number];
    await using req = await reqrepSocket("req", {
      dial: url!,
      retryFirstDial: true,
      ...dialTls,
    });
    const ctx = req.context();
    const payload = new Uint8Array(size);
    const options = { sendMode: "raw", recvMode: "raw", borrowBuffers: true } as const;
    for (let i = 0; i < Math.floor(count / 10) + 1; i++) await request(ctx, payload, options);
    const start = performance.now();
    for (let i = 0; i < count; i++) await request(ctx, payload, options);
    print(count, (performance.now() - start) / 1000);
    break;
  }
  default:
    throw new TypeError(`unknown role ${role}`);
}
