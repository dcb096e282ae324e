/**
 * The eval server on svSocket's wire, over real TCP: every marker, setting and error path,
 * byte for byte where svSocket's observed framing is the contract.
 */
import assert from "node:assert/strict";
import { connectEvalServer, startEvalServer } from "../eval/mod.ts";
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
          "echo, multiline, last, code, framePushes, markErrors\r\n<end>:> \r\n",
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

/**
 * The two lines svSocket's `evalServer(con, "1+1")` and `evalServer(con, y, 42)` send, byte for
 * byte (R/eval_socket_server.R): R code that makes the server print `<<<endflag>>>`, which
 * evalServer() reads until.
 */
const SVSOCKET_VALUE_LINE = '..Last.value <- try(eval(parse(text = "1+1"))); .f <- file(); ' +
  'dump("..Last.value", file = .f); flush(.f); seek(.f, 0); cat("\\n<<<startflag>>>", ' +
  'gsub("<pointer: [0-9a-fx]+>", "NULL", readLines(.f)), "<<<endflag>>>\\n", sep = "\\n"); ' +
  "close(.f); rm(.f, ..Last.value); flush.console()";
const SVSOCKET_ASSIGN_LINE = "..Last.value <-42;y <- ..Last.value; rm(..Last.value); " +
  'cat("\\n<<<endflag>>>\\n"); flush.console()';

/** What arrives up to the end of the reply that carries `<<<endflag>>>` (or the end). */
async function untilEndFlag(c: Raw): Promise<string> {
  let reply = "";
  while (!reply.includes("<<<endflag>>>\r\n\r\n") && !c.ended) reply += await c.take(1);
  return reply;
}

Deno.test("eval server: svSocket's evalServer() lines are refused at once, in its framing", async (t) => {
  await withTimeout(20_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    const notR = /rsock: it evaluates JavaScript, not R/;
    await t.step(
      "a value: R code after <<<startflag>>> that stops, then <<<endflag>>>",
      async () => {
        await using c = await Raw.open(server.port);
        await c.write(SVSOCKET_VALUE_LINE);
        const reply = await untilEndFlag(c);
        const lines = reply.split("\r\n");
        assert.deepEqual([lines[0], lines[1], lines[3], lines[4], lines[5]], [
          "",
          "<<<startflag>>>",
          "<<<endflag>>>",
          "",
          "",
        ]);
        assert.match(lines[2]!, /^stop\(".*", call\. = FALSE\)$/);
        assert.match(lines[2]!, notR);
      },
    );
    await t.step("an assignment: the message, then <<<endflag>>>", async () => {
      await using c = await Raw.open(server.port);
      await c.write(SVSOCKET_ASSIGN_LINE);
      const reply = await untilEndFlag(c);
      assert.match(
        reply,
        /^Error: this svSocket-style server is rsock: .*\r\n<<<endflag>>>\r\n\r\n$/,
      );
      // Nothing was evaluated: the session has no y.
      await c.exchange("typeof y", '"undefined"\r\n\r\n');
    });
  });
});

Deno.test("eval server: token, bind rule, line limit, vanishing clients", async (t) => {
  await withTimeout(30_000, async () => {
    await t.step("any address but loopback needs a token", async () => {
      await assert.rejects(
        startEvalServer({ port: 0, hostname: "0.0.0.0" }),
        /binding "0\.0\.0\.0" exposes code evaluation.*pass a token/,
      );
    });
    await t.step("token: right one first, wrong one gets one error line and a close", async () => {
      await using server = await startEvalServer({ port: 0, token: "s3cret" });
      await using good = await Raw.open(server.port);
      await good.write("s3cret");
      await good.exchange("6 * 7", "42\r\n\r\n");
      await using bad = await Raw.open(server.port);
      await bad.write("s3cre7");
      await bad.write("globalThis.shouldNotRun = 1");
      await bad.untilEnd();
      assert.equal(
        bad.received,
        "Error: wrong token; the first line must be the server's token\r\n",
      );
      await good.exchange("typeof shouldNotRun", '"undefined"\r\n\r\n');
    });
    await t.step("a client that never sends the token is disconnected", async () => {
      await using server = await startEvalServer({ port: 0, token: "t", authTimeout: 100 });
      await using silent = await Raw.open(server.port);
      await silent.untilEnd();
      assert.equal(silent.received, "Error: no token within the time limit\r\n");
    });
    await t.step("a line over the limit: error reply, client closed, server goes on", async () => {
      await using server = await startEvalServer({ port: 0, maxLineBytes: 1000 });
      await using big = await Raw.open(server.port);
      await big.conn.write(new TextEncoder().encode("'" + "x".repeat(5000)));
      await big.untilEnd();
      assert.equal(
        big.received,
        "Error: line longer than 1000 bytes refused; send shorter lines\r\n",
      );
      await using next = await Raw.open(server.port);
      await next.exchange("'x'.repeat(3)", '"xxx"\r\n\r\n');
    });
    await t.step("clients that vanish mid-transaction do not stall the others", async () => {
      await using server = await startEvalServer({ port: 0 });
      for (let i = 0; i < 20; i++) {
        const gone = await Raw.open(server.port);
        await gone.write("await new Promise((r) => setTimeout(r, 5)); 'late'");
        await gone[Symbol.asyncDispose]();
      }
      await using c = await Raw.open(server.port);
      await c.exchange("'still here'", '"still here"\r\n\r\n');
    });
  });
});

Deno.test("eval server: push, client list and close, custom process, plain line ends", async (t) => {
  await withTimeout(20_000, async () => {
    await t.step(
      "code reaches the server: getSocketClients, sendSocketClients, closeSocketClients",
      async () => {
        await using server = await startEvalServer({ port: 0 });
        await using a = await Raw.open(server.port);
        await using b = await Raw.open(server.port);
        await a.exchange("getSocketClients().length", "2\r\n\r\n");
        await a.exchange("sendSocketClients('hello b', getSocketClients()[1])", "");
        assert.equal(await b.take(9), "hello b\r\n");
        await server.push("to all");
        assert.equal(await a.take(8), "to all\r\n");
        assert.equal(await b.take(8), "to all\r\n");
        await a.exchange("closeSocketClients(getSocketClients()[1])", "");
        await b.untilEnd();
        assert.deepEqual(server.clients.length, 1);
      },
    );
    await t.step("onEcho sees what svSocket echoes on the server", async () => {
      const echoed: string[] = [];
      await using server = await startEvalServer({
        port: 0,
        onEcho: (client, text) => echoed.push(`${client}|${text}`),
      });
      await using c = await Raw.open(server.port);
      await c.exchange("<<<id=ed>>><<<e>>>if (true) {", "\r\n\f:+ \r\n");
      await c.exchange("<<<id=ed>>>1 }", ":> if (true) {\r\n:+ 1 }\r\n1\r\n\r\n\f:> \r\n");
      await c.exchange("<<<h>>>'hidden'", '"hidden"\r\n\r\n\f\r\n');
      assert.deepEqual(echoed, ["ed|:> if (true) {", "ed|:+ 1 }"]);
    });
    await t.step("a custom process function replaces the default", async () => {
      await using server = await startEvalServer({
        port: 0,
        lineEnd: "\n",
        process: async (tx) =>
          tx.line === "ping" ? "pong" : `[${tx.parsed.client}] ${await tx.defaultProcess()}`,
      });
      await using c = await Raw.open(server.port);
      await c.exchange("ping", "pong\n");
      await c.exchange("<<<id=me>>>1 + 2", "[me] 3\n\n");
    });
    await t.step("output of a transaction goes to its own client only", async () => {
      await using server = await startEvalServer({ port: 0 });
      const clients = await Promise.all(Array.from({ length: 5 }, () => Raw.open(server.port)));
      try {
        await Promise.all(clients.map(async (c, i) => {
          for (let k = 0; k < 5; k++) {
            await c.exchange(
              `console.log('from ${i}'); await new Promise((r) => setTimeout(r, 1)); ${k}`,
              `from ${i}\r\n${k}\r\n\r\n`,
            );
          }
        }));
      } finally {
        for (const c of clients) await c[Symbol.asyncDispose]();
      }
    });
  });
});

Deno.test("eval server (worker mode): <<<esc>>> and the time limit interrupt a runaway", async () => {
  await withTimeout(30_000, async () => {
    await using server = await startEvalServer({ port: 0, worker: true, timeout: 1_500 });
    await using c = await Raw.open(server.port);
    await c.exchange("let kept = 1; kept", "1\r\n\r\n");
    // The runaway says when it runs: an <<<esc>>> read before it started has nothing to stop.
    await c.write("sendSocketClients('spinning'); while (true) {}");
    assert.equal(await c.take("spinning\r\n".length), "spinning\r\n");
    await c.write("<<<esc>>>'after'");
    const interrupted =
      "Interrupted: evaluation aborted; the worker was restarted and the session's state is lost\r\n\r\n";
    assert.equal(await c.take(interrupted.length), interrupted);
    assert.equal(await c.take(11), '"after"\r\n\r\n', "then the <<<esc>>> line itself runs");
    await c.exchange("typeof kept", '"undefined"\r\n\r\n');
    await c.write("for (;;) {}");
    const timedOut =
      "Interrupted: evaluation ran past 1500 ms; the worker was restarted and the session's state is lost\r\n\r\n";
    assert.equal(await c.take(timedOut.length), timedOut);
    await c.exchange("1 + 1", "2\r\n\r\n");
  });
});

Deno.test("eval server (worker mode): <<<status>>> and <<<interrupt>>> are answered at once, whoever runs, leaving settings as they were", async () => {
  await withTimeout(30_000, async () => {
    await using server = await startEvalServer({ port: 0, worker: true });
    await using asker = await connectEvalServer({ port: server.port });
    await asker.consoleMode({ echo: false });
    assert.equal(asker.prompt, ":> ");
    assert.equal(await asker.running(), undefined);
    assert.equal(asker.prompt, ":> ", "the reply keeps the console's prompt");
    const started = Promise.withResolvers<void>();
    await using runner = await connectEvalServer({
      port: server.port,
      onPush: (text) => text === "spinning" && started.resolve(),
    });
    const runaway = runner.send('sendSocketClients("spinning"); while (true) {}');
    runaway.catch(() => {}); // awaited below
    await started.promise;
    const running = await asker.running();
    assert.match(running?.door ?? "", /^eval sock\d+ \(127\.0\.0\.1:\d+\)$/);
    assert.equal(running?.code, 'sendSocketClients("spinning"); while (true) {}');
    const { running: stopped, interrupted } = await asker.interruptRunning();
    assert.equal(interrupted, true);
    assert.equal(stopped?.door, running?.door);
    assert.match(await runaway, /^Interrupted: evaluation aborted; the worker was restarted/);
    assert.deepEqual(await asker.interruptRunning(), { running: undefined, interrupted: false });
    assert.equal(await asker.send("{"), "", "still in console mode: multi-line input waits");
    assert.equal(asker.prompt, ":+ ");
    assert.equal(await asker.send("1 + 1 }"), "2");
  });
});

Deno.test("eval server: 200 clients × 50 transactions on one counter", async () => {
  await withTimeout(60_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    await using setup = await Raw.open(server.port);
    await setup.exchange("let sharedCounter = 0", "");
    const clients = await Promise.all(Array.from({ length: 200 }, () => Raw.open(server.port)));
    try {
      await Promise.all(clients.map(async (c, i) => {
        for (let k = 0; k < 50; k++) {
          // Each reply names its client and step, so a misrouted reply fails the test.
          await c.exchange(`sharedCounter++; '${i}:${k}'`, `"${i}:${k}"\r\n`);
          assert.equal(await c.take(2), "\r\n");
        }
      }));
    } finally {
      for (const c of clients) await c[Symbol.asyncDispose]();
    }
    await setup.exchange("sharedCounter", "10000\r\n\r\n");
  });
});
