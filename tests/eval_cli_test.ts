/**
 * `rsock eval` (in-process through main()) and `rsock console` (a real subprocess with piped
 * standard input) against a server started by the test.
 */
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { startEvalServer } from "../eval/mod.ts";
import { withTimeout } from "./_peers.ts";
import { captured, rsock } from "./_process.ts";

Deno.test("rsock eval prints the result and exits non-zero on an error", async () => {
  await withTimeout(20_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    const port = String(server.port);
    const ok = captured();
    assert.equal(await main(["eval", "--port", port, "console.log('hi');", "6 * 7"], ok), 0);
    assert.equal(ok.out, "hi\n42\n");
    const failed = captured();
    assert.equal(await main(["eval", "--port", port, "throw new Error('bad')"], failed), 1);
    assert.equal(failed.err, "Uncaught Error: bad\n");
    const incomplete = captured();
    assert.equal(await main(["eval", "--port", port, "(1 +"], incomplete), 1);
    assert.match(incomplete.err, /^Error: incomplete command in single line mode/);
    const usage = captured();
    // Not `main(["eval", "--port", port])`: with no CODE it reads this process's standard
    // input, which a test must not consume (tests/eval_input_cli_test.ts covers it).
    assert.equal(await main(["eval", "--port", port, "--file", "x.ts", "1"], usage), 2);
    assert.match(usage.err, /give the code once/);
    const refused = captured();
    await server.close();
    assert.equal(await main(["eval", "--port", port, "1"], refused), 1);
    assert.match(refused.err, /Cannot connect to "127\.0\.0\.1:\d+": connection refused/);
  });
});

Deno.test("rsock console: prompts, multi-line input, shared state, pushes", async () => {
  await withTimeout(30_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    await server.session.evaluate("let fromHost = 'host value'");
    await using child = rsock([`--allow-net=127.0.0.1:${server.port}`], [
      "console",
      "--port",
      String(server.port),
    ], { stdin: "piped" });
    const writer = child.child.stdin.getWriter();
    await writer.write(
      new TextEncoder().encode(
        "fromHost\nfunction twice(x: number) {\n  return 2 * x\n}\ntwice(21)\n" +
          "sendSocketClients('a note'); 'after'\n",
      ),
    );
    await writer.close();
    const status = await child.finished();
    assert.equal(status.code, 0, child.stderr);
    // The push shows on its own line, before the reply of the code that sent it.
    assert.equal(
      child.stdout,
      ':> "host value"\n:> :+ :+ :> 42\n:> \na note\n"after"\n:> \n',
    );
  });
});

Deno.test("rsock serve: worker by default, --in-process to opt out, --timeout only with a worker", async () => {
  const usage = captured();
  assert.equal(
    await main(["serve", "--in-process", "--timeout", "100ms", "--eval", "0"], usage),
    2,
  );
  assert.match(usage.err, /--timeout does not work with --in-process/);
  const both = captured();
  assert.equal(await main(["serve", "--in-process", "--worker", "--eval", "0"], both), 2);
  assert.match(both.err, /--in-process and --worker contradict each other/);
  const help = captured();
  assert.equal(await main(["serve", "--help"], help), 0);
  assert.match(help.out + help.err, /--in-process +run the session in rsock.s own thread/);
});

Deno.test("rsock eval: errors come from the wire's signal with rsock, from the text with R", async (t) => {
  await withTimeout(20_000, async () => {
    await t.step("rsock's server: printed text that looks like an error is not one", async () => {
      await using server = await startEvalServer({ port: 0 });
      const port = String(server.port);
      const logged = captured();
      assert.equal(
        await main(["eval", "--port", port, 'console.log("Error: logged"); 1'], logged),
        0,
      );
      assert.equal(logged.out, "Error: logged\n1\n");
      assert.equal(logged.err, "");
      const uncaught = captured();
      assert.equal(await main(["eval", "--port", port, "'Uncaught'"], uncaught), 0);
      assert.equal(uncaught.out, '"Uncaught"\n');
      const thrown = captured();
      assert.equal(
        await main(["eval", "--port", port, "throw new Error('Error: real')"], thrown),
        1,
      );
      assert.equal(thrown.err, "Uncaught Error: Error: real\n");
    });

    await t.step("a server that answers like R's svSocket: the text rule", async () => {
      // What svSocket 1.1.5 sends back for the lines rsock eval sends (see spec/eval.md): the
      // hidden JavaScript that turns markErrors on is an R syntax error.
      await using server = await startEvalServer({
        port: 0,
        process: ({ parsed }) => {
          const code = parsed.code;
          const stop = /^stop\("(.*)"\)$/.exec(code);
          const cat = /^cat\("(.*)"\)$/.exec(code);
          const results = code.startsWith("void parSocket(")
            ? `Error: unexpected '{' in "void parSocket("`
            : stop
            ? `Error: ${stop[1]}`
            : cat
            ? cat[1]!
            : "[1] 2";
          return `${results}\n\n\f`;
        },
      });
      const port = String(server.port);
      const ok = captured();
      assert.equal(await main(["eval", "--port", port, "1 + 1"], ok), 0);
      assert.equal(ok.out, "[1] 2\n");
      const failed = captured();
      assert.equal(await main(["eval", "--port", port, 'stop("boom")'], failed), 1);
      assert.equal(failed.err, "Error: boom\n");
    });
  });
});
