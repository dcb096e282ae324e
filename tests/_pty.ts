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
