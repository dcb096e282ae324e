/**
 * A child process for tests: collects its output as it comes, waits for a pattern in it, and
 * is always killed and reaped on dispose so the sanitizers stay happy.
 *
 * @module
 */

import type { Output } from "../_cli/_common.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** An {@linkcode Output} that keeps what `main()` writes, for in-process CLI tests. */
export function captured(): Output & { out: string; err: string } {
  return {
    out: "",
    err: "",
    isTerminal: false,
    write(text: string) {
      this.out += text;
    },
    error(line: string) {
      this.err += line + "\n";
    },
  };
}

/** A running child whose output is collected as text. */
export class TestProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly #pumps: Promise<void>[];
  readonly #watchers = new Set<() => void>();
  readonly status: Promise<Deno.CommandStatus>;

  constructor(command: string, args: string[], options: { stdin?: "piped" | "null" } = {}) {
    this.child = new Deno.Command(command, {
      args,
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#pumps = [
      this.#pump(this.child.stdout, (text) => this.stdout += text),
      this.#pump(this.child.stderr, (text) => this.stderr += text),
    ];
    this.status = this.child.status;
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (text: string) => void): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      add(text);
      for (const watch of this.#watchers) watch();
    }
  }

  /**
   * Waits until stdout+stderr matches `pattern` (checked as each piece of output arrives); fails
   * once the process exited and its output ended without a match, or after `ms` (a bound on a
   * hang, never a pause).
   */
  async waitForOutput(pattern: RegExp, ms = 15_000): Promise<RegExpExecArray> {
    const found = Promise.withResolvers<RegExpExecArray>();
    const failed = (why: string) =>
      found.reject(
        new Error(
          `${why} before output matched ${pattern}\n--- stdout:\n${this.stdout}\n` +
            `--- stderr:\n${this.stderr}`,
        ),
      );
    const check = () => {
      const match = pattern.exec(this.stdout + this.stderr);
      if (match !== null) found.resolve(match);
    };
    const timer = setTimeout(() => failed(`timed out after ${ms} ms`), ms);
    this.#watchers.add(check);
    Promise.all([this.status, ...this.#pumps]).then(() => {
      check();
      failed("process exited");
    }, () => failed("process output failed"));
    check();
    try {
      return await found.promise;
    } finally {
      clearTimeout(timer);
      this.#watchers.delete(check);
    }
  }

  /** Waits for exit and for all output to be read. */
  async finished(): Promise<Deno.CommandStatus> {
    const status = await this.status;
    await Promise.all(this.#pumps);
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.finished();
  }
}

/** The read grant `rsock serve` needs to start its session's worker module (eval/_worker.ts). */
export const WORKER_READ = `--allow-read=${new URL("../eval/", import.meta.url).pathname}`;

/** Runs `rsock` (cli.ts) under the current Deno with the given Deno flags and CLI args. */
export function rsock(
  denoFlags: string[],
  args: string[],
  options: { stdin?: "piped" | "null" } = {},
): TestProcess {
  return new TestProcess(
    Deno.execPath(),
    ["run", "--no-prompt", ...denoFlags, CLI, ...args],
    options,
  );
}

/** `ln -s`: Deno.symlink needs unscoped read, and the tests' read permission is scoped. */
export async function symlink(target: string, path: string): Promise<void> {
  const { success } = await new Deno.Command("ln", { args: ["-s", target, path] }).output();
  if (!success) throw new Error(`ln -s ${target} ${path} failed`);
}
