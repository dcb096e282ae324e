/**
 * Shared by the eval fault tests: an eval server in a child process (`_eval_server_child.ts`),
 * and a runaway evaluation known to have started.
 */
import { connectEvalServer, type EvalConnection } from "../../eval/mod.ts";
import { TestProcess, WORKER_READ } from "../_process.ts";

/**
 * Starts `_eval_server_child.ts` with `options` (startEvalServer's) and extra Deno flags; closing
 * its standard input closes the server.
 */
export async function evalServerChild(
  options: Record<string, unknown>,
  denoFlags: string[] = [],
): Promise<{ child: TestProcess; port: number }> {
  const child = new TestProcess(Deno.execPath(), [
    "run",
    "--no-prompt",
    ...denoFlags,
    "--allow-net=127.0.0.1",
    "--allow-sys",
    WORKER_READ,
    new URL("./_eval_server_child.ts", import.meta.url).pathname,
    JSON.stringify(options),
  ], { stdin: "piped" });
  try {
    return { child, port: Number((await child.waitForOutput(/port (\d+)/))[1]) };
  } catch (error) {
    await child[Symbol.asyncDispose]();
    throw error;
  }
}

/** Sends `while (true) {}` and returns once it runs (it pushes "started" first). */
export async function startRunaway(
  port: number,
): Promise<{ client: EvalConnection; reply: Promise<string> }> {
  const started = Promise.withResolvers<void>();
  const client = await connectEvalServer({
    port,
    onPush: (text) => text === "started" && started.resolve(),
  });
  const reply = client.send('sendSocketClients("started"); while (true) {}');
  reply.catch(() => {}); // awaited by the test when it matters
  await started.promise;
  return { client, reply };
}
