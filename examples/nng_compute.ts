/**
 * An R (nanonext) or NNG client computing in a Deno session: a REP socket whose requests are
 * answered by this program, where a model (here a tiny linear fit) lives. Requests and replies
 * are R-serialized, as nanonext sends them: R gets an R list back.
 *
 *   deno run --allow-net=127.0.0.1:5560 examples/nng_compute.ts
 *   deno run --allow-net=127.0.0.1:5560 cli.ts req tcp://127.0.0.1:5560 --data '[1, 2, 3, 4]'
 *   # (for the whole session instead of one function: rsock serve --rep, then nngcat works too)
 *   # R:  library(nanonext); s <- socket("req", dial = "tcp://127.0.0.1:5560")
 *   #     call_aio(request(context(s), c(1, 2, 3, 4)))$data      # → list(slope = …, intercept = …)
 */
// deno-lint-ignore-file no-console -- an example talks to its user
import { serve, socket } from "../reqrep/mod.ts";

/** Least-squares line through (0, y0), (1, y1), … */
function fit(ys: number[]): { slope: number; intercept: number } {
  const n = ys.length;
  const meanX = (n - 1) / 2;
  const meanY = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  const slope = den === 0 ? 0 : num / den;
  return { slope, intercept: meanY - slope * meanX };
}

const url = Deno.args[0] ?? "tcp://127.0.0.1:5560";
await using rep = await socket("rep", { listen: url });
console.log(`computing for REQ clients on ${rep.urls[0]}`);
const controller = new AbortController();
Deno.addSignalListener("SIGINT", () => controller.abort());
await serve(rep, (request) => {
  // R sends a numeric vector; a shell client may send the numbers as a JSON string.
  const ys = typeof request === "string"
    ? JSON.parse(request) as number[]
    : ([] as number[]).concat(request as number | number[]);
  return fit(ys);
}, { signal: controller.signal, onError: (error) => console.error(`request failed: ${error}`) });
