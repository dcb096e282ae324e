/**
 * Drives a command on a pseudo-terminal (python3's `pty` module), as a user at a keyboard:
 * wait for output matching a pattern, type keys, and so on; then collect the exit status.
 *
 * @module
 */

const SCRIPT = `
import json, os, pty, re, select, signal, sys, time
steps = json.loads(sys.argv[1])
cmd = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
buf = b""
pos = 0
def finish(error):
    status = None
    if error is not None:
        os.kill(pid, signal.SIGKILL)
    try:
        while True:
            r, _, _ = select.select([fd], [], [], 5)
            if not r:
                break
            data = os.read(fd, 4096)
            if not data:
                break
            globals()["buf"] += data
    except OSError:
        pass
    _, raw = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(raw)
    print(json.dumps({"error": error, "status": status, "transcript": buf.decode(errors="replace")}))
    sys.exit(0)
def expect(pattern, timeout=20):
    global buf, pos
    rx = re.compile(pattern.encode())
    deadline = time.time() + timeout
    while True:
        m = rx.search(buf, pos)
        if m:
            pos = m.end()
            return
        left = deadline - time.time()
        if left <= 0:
            finish("timed out waiting for %r" % pattern)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                finish("end of output while waiting for %r" % pattern)
            buf += data
for kind, arg in steps:
    if kind == "expect":
        expect(arg)
    else:
        os.write(fd, arg.encode())
finish(None)
`;

/** A step: wait for output matching a regular expression (Python syntax), or type text. */
export type PtyStep = ["expect", string] | ["type", string];

/** What happened: the exit status, everything the terminal showed, and a failed step. */
export interface PtyResult {
  readonly status: number;
  readonly transcript: string;
  readonly error: string | null;
}

/** Runs `command` on a pseudo-terminal through `steps`, then waits for it to exit. */
export async function runInPty(command: string[], steps: PtyStep[]): Promise<PtyResult> {
  const output = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", SCRIPT, JSON.stringify(steps), ...command],
    env: { NO_COLOR: "1", TERM: "xterm" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success || text === "") {
    throw new Error(`pty driver failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return JSON.parse(text) as PtyResult;
}

// A bridge between a pseudo-terminal and pipes: the child's pid first, then everything the
// terminal shows on stdout; what comes on stdin is typed. On the child's exit, its status
// (as os.waitstatus_to_exitcode gives it: negative for a signal) goes to stderr as JSON.
const BRIDGE = `
import json, os, pty, select, sys
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
out = sys.stdout.buffer
out.write(b"%d\\n" % pid)
out.flush()
typing = sys.stdin.fileno()
while True:
    r, _, _ = select.select([fd] + ([typing] if typing is not None else []), [], [])
    if typing in r:
        data = os.read(typing, 4096)
        if data:
            try:
                os.write(fd, data)
            except OSError:
                pass
        else:
            typing = None
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        out.write(data)
        out.flush()
_, raw = os.waitpid(pid, 0)
sys.stderr.write(json.dumps({"status": os.waitstatus_to_exitcode(raw)}))
`;

/**
 * A command running on a pseudo-terminal, driven step by step from the test: wait for what the
 * terminal shows, type, send a signal, then take the exit status. The command leads its own
 * session (and process group), as a shell's job does; dispose kills the group.
 */
export class PtyProcess implements AsyncDisposable {
  readonly #bridge: Deno.ChildProcess;
  readonly #typing: WritableStreamDefaultWriter<Uint8Array>;
  readonly #read: Promise<void>;
  readonly #pid: Promise<number>;
  readonly #exited: Promise<void>;
  readonly #report: Promise<string>;
  #transcript = "";
  #changed = Promise.withResolvers<void>();

  constructor(command: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
    const bridge = this.#bridge = new Deno.Command("/usr/bin/python3", {
      args: ["-c", BRIDGE, ...command],
      env: { NO_COLOR: "1", TERM: "xterm", ...options.env },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#typing = this.#bridge.stdin.getWriter();
    const pid = Promise.withResolvers<number>();
    this.#pid = pid.promise;
    this.#read = (async () => {
      let head = "";
      let started = false;
      for await (const text of bridge.stdout.pipeThrough(new TextDecoderStream())) {
        if (started) {
          this.#transcript += text;
        } else {
          head += text;
          const newline = head.indexOf("\n");
          if (newline < 0) continue;
          started = true;
          pid.resolve(Number(head.slice(0, newline)));
          this.#transcript += head.slice(newline + 1);
        }
        this.#changed.resolve();
        this.#changed = Promise.withResolvers<void>();
      }
      pid.reject(new Error(`pty bridge ended before the command started:\n${head}`));
    })();
    this.#pid.catch(() => {});
    this.#report = new Response(bridge.stderr).text();
    this.#exited = bridge.status.then(() => {});
  }

  /** Everything the terminal has shown so far. */
  get transcript(): string {
    return this.#transcript;
  }

  /** Waits until the terminal shows a match of `pattern`; throws if the command exits first. */
  async expect(pattern: RegExp, signal?: AbortSignal): Promise<RegExpExecArray> {
    let ended = false;
    const end = this.#read.then(() => ended = true);
    while (true) {
      const match = pattern.exec(this.#transcript);
      if (match !== null) return match;
      if (ended) {
        throw new Error(
          `the command ended before the terminal showed ${pattern}:\n${this.#transcript}`,
        );
      }
      signal?.throwIfAborted();
      await Promise.race([this.#changed.promise, end, aborted(signal)]);
    }
  }

  /**
   * Types `text` at the terminal (`"\x03"` is Ctrl-C, `"\x04"` Ctrl-D). Typing at a terminal
   * whose command has just ended is no error: the keys go nowhere, as they would for a user.
   */
  async type(text: string): Promise<void> {
    try {
      await this.#typing.write(new TextEncoder().encode(text));
    } catch {
      await this.#exited; // the bridge is gone with its command
    }
  }

  /** Sends `signal` to the command itself. */
  async kill(signal: Deno.Signal): Promise<void> {
    Deno.kill(await this.#pid, signal);
  }

  /** Waits for the command's exit: its status (128 + N after signal N, as a shell shows). */
  async status(signal?: AbortSignal): Promise<number> {
    await Promise.race([this.#exited, aborted(signal)]);
    await this.#read;
    const report = await this.#report;
    if (!report.startsWith("{")) throw new Error(`pty bridge failed: ${report}`);
    const { status } = JSON.parse(report) as { status: number };
    return status < 0 ? 128 - status : status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      Deno.kill(-(await this.#pid), "SIGKILL");
    } catch {
      // already gone, or never started
    }
    await this.#typing.close().catch(() => {});
    await this.#exited;
    await this.#read;
    await this.#report;
  }
}

function aborted(signal: AbortSignal | undefined): Promise<never> {
  if (signal === undefined) return new Promise<never>(() => {});
  return new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
