/**
 * The eval server on svSocket's wire, over real TCP: every marker, setting and error path,
 * byte for byte where svSocket's observed framing is the contract.
 */
import assert from "node:assert/strict";
import { startEvalServer } from "../eval/mod.ts";
import { withTimeout } from "./_peers.ts";

const encoder = new TextEncoder();

/** A raw line client that keeps everything it receives. */
class Raw implements AsyncDisposable {
  readonly conn: Deno.Conn;
  received = "";
  ended = false;
  readonly #reading: Promise<void>;
  #notify: (() => void) | undefined;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.#reading = this.#read();
  }

  static async open(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65_536);
    try {
      while (true) {
        const n = await this.conn.read(buffer);
        if (n === null) break;
        this.received += decoder.decode(buffer.subarray(0, n), { stream: true });
        this.#notify?.();
      }
    } catch {
      // reset by the server
    }
    this.ended = true;
    this.#notify?.();
  }

  async write(line: string): Promise<void> {
    await this.conn.write(encoder.encode(line + "\n"));
  }

  /** Waits until `length` characters arrived, and takes them. */
  async take(length: number): Promise<string> {
    while (this.received.length < length && !this.ended) {
      await new Promise<void>((resolve) => this.#notify = resolve);
    }
    const out = this.received.slice(0, length);
    this.received = this.received.slice(length);
    return out;
  }

  /** Sends `line` and checks the exact reply (`""`: nothing at all, proved by a probe line). */
  async exchange(line: string, expected: string): Promise<void> {
    await this.write(line);
    if (expected === "") {
      await this.write("<<<u>>>'probe'"); // evaluated in turn, replies nothing either
      await this.write("'probe'");
      assert.equal(await this.take(9), '"probe"\r\n', `nothing sent for ${JSON.stringify(line)}`);
      await this.take(2);
      return;
    }
    assert.equal(await this.take(expected.length), expected, JSON.stringify(line));
  }

  async untilEnd(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => this.#notify = resolve);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#reading;
  }
}

Deno.test("eval server: svSocket's transcript, with JavaScript for R", async () => {
  await withTimeout(20_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    await using c = await Raw.open(server.port);
    // The same lines (in JavaScript) as spec/eval.md's observed svSocket session.
    await c.exchange("1 + 1", "2\r\n\r\n");
    await c.exchange("let tx = 5", "");
    await c.exchange("tx", "5\r\n\r\n");
    await c.exchange("console.log('hello'); console.log('a\\nb')", "hello\r\na\r\nb\r\n\r\n");
    await c.exchange("throw new Error('boom')", "Uncaught Error: boom\r\n\r\n");
    await c.exchange("console.warn('careful')", "careful\r\n\r\n");
    await c.exchange("1 +", "Error: incomplete command in single line mode\r\n\r\n");
    await c.exchange("<<<q>>>1 + 1", "2\r\n\r\n\f\r\n");
    await c.exchange("<<<h>>>let ty = 10", "\r\n\f\r\n");
    await c.exchange("parSocket(<<<s>>>).bare", "true\r\n\r\n\f\r\n");
    await c.exchange("<<<e>>>1 + 1", ":> 1 + 1\r\n2\r\n\r\n\f:> \r\n");
    await c.exchange("function tz() {", "\r\n\f:+ \r\n");
    await c.exchange("  return 1 }", ":> function tz() {\r\n:+   return 1 }\r\n\r\n\f:> \r\n");
    await c.exchange("function tw() {", "\r\n\f:+ \r\n");
    await c.exchange(
      "<<<esc>>>[tx, ty, tz()]",
      ":> [tx, ty, tz()]\r\n[ 5, 10, 1 ]\r\n\r\n\f:> \r\n",
    );
    await c.exchange("typeof tw", ':> typeof tw\r\n"undefined"\r\n\r\n\f:> \r\n');
    await c.exchange(
      "foo bar",
      ":> foo bar\r\nUncaught SyntaxError: Unexpected identifier 'bar'\r\n\r\n\f:> \r\n",
    );
    await c.exchange("", "\r\n\f:> \r\n");
  });
});

Deno.test("eval server: markers and settings over TCP", async (t) => {
  await withTimeout(30_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    await t.step("<<<n>>> joins lines, <<<s>>> names the client and port", async () => {
      await using c = await Raw.open(server.port);
      await c.exchange("let m1 = 1;<<<n>>>m1 + 1", "2\r\n\r\n");
      await c.exchange(
        "<<<id=abc>>>JSON.stringify([<<<s>>>])",
        `'["abc",${server.port}]'\r\n\r\n`,
      );
    });
    await t.step("settings are kept by client name across reconnects", async () => {
      {
        await using c = await Raw.open(server.port);
        await c.exchange(
          "<<<id=ed>>>parSocket(<<<s>>>, { bare: false, last: '<end>' }); 1",
          "1\r\n\r\n",
        );
      }
      await using again = await Raw.open(server.port);
      await again.exchange("<<<id=ed>>>2", "2\r\n<end>:> \r\n");
      await again.exchange(
        "<<<id=ed>>>parSocket(<<<s>>>, { nope: 1 })",
        'Uncaught TypeError: unknown setting "nope"; expected one of bare, prompt, continue, ' +
          "echo, multiline, last, code\r\n<end>:> \r\n",
      );
      assert.deepEqual(server.settings("ed").bare, false);
      await again.exchange("3", "3\r\n\r\n"); // the connection's own name: default settings
    });
    await t.step("bad settings are reported as errors", async () => {
      await using c = await Raw.open(server.port);
      await c.exchange(
        "parSocket(<<<s>>>, { bare: 'no' })",
        'Uncaught TypeError: setting "bare" must be a boolean, got string\r\n\r\n',
      );
    });
    await t.step("<<<u>>> returns nothing but evaluates", async () => {
      await using c = await Raw.open(server.port);
      await c.exchange("<<<u>>>globalThis.uDone = 'yes'", "");
      await c.exchange("uDone", '"yes"\r\n\r\n');
    });
    await t.step("<<<Q>>> and <<<H>>> disconnect first, then evaluate", async () => {
      await using probe = await Raw.open(server.port);
      for (const marker of ["Q", "H"]) {
        await using c = await Raw.open(server.port);
        await c.write(`<<<${marker}>>>globalThis.gone${marker} = 1; 'not sent'`);
        await c.untilEnd();
        assert.equal(c.received, "");
        await probe.exchange(`gone${marker}`, "1\r\n\r\n");
      }
    });
    await t.step("multiline in console mode, incomplete in bare mode", async () => {
      await using c = await Raw.open(server.port);
      await c.exchange("<<<e>>>const ml = [", "\r\n\f:+ \r\n");
      await c.exchange("1,", "\r\n\f:+ \r\n");
      await c.exchange(
        "2]; ml.length",
        ":> const ml = [\r\n:+ 1,\r\n:+ 2]; ml.length\r\n2\r\n\r\n\f:> \r\n",
      );
      await c.exchange(
        "<<<id=mlx>>><<<e>>>parSocket(<<<s>>>, { multiline: false }); 0",
        `:> parSocket("mlx", ${server.port}, { multiline: false }); 0\r\n0\r\n\r\n\f:> \r\n`,
      );
      await c.exchange(
        "<<<id=mlx>>>[1,",
        "Error: incomplete command in single line mode\r\n\r\n\f:> \r\n",
      );
      await c.exchange("[1,", "\r\n\f:+ \r\n"); // this connection's own name: console mode
    });
  });
});
