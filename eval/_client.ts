/**
 * The client side of svSocket's wire: one connection, a low-level `send(line)` that reads one
 * reply, and `evalServer()` that moves values both ways, against rsock's server (JavaScript)
 * or R's svSocket (R code, values through `serialize()`).
 *
 * @module
 */

import { ConnectionError, describeNetworkError, ProtocolError } from "../_internal/errors.ts";
import { ERROR_MARKER, parseStatus, PUSH_MARKER, type SessionStatus } from "./_protocol.ts";
import type { RunningEvaluation } from "./_session.ts";
import { assignLine, decodeR, hexToBytes, taggedValue, valueLine } from "./_dialect.ts";

/** The server evaluated the code and reported an error. */
export class RemoteEvalError extends Error {
  /** The code that failed. */
  readonly code: string;
  /**
   * Creates the error.
   *
   * @example
   * ```ts
   * import { RemoteEvalError } from "@x/rsock/eval";
   * throw new RemoteEvalError("Uncaught ReferenceError: x is not defined", "x + 1");
   * ```
   */
  constructor(message: string, code: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RemoteEvalError";
    this.code = code;
  }
}

/** Options of {@linkcode connectEvalServer}. */
export interface EvalClientOptions {
  /** The server's port. @default 8888 */
  readonly port?: number;
  /** The server's address. @default "127.0.0.1" */
  readonly hostname?: string;
  /** Client name sent as `<<<id=NAME>>>` (letters and digits), so settings survive reconnects. */
  readonly name?: string;
  /** The server's token, sent as the first line. */
  readonly token?: string;
  /** Connect with TLS; `caCerts` adds trusted certificates (PEM). */
  readonly tls?: { readonly caCerts?: string[] };
  /**
   * What the server evaluates: `"rsock"` (JavaScript) or `"r"` (R's svSocket). Decides how
   * {@linkcode evalServer} wraps code and decodes values, and how
   * {@linkcode EvalConnection.evaluate} tells errors. `"auto"` asks the server once at connect
   * (a hidden line that turns on rsock's `markErrors` setting, and that R refuses).
   *
   * @default "rsock"
   */
  readonly dialect?: "rsock" | "r" | "auto";
  /**
   * For an R server: turns the bytes of `serialize(value, NULL)` into a JS value in
   * {@linkcode evalServer}.
   *
   * @default rsock's R-serialization reader, simplified (`simplify(unserialize(bytes))`)
   */
  readonly decode?: RDecoder;
  /** Stops connecting, and closes the connection later, when aborted. */
  readonly signal?: AbortSignal;
  /**
   * Gets the text the server pushes (`sendSocketClients()`), as soon as it arrives, apart from
   * replies. rsock servers only: the client turns on the `framePushes` setting for itself. Without
   * it a push is plain text, as in svSocket, and one that arrives while a `send()` waits ends up
   * at the start of that reply.
   */
  readonly onPush?: (text: string) => void;
  /**
   * Told at connect, before the connection's own setup lines (which wait their turn behind
   * the session), of the evaluation the server runs now, if any, so a client can say why it
   * waits and offer to interrupt it. rsock servers only (R's svSocket has no such request).
   */
  readonly onBusy?: (running: RunningEvaluation) => void;
}

/** What {@linkcode EvalConnection.interruptRunning} did. */
export interface InterruptResult {
  /** The evaluation that was running when the request arrived, or undefined (idle). */
  readonly running: RunningEvaluation | undefined;
  /** True when it was interrupted. */
  readonly interrupted: boolean;
}

const encoder = new TextEncoder();
const START = /^((?:<<<id=[A-Za-z0-9]+>>>)?(?:<<<esc>>>)?)(<<<[QqehHu]>>>)?/;

/** What {@linkcode EvalConnection.evaluate} gives: the reply and whether it reports an error. */
export interface EvalReply {
  /** The reply's results (console output, then the value), line ends as `\n`. */
  readonly text: string;
  /**
   * True when the evaluation failed. From rsock's server this is its `markErrors` signal on
   * the wire; from R's svSocket, which has none, the text rule: the reply starts with
   * `Error` (`Error: `, `Error in `).
   */
  readonly error: boolean;
}

/** True when an R svSocket reply reports an error (svSocket marks errors only in the text). */
function isRErrorText(text: string): boolean {
  return /^(Error: |Error in |Interrupted: )/.test(text);
}

/**
 * A connection to an evaluation server (rsock's or R svSocket's).
 *
 * @example
 * ```ts
 * import { connectEvalServer, type EvalConnection } from "@x/rsock/eval";
 * await using conn: EvalConnection = await connectEvalServer({ port: 8888 });
 * console.log(await conn.send("1 + 1")); // "2"
 * ```
 */
export class EvalConnection implements AsyncDisposable {
  /** How code is wrapped by {@linkcode evalServer} (`"auto"` is resolved at connect). */
  dialect: "rsock" | "r";
  /** The server marks failed evaluations (rsock's `markErrors` setting is on). */
  #marksErrors = false;
  #askedMarks = false;
  /** Decodes R values for {@linkcode evalServer} (dialect `"r"`). */
  readonly decode: RDecoder;
  /** The prompt that ended the last reply (`""` in bare mode, `":> "` or `":+ "` in console mode). */
  prompt = "";
  readonly #conn: Deno.Conn;
  readonly #name: string | undefined;
  readonly #decoder = new TextDecoder();
  readonly #buffer = new Uint8Array(65_536);
  #received = "";
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #skip = 0;
  #busy = false;
  // With onPush, one reader takes every frame off the wire: pushes go to onPush, replies here.
  readonly #onPush: ((text: string) => void) | undefined;
  readonly #replies: string[] = [];
  #replyWaiter: PromiseWithResolvers<string> | undefined;
  #readerError: Error | undefined;
  #reader: Promise<void> | undefined;

  /** Use {@linkcode connectEvalServer}. */
  constructor(conn: Deno.Conn, options: EvalClientOptions) {
    this.#conn = conn;
    this.#name = options.name;
    this.dialect = options.dialect === "r" ? "r" : "rsock";
    this.decode = options.decode ?? decodeR;
    this.#onPush = options.onPush;
    if (this.#onPush !== undefined) this.#reader = this.#readAll();
  }

  /**
   * Sends one line (a transaction) and returns the reply's results, line ends as `\n`, without
   * the end marker; newlines inside `line` are sent as `<<<n>>>`. `<<<q>>>` is added (unless
   * the line starts with another marker) so that every reply ends in a form feed and an empty
   * reply is recognised. Lines starting with `<<<Q>>>`, `<<<H>>>` or `<<<u>>>` get no reply:
   * they resolve to `""` once written.
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * await using conn = await connectEvalServer({ port: 8888 });
   * const text = await conn.send("1 + 1"); // "2"
   * ```
   */
  send(line: string): Promise<string> {
    return this.#enqueue(line).then((reply) => reply.text);
  }

  /**
   * Sends `code` as {@linkcode send} does and tells whether the evaluation failed — from a
   * signal on the wire with rsock's server (its `markErrors` setting, turned on here the first
   * time), so output that merely looks like an error (`console.log("Error: x")`) is not taken
   * for one; from the reply's text with R's svSocket.
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * await using conn = await connectEvalServer({ port: 8888 });
   * const { text, error } = await conn.evaluate('console.log("Error: logged"); 1');
   * // text === "Error: logged\n1", error === false
   * ```
   */
  async evaluate(code: string): Promise<EvalReply> {
    if (this.dialect === "rsock" && !this.#marksErrors && !this.#askedMarks) {
      this.#askedMarks = true;
      await this.markErrors();
    }
    const reply = await this.#enqueue(code);
    return this.#marksErrors ? reply : { text: reply.text, error: isRErrorText(reply.text) };
  }

  /**
   * Turns on rsock's `markErrors` setting for this client (a hidden line). Returns false when
   * the server refused: R's svSocket cannot run that JavaScript, and the connection's
   * `dialect` then becomes `"r"`; an rsock server too old for the setting answers
   * with a JavaScript error and stays `"rsock"`, its errors told by their text.
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * await using conn = await connectEvalServer({ port: 8888 });
   * await conn.markErrors(); // true against rsock's server
   * ```
   */
  async markErrors(): Promise<boolean> {
    const reply = await this.send("<<<h>>>void parSocket(<<<s>>>, { markErrors: true })");
    this.#marksErrors = reply === "";
    if (!this.#marksErrors && !reply.startsWith("Uncaught ")) this.dialect = "r";
    return this.#marksErrors;
  }

  /**
   * Switches this client to svSocket's console mode (`<<<e>>>`: prompts, multi-line input),
   * with the server's echo of the code on or off, through the server's own settings function:
   * rsock's `parSocket(<<<s>>>, …)` or R svSocket's `par_socket_server(<<<s>>>, …)`.
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * await using conn = await connectEvalServer({ port: 8888, dialect: "auto" });
   * await conn.consoleMode({ echo: false }); // a terminal already shows what was typed
   * ```
   */
  async consoleMode(options: { readonly echo?: boolean } = {}): Promise<void> {
    const echo = options.echo ?? true;
    await this.send(
      this.dialect === "r"
        ? `<<<e>>>invisible(svSocket::par_socket_server(<<<s>>>, echo = ${
          echo ? "TRUE" : "FALSE"
        }))`
        : `<<<e>>>void parSocket(<<<s>>>, { echo: ${echo} })`,
    );
  }

  /**
   * Asks an rsock server what its session runs now, whoever sent it: answered without
   * evaluating anything, so at once even while a runaway holds the session (after this
   * connection's own earlier lines). Undefined when the session is idle; `code` holds the
   * first 60 characters. Throws a `ProtocolError` from a server that cannot tell (R's svSocket).
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * await using conn = await connectEvalServer({ port: 8888 });
   * const running = await conn.running();
   * if (running) console.log(`busy since ${running.since.toISOString()} with ${running.door}`);
   * ```
   */
  async running(): Promise<RunningEvaluation | undefined> {
    return runningOf(await this.#control("status"));
  }

  /**
   * Interrupts the evaluation an rsock server runs now, whoever sent it (another client, the
   * browser console, an NNG request), the moment the request arrives: it never waits behind
   * the runaway. Code waiting on a top-level `await` is given up on and the session's state
   * kept; in worker mode synchronous code costs a restart of the worker and the state.
   * Throws a `ProtocolError` from a server that cannot (R's svSocket).
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * await using conn = await connectEvalServer({ port: 8888 });
   * const { running, interrupted } = await conn.interruptRunning();
   * if (interrupted) console.log(`interrupted ${running?.door}`);
   * ```
   */
  async interruptRunning(): Promise<InterruptResult> {
    const status = await this.#control("interrupt");
    return { running: runningOf(status), interrupted: status.interrupted === true };
  }

  async #control(request: "status" | "interrupt"): Promise<SessionStatus> {
    // Hidden, so R's svSocket (which cannot answer) does not echo it on its console.
    const reply = await this.send(`<<<h>>><<<${request}>>>`);
    const status = parseStatus(reply);
    if (status === undefined) {
      throw new ProtocolError(
        `the server does not answer <<<${request}>>> (R's svSocket, or an rsock older than ` +
          `it); it replied ${JSON.stringify(reply.slice(0, 80))}`,
      );
    }
    return status;
  }

  #enqueue(line: string): Promise<EvalReply> {
    const run = this.#queue.then(() => this.#send(line));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #send(line: string): Promise<EvalReply> {
    if (this.#closed) throw new ConnectionError("Cannot send: the connection is closed");
    let text = line.replaceAll("\r\n", "\n").replaceAll("\n", "<<<n>>>");
    if (this.#name !== undefined && !text.startsWith("<<<id=")) {
      text = `<<<id=${this.#name}>>>${text}`;
    }
    const match = START.exec(text)!;
    const marker = match[2];
    if (marker === undefined) {
      text = `${match[1]}<<<q>>>${text.slice(match[1]!.length)}`;
    }
    this.#busy = true;
    try {
      await this.#write(text + "\n");
      if (marker === "<<<Q>>>" || marker === "<<<H>>>" || marker === "<<<u>>>") {
        return { text: "", error: false };
      }
      const reply = await this.#readReply();
      return reply.startsWith(ERROR_MARKER)
        ? { text: reply.slice(ERROR_MARKER.length), error: true }
        : { text: reply, error: false };
    } finally {
      this.#busy = false;
    }
  }

  async #write(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    try {
      let offset = 0;
      while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
    } catch (error) {
      throw new ConnectionError(`Cannot send to the eval server: ${describeNetworkError(error)}`, {
        cause: error,
      });
    }
  }

  /**
   * Sends `<<<esc>>>` at once, past any transaction in flight: on an rsock server in worker
   * mode this interrupts the running evaluation of this client; everywhere it drops pending
   * multi-line code. The extra reply it causes is skipped.
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * await using conn = await connectEvalServer({ port: 8888 });
   * const pending = conn.send("while (true) {}");
   * await conn.interrupt();
   * await pending; // "Interrupted: …" from a worker-mode server
   * ```
   */
  async interrupt(): Promise<void> {
    if (!this.#busy) {
      await this.send("<<<esc>>>");
      return;
    }
    const id = this.#name === undefined ? "" : `<<<id=${this.#name}>>>`;
    this.#skip++;
    await this.#write(`${id}<<<esc>>><<<q>>>\n`);
  }

  async #readReply(): Promise<string> {
    const reply = await this.#readOne();
    while (this.#skip > 0) {
      this.#skip--;
      await this.#readOne();
    }
    return reply;
  }

  #readOne(): Promise<string> {
    if (this.#reader === undefined) return this.#readFrame();
    const reply = this.#replies.shift();
    if (reply !== undefined) return Promise.resolve(reply);
    if (this.#readerError !== undefined) return Promise.reject(this.#readerError);
    this.#replyWaiter = Promise.withResolvers<string>();
    return this.#replyWaiter.promise;
  }

  /** The reader behind `onPush`: sorts frames into pushes and replies until the connection ends. */
  async #readAll(): Promise<void> {
    try {
      while (true) {
        const frame = await this.#readFrame();
        if (frame.startsWith(PUSH_MARKER)) {
          try {
            this.#onPush!(frame.slice(PUSH_MARKER.length));
          } catch {
            // The caller's handler must not stop the connection.
          }
          continue;
        }
        const waiter = this.#replyWaiter;
        this.#replyWaiter = undefined;
        if (waiter !== undefined) waiter.resolve(frame);
        else this.#replies.push(frame);
      }
    } catch (error) {
      this.#readerError = error instanceof Error ? error : new Error(String(error));
      this.#replyWaiter?.reject(this.#readerError);
      this.#replyWaiter = undefined;
    }
  }

  /** Reads up to the next form feed and the prompt line after it. */
  async #readFrame(): Promise<string> {
    while (true) {
      const feed = this.#received.indexOf("\f");
      const end = feed < 0 ? -1 : this.#received.indexOf("\n", feed);
      if (end >= 0) {
        const body = this.#received.slice(0, feed);
        const prompt = this.#received.slice(feed + 1, end);
        this.#received = this.#received.slice(end + 1);
        if (!body.startsWith(PUSH_MARKER)) this.prompt = prompt;
        // results + last ("\n\f"): drop last's newline and the results' final newline.
        return body.endsWith("\n") ? body.slice(0, -1).replace(/\n$/, "") : body;
      }
      let n: number | null;
      try {
        n = await this.#conn.read(this.#buffer);
      } catch (error) {
        if (this.#closed) throw new ConnectionError("the connection was closed while waiting");
        throw new ConnectionError(`eval server connection broke: ${describeNetworkError(error)}`, {
          cause: error,
        });
      }
      if (n === null) {
        const partial = this.#received.trim();
        this.#received = "";
        throw new ConnectionError(
          `the eval server closed the connection${partial === "" ? "" : `: ${partial}`}`,
        );
      }
      this.#received += this.#decoder.decode(this.#buffer.subarray(0, n), { stream: true })
        .replaceAll("\r\n", "\n");
    }
  }

  /**
   * Closes the connection (idempotent).
   *
   * @example
   * ```ts
   * import { connectEvalServer } from "@x/rsock/eval";
   * const conn = await connectEvalServer({ port: 8888 });
   * conn.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  /** Closes the connection (and waits for its reader to stop, with `onPush`). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#reader;
  }
}

/**
 * Connects to an evaluation server (rsock's `startEvalServer`, or R's svSocket
 * `startSocketServer()`), like svSocket's `socketClientConnection()`.
 *
 * @example
 * ```ts
 * import { connectEvalServer, evalServer } from "@x/rsock/eval";
 * await using conn = await connectEvalServer({ port: 8888, name: "editor" });
 * const sum = await evalServer(conn, "[1, 2, 3].reduce((a, b) => a + b)"); // 6
 * ```
 */
export async function connectEvalServer(options: EvalClientOptions = {}): Promise<EvalConnection> {
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? 8888;
  if (options.onPush !== undefined && options.dialect === "r") {
    throw new TypeError("onPush needs an rsock server; R's svSocket sends pushes as plain text");
  }
  if (options.name !== undefined && !/^[A-Za-z0-9]+$/.test(options.name)) {
    throw new TypeError(`name must be letters and digits only, got "${options.name}"`);
  }
  let conn: Deno.Conn;
  try {
    conn = options.tls === undefined
      ? await Deno.connect({
        hostname,
        port,
        ...(options.signal ? { signal: options.signal } : {}),
      })
      : await Deno.connectTls({
        hostname,
        port,
        ...(options.tls.caCerts ? { caCerts: options.tls.caCerts } : {}),
      });
  } catch (error) {
    throw new ConnectionError(
      `Cannot connect to "${hostname}:${port}": ${describeNetworkError(error)}`,
      { cause: error },
    );
  }
  const connection = new EvalConnection(conn, options);
  if (options.token !== undefined) {
    try {
      await conn.write(encoder.encode(options.token + "\n"));
    } catch (error) {
      conn.close();
      throw new ConnectionError(
        `Cannot connect to "${hostname}:${port}": ${describeNetworkError(error)}`,
        { cause: error },
      );
    }
  }
  options.signal?.addEventListener("abort", () => connection.close(), { once: true });
  if (options.onBusy !== undefined && options.dialect !== "r") {
    try {
      const running = await connection.running();
      if (running !== undefined) options.onBusy(running);
    } catch (error) {
      // R's svSocket (or an older rsock) cannot tell: nothing to say, the setup goes on.
      if (!(error instanceof ProtocolError)) {
        connection.close();
        throw error;
      }
    }
  }
  // "auto": R refuses the JavaScript that turns markErrors on; rsock's server answers nothing.
  if (options.dialect === "auto") await connection.markErrors();
  if (options.onPush !== undefined && connection.dialect === "rsock") {
    // Hidden, so it is neither echoed on the server nor changes this client's visible mode.
    await connection.send("<<<h>>>void parSocket(<<<s>>>, { framePushes: true })");
  }
  return connection;
}

/** The running evaluation a status reply tells of, dated by this machine's clock. */
function runningOf(status: SessionStatus): RunningEvaluation | undefined {
  const running = status.running;
  if (running === null) return undefined;
  return { door: running.door, code: running.code, since: new Date(Date.now() - running.ms) };
}

/** Decoder of R's `serialize()` bytes to a JS value (see {@linkcode EvalClientOptions.decode}). */
export type RDecoder = (bytes: Uint8Array) => unknown;

/**
 * Evaluates `code` on the server and returns its value as a JS value, like svSocket's
 * `evalServer(con, expr)`; with three arguments assigns `value` to the global `name` on the
 * server (`evalServer(con, name, value)`).
 *
 * On an rsock server, `code` is JavaScript run through indirect `eval` in the global scope
 * (so `let`/`const` inside it stay local; use the console or `send()` for REPL semantics) and
 * the value travels as JSON. On an R server (`dialect: "r"`) `code` is R, evaluated in
 * `.GlobalEnv`; the value travels as the hex of `serialize(value, NULL)` and is decoded by
 * the connection's `decode` (by default rsock's R-serialization reader, simplified to plain
 * JS: numbers, strings, arrays, objects for named lists).
 *
 * @example
 * ```ts
 * import { connectEvalServer, evalServer } from "@x/rsock/eval";
 * await using conn = await connectEvalServer({ port: 8888 });
 * await evalServer(conn, "answer", 42);
 * const value = await evalServer(conn, "answer + 1"); // 43
 * ```
 */
export function evalServer(conn: EvalConnection, code: string): Promise<unknown>;
/**
 * Assigns `value` to the global `name` on the server (JSON-like data).
 *
 * @example
 * ```ts
 * import { connectEvalServer, evalServer } from "@x/rsock/eval";
 * await using conn = await connectEvalServer({ port: 8888 });
 * await evalServer(conn, "limits", { max: 10 });
 * ```
 */
export function evalServer(conn: EvalConnection, name: string, value: unknown): Promise<void>;
export async function evalServer(
  conn: EvalConnection,
  codeOrName: string,
  ...value: unknown[]
): Promise<unknown> {
  if (value.length > 0) return await assign(conn, codeOrName, value[0]);
  return await evaluateValue(conn, codeOrName);
}

async function assign(conn: EvalConnection, name: string, value: unknown): Promise<void> {
  const line = assignLine(conn.dialect, name, value);
  const reply = await conn.send(line);
  if (reply !== "") throw new RemoteEvalError(reply, line);
}

async function evaluateValue(conn: EvalConnection, code: string): Promise<unknown> {
  const reply = await conn.send(valueLine(conn.dialect, code));
  const tagged = taggedValue(reply);
  if (tagged === undefined) throw new RemoteEvalError(reply.trim(), code);
  if (conn.dialect === "r") {
    const bytes = hexToBytes(tagged);
    return conn.decode(bytes);
  }
  return (JSON.parse(tagged) as { v?: unknown }).v;
}
