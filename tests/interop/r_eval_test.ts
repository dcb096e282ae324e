/**
 * R against the eval server, both ways:
 * - R as a client: base R `socketConnection()` + `cat(code, "\n", file = con)` + `readLines()`
 *   (the seed's `runServer()` pattern) drives rsock's server with JavaScript;
 * - the R side of rsock's svSocket client: svSocket cannot be installed here, so the exact R
 *   code `evalServer()` sends is run through Rscript, and what R prints is decoded by the
 *   client's own functions.
 */
import assert from "node:assert/strict";
import {
  connectEvalServer,
  type EvalConnection,
  evalServer,
  RemoteEvalError,
  startEvalServer,
} from "../../eval/mod.ts";
import { assignLine, hexToBytes, taggedValue, valueLine } from "../../eval/_dialect.ts";
import { simplify, unserialize } from "../../serial/mod.ts";
import { freePort, interopTest, withTimeout } from "../_peers.ts";
import { rsock, TestProcess, WORKER_READ } from "../_process.ts";

function rscript(code: string): TestProcess {
  return new TestProcess("/usr/bin/Rscript", ["--vanilla", "-e", code]);
}

interopTest("R socketConnection client drives the rsock eval server", ["Rscript"], async () => {
  await withTimeout(60_000, async () => {
    await using server = await startEvalServer({ port: 0 });
    await using r = rscript(`
      con <- socketConnection(host = "127.0.0.1", port = ${server.port}, blocking = TRUE,
                              open = "r+", timeout = 20)
      # Bare mode, as the seed does it: one line out, the reply lines back.
      cat("1 + 1", "\\n", file = con)
      print(readLines(con, n = 2))
      # <<<q>>>: every reply ends in a form feed, so empty replies are read too.
      ask <- function(code) {
        cat("<<<q>>>", code, "\\n", file = con, sep = "")
        out <- character(0)
        repeat {
          line <- readLines(con, n = 1)
          if (length(line) == 0 || line == "\\f") break
          out <- c(out, line)
        }
        cat("REPLY", code, "=>", paste(head(out, -1), collapse = "|"), "\\n")
      }
      ask("let total = 0")
      ask("for (let i = 1; i <= 10; i++) total += i; total")
      ask("console.log('from JS'); [1, 2, 3].map((x) => x * 2)")
      ask("const label: string = 'typed'; label")
      ask("missing + 1")
      ask("parSocket(<<<s>>>).last === '\\\\n\\\\f'")
      close(con)
    `);
    const status = await r.finished();
    assert.equal(status.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        '[1] "2" "" ',
        "REPLY let total = 0 =>  ",
        "REPLY for (let i = 1; i <= 10; i++) total += i; total => 55 ",
        "REPLY console.log('from JS'); [1, 2, 3].map((x) => x * 2) => from JS|[ 2, 4, 6 ] ",
        `REPLY const label: string = 'typed'; label => "typed" `,
        "REPLY missing + 1 => Uncaught ReferenceError: missing is not defined ",
        "REPLY parSocket(<<<s>>>).last === '\\n\\f' => true ",
        "",
      ].join("\n"),
    );
  });
});

/** Runs the R code of one client line (after its `<<<h>>>`) the way svSocket evaluates it. */
async function runLineInR(lines: string[]): Promise<string> {
  const code = lines.map((line) => line.replace(/^<<<h>>>/, "")).join("\n");
  await using r = rscript(code);
  const status = await r.finished();
  assert.equal(status.code, 0, r.stderr);
  return r.stdout.replaceAll("\r\n", "\n");
}

interopTest("evalServer's R code runs in R and its reply decodes", ["Rscript"], async () => {
  await withTimeout(60_000, async () => {
    const output = await runLineInR([
      assignLine("r", "fromDeno", { n: [1, 2.5], s: 'q"uote', ok: true }),
      `cat(identical(fromDeno, list(n = c(1, 2.5), s = 'q"uote', ok = TRUE)), "\\n")`,
      valueLine("r", "fromDeno$n * 2"),
      valueLine("r", "stop('boom')"),
      valueLine("r", "list(ints = 1:3, label = 'é', flag = NA, nested = list(x = 0.5))"),
    ]);
    const [identical, valueReply, errorReply, listReply] = output.split("\n");
    assert.equal(identical, "TRUE ", "assign() rebuilt the value in R");
    const hex = taggedValue(valueReply!);
    assert.ok(hex !== undefined, output);
    const bytes = hexToBytes(hex);
    // serialize(c(2, 5), NULL): XDR ("X\\n"), version 3, a REALSXP (0x0e) of length 2.
    assert.deepEqual([...bytes.subarray(0, 6)], [0x58, 0x0a, 0x00, 0x00, 0x00, 0x03]);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const tail = bytes.length - 2 * 8;
    assert.equal(view.getUint32(tail - 8), 0x0e, "REALSXP");
    assert.equal(view.getUint32(tail - 4), 2, "length 2");
    assert.deepEqual([view.getFloat64(tail), view.getFloat64(tail + 8)], [2, 5]);
    assert.deepEqual(simplify(unserialize(bytes)), [2, 5], "rsock's reader decodes it");
    assert.deepEqual(simplify(unserialize(hexToBytes(taggedValue(listReply!)!))), {
      ints: [1, 2, 3],
      label: "é",
      flag: null,
      nested: { x: 0.5 },
    });
    assert.equal(taggedValue(errorReply!), undefined);
    assert.match(errorReply!, /^Error: boom/);
  });
});

/**
 * A stand-in for svSocket's server loop, in base R (svSocket itself cannot be installed
 * here): one client, svSocket's markers for ids, `<<<q>>>`/`<<<h>>>` and `<<<n>>>`, visible
 * values printed, replies as results + "\n\f" + newline.
 */
const R_SERVER = (port: number) => `
con <- socketConnection(port = ${port}, server = TRUE, blocking = TRUE, open = "r+", timeout = 30)
repeat {
  line <- readLines(con, n = 1)
  if (length(line) == 0) break
  line <- sub("^<<<id=[A-Za-z0-9]+>>>", "", line)
  line <- sub("^<<<[qhe]>>>", "", line)
  line <- gsub("<<<n>>>", "\n", line, fixed = TRUE)
  out <- capture.output(res <- try({
    r <- withVisible(eval(parse(text = line), envir = .GlobalEnv))
    if (r$visible) print(r$value)
  }, silent = TRUE))
  if (inherits(res, "try-error")) {
    out <- c(out, paste0("Error: ", conditionMessage(attr(res, "condition"))))
  }
  cat(paste(c(out, ""), collapse = "\n"), "\n\f\n", file = con, sep = "")
}
close(con)
`;

interopTest("evalServer against an R server loop: values both ways", ["Rscript"], async () => {
  await withTimeout(60_000, async () => {
    const port = freePort();
    await using r = rscript(R_SERVER(port));
    let conn: EvalConnection | undefined;
    const deadline = Date.now() + 30_000;
    while (conn === undefined) {
      try {
        conn = await connectEvalServer({ port, dialect: "r", name: "deno" });
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    try {
      assert.equal(await conn.send("1 + 1"), "[1] 2");
      assert.equal(await evalServer(conn, "sum(1:10)"), 55);
      await evalServer(conn, "fromDeno", { a: [1, 2], label: "hi" });
      assert.deepEqual(await evalServer(conn, "fromDeno$a * 2"), [2, 4]);
      assert.deepEqual(await evalServer(conn, "list(n = nchar(fromDeno$label), ok = TRUE)"), {
        n: 2,
        ok: true,
      });
      await assert.rejects(evalServer(conn, "stop('boom')"), (error: unknown) => {
        assert.ok(error instanceof RemoteEvalError);
        assert.match(error.message, /^Error: boom/);
        return true;
      });
    } finally {
      conn.close();
    }
    assert.equal((await r.finished()).code, 0, r.stderr);
  });
});

/**
 * A stand-in for svSocket's settings function, as a package named svSocket in a temporary
 * library (svSocket itself cannot be installed here): `par_socket_server(client, port, ...)`
 * stores the settings it is given, as svSocket does per client.
 */
async function stubSvSocket(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "rsock-svsocket-" });
  const source = `${root}/src/svSocket`;
  await Deno.mkdir(`${source}/R`, { recursive: true });
  await Deno.mkdir(`${root}/lib`);
  await Deno.writeTextFile(
    `${source}/DESCRIPTION`,
    "Package: svSocket\nVersion: 0.0.1\nTitle: Stub\nDescription: Settings stub for tests.\n" +
      "License: MIT\nAuthor: rsock\nMaintainer: rsock <rsock@example.org>\n",
  );
  await Deno.writeTextFile(`${source}/NAMESPACE`, "export(par_socket_server)\n");
  await Deno.writeTextFile(
    `${source}/R/settings.R`,
    "par_socket_server <- function(client, server_port = 8888, ...) {\n" +
      "  changes <- list(...)\n" +
      "  if (!is.null(changes$echo)) options(svsocket.echo = changes$echo)\n" +
      "  invisible(NULL)\n}\n",
  );
  const install = await new Deno.Command("/usr/bin/R", {
    args: ["CMD", "INSTALL", "--no-test-load", `--library=${root}/lib`, source],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(install.success, new TextDecoder().decode(install.stderr));
  return root;
}

/** An R loop with svSocket's console-mode echo, reading its settings from the stub. */
const R_CONSOLE_SERVER = (port: number, library: string) => `
.libPaths(c(${JSON.stringify(library)}, .libPaths()))
con <- socketConnection(port = ${port}, server = TRUE, blocking = TRUE, open = "r+", timeout = 30)
options(svsocket.console = FALSE, svsocket.echo = FALSE)
repeat {
  line <- readLines(con, n = 1)
  if (length(line) == 0) break
  line <- sub("^<<<id=[A-Za-z0-9]+>>>", "", line)
  line <- gsub("<<<n>>>", "\\n", line, fixed = TRUE)
  line <- gsub("<<<s>>>", '"sock1", ${port}', line, fixed = TRUE)
  marker <- regmatches(line, regexpr("^<<<[QqehHu]>>>", line))
  line <- sub("^<<<[QqehHu]>>>", "", line)
  if (identical(marker, "<<<e>>>")) options(svsocket.console = TRUE, svsocket.echo = TRUE)
  if (identical(marker, "<<<h>>>")) options(svsocket.console = FALSE)
  console <- isTRUE(getOption("svsocket.console"))
  # As svSocket: the settings before the code ran decide the reply.
  out <- if (console && isTRUE(getOption("svsocket.echo"))) paste0(":> ", line) else character(0)
  out <- c(out, capture.output(res <- try({
    r <- withVisible(eval(parse(text = line), envir = .GlobalEnv))
    if (r$visible) print(r$value)
  }, silent = TRUE)))
  if (inherits(res, "try-error")) {
    out <- c(out, paste0("Error: ", conditionMessage(attr(res, "condition"))))
  }
  prompt <- if (console) ":> " else ""
  cat(paste(c(out, ""), collapse = "\\n"), "\\n\\f", prompt, "\\n", file = con, sep = "")
}
close(con)
`;

interopTest("rsock console turns the echo off through svSocket's own settings function", [
  "Rscript",
], async () => {
  await withTimeout(60_000, async () => {
    const root = await stubSvSocket();
    try {
      const port = freePort();
      await using r = rscript(R_CONSOLE_SERVER(port, `${root}/lib`));
      // The R loop takes one connection: the console itself, retried until R listens.
      const deadline = Date.now() + 30_000;
      let stdout = "";
      while (true) {
        await using console_ = rsock([`--allow-net=127.0.0.1:${port}`], [
          "console",
          "--port",
          String(port),
        ], { stdin: "piped" });
        const writer = console_.child.stdin.getWriter();
        await writer.write(new TextEncoder().encode("1 + 1\nx <- 5\nx\n")).catch(() => {});
        await writer.close().catch(() => {});
        const status = await console_.finished();
        if (status.code === 0) {
          stdout = console_.stdout;
          break;
        }
        assert.match(console_.stderr, /connection refused/, console_.stderr);
        if (Date.now() > deadline) throw new Error("R never listened");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Each command once (the terminal shows what was typed): no ":> 1 + 1" echoed back.
      assert.equal(stdout, ":> [1] 2\n:> :> [1] 5\n:> \n");
      await r.finished();
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});

interopTest(
  "svSocket's evalServer() lines from R get rsock serve's answer at once: it runs JavaScript",
  ["Rscript"],
  async () => {
    await withTimeout(60_000, async () => {
      await using serve = rsock(
        ["--allow-net=127.0.0.1", "--allow-sys", WORKER_READ],
        ["serve", "--eval", "0"],
      );
      const port = (await serve.waitForOutput(/eval +tcp:\/\/127\.0\.0\.1:(\d+)/))[1];
      // What svSocket's eval_socket_server() writes (R/eval_socket_server.R), built the same
      // way, and read the way it reads: until a line with <<<endflag>>>, then what follows
      // <<<startflag>>> is sourced. A reply without <<<endflag>>> fails here instead of hanging.
      await using r = rscript(String.raw`
        con <- socketConnection(host = "127.0.0.1", port = ${port}, open = "r+",
                                blocking = FALSE)
        untilEndFlag <- function() {
          got <- character(0)
          deadline <- Sys.time() + 20
          while (!any(grepl("<<<endflag>>>", got, fixed = TRUE))) {
            if (Sys.time() > deadline) { cat("NO ENDFLAG:", got, "\n"); quit(status = 3) }
            more <- readLines(con, n = 1000, warn = FALSE)
            if (!length(more)) Sys.sleep(0.01)
            got <- c(got, more)
          }
          got[seq_len(grep("<<<endflag>>>", got, fixed = TRUE)[1] - 1)]
        }
        x <- gsub('"', '\\\\"', "1+1")
        cat('..Last.value <- try(eval(parse(text = "', x,
          '"))); .f <- file(); dump("..Last.value", file = .f); flush(.f); seek(.f, 0); cat("\\n<<<startflag>>>", gsub("<pointer: [0-9a-fx]+>", "NULL", readLines(.f)), "<<<endflag>>>\\n", sep = "\\n"); close(.f); rm(.f, ..Last.value); flush.console()\n',
          file = con, sep = "")
        got <- untilEndFlag()
        after <- got[-seq_len(grep("<<<startflag>>>", got, fixed = TRUE)[1])]
        value <- tryCatch({
          source(textConnection(after), local = TRUE, echo = FALSE)
          "no error"
        }, error = function(e) conditionMessage(e))
        cat("VALUE:", value, "\n")
        .f <- file()
        ..Last.value <- 42
        dump("..Last.value", file = .f)
        flush(.f)
        seek(.f, 0)
        cat(readLines(.f), ';', "y",
          ' <- ..Last.value; rm(..Last.value); cat("\\n<<<endflag>>>\\n"); flush.console()\n',
          file = con, sep = "")
        close(.f)
        got <- untilEndFlag()
        cat("ASSIGN:", got[got != ""], "\n")
        close(con)
      `);
      const status = await r.finished();
      assert.equal(status.code, 0, r.stdout + r.stderr);
      const lines = r.stdout.split("\n");
      const notR = /rsock: it evaluates JavaScript, not R, so svSocket's evalServer\(\) cannot/;
      assert.match(lines.find((line) => line.startsWith("VALUE:")) ?? r.stdout, notR);
      assert.match(lines.find((line) => line.startsWith("ASSIGN:")) ?? r.stdout, notR);
    });
  },
);
