/**
 * The TCP server on svSocket's wire: accepting clients, reading their lines, one transaction
 * at a time in the shared session, and svSocket's default process function. The clients'
 * queues, their settings by name and the functions evaluated code calls live beside it.
 *
 * @module
 */

import { acceptConnections } from "../_internal/accept.ts";
import { isLoopback } from "../_internal/loopback.ts";
import { concatBytes } from "../_internal/bytes.ts";
import { sameSecret } from "../_internal/secret.ts";
import { ProtocolError } from "../_internal/errors.ts";
import { createSession, type EvalSession } from "./_session.ts";
import { Continuation } from "./_continuation.ts";
import { Backlog, Client, type Waiting } from "./_client_queues.ts";
import { ClientRegistry } from "./_client_registry.ts";
import { exposeServerFunctions, registerServer, unregisterServer } from "./_server_functions.ts";
import { utf8Length } from "../_internal/utf8.ts";
import {
  applyMarker,
  changeSettings,
  type ClientSettings,
  codePreview,
  controlRequest,
  echoCode,
  ERROR_MARKER,
  framePush,
  frameReply,
  INCOMPLETE_SINGLE_LINE,
  isBareEscape,
  isEscape,
  isHttpRequestLine,
  type ParsedLine,
  parseLine,
  resultsText,
  type SessionStatus,
  STATUS_MARKER,
  svSocketEvalReply,
} from "./_protocol.ts";

export type { ClientSettings } from "./_protocol.ts";

/** One transaction, as a process function sees it. */
export interface Transaction {
  /** The raw line (without its line end). */
  readonly line: string;
  /** The line taken apart: client name, markers, code. */
  readonly parsed: ParsedLine;
  /** The client's settings (changes persist under its name). */
  readonly settings: ClientSettings;
  /** The connection's name (`sock1`, …). */
  readonly connection: string;
  /** The server. */
  readonly server: EvalServer;
  /** Aborts when the client sends `<<<esc>>>` while this transaction runs. */
  readonly signal: AbortSignal;
  /** svSocket's own processing, to delegate to. */
  defaultProcess(): Promise<string>;
}

/**
 * Replaces svSocket's `procfun`: returns the reply (without the final newline; `""` sends
 * nothing).
 */
export type ProcessFunction = (transaction: Transaction) => string | Promise<string>;

/** Options of {@linkcode startEvalServer}. */
export interface EvalServerOptions {
  /** TCP port; 0 picks a free one. @default 8888 (svSocket's) */
  readonly port?: number;
  /**
   * Address to bind. Anything but loopback requires `token`.
   *
   * @default "127.0.0.1"
   */
  readonly hostname?: string;
  /** An existing session to share; otherwise the server creates one and closes it on close. */
  readonly session?: EvalSession;
  /** When the server creates the session: run it in a worker (see `createSession`). @default false */
  readonly worker?: boolean;
  /** When the server creates the session: time limit per evaluation, worker mode. @default 0 */
  readonly timeout?: number;
  /**
   * A shared secret each client must send as its first line (compared in constant time). A
   * wrong token gets one error line and the connection is closed.
   */
  readonly token?: string;
  /** Milliseconds a client has to send the token before it is disconnected. @default 10000 */
  readonly authTimeout?: number;
  /** TLS certificate and key (PEM): the server speaks TLS (`Deno.listenTls`). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /**
   * Longest line accepted, in bytes, and longest multi-line code a client may build up line
   * by line (console mode); longer gets an error reply and the client is closed.
   *
   * @default 1048576
   */
  readonly maxLineBytes?: number;
  /**
   * Bytes of lines one client may have waiting to be evaluated. At the bound the server stops
   * reading from that client (TCP flow control: nothing is lost) until its lines are served.
   *
   * @default 4194304
   */
  readonly maxBacklogBytes?: number;
  /**
   * Bytes of replies and pushes waiting to be written to one client (it reads too slowly or
   * not at all). At the bound the client is sent `Error: too slow: …` if it can still take it
   * and is closed; one reply larger than the bound alone is still sent.
   *
   * @default 8388608
   */
  readonly maxUnsentBytes?: number;
  /**
   * Client names whose settings are kept (`<<<id=NAME>>>` and names given to `parSocket`).
   * Past the bound, the least recently used name that no connected client is using is
   * forgotten (its settings start again from the defaults). Pending multi-line code kept under
   * names no client is using is bounded in total by 16 × `maxLineBytes` the same way.
   *
   * @default 1000
   */
  readonly maxClientNames?: number;
  /** Line end of replies: svSocket (through Tcl) sends `"\r\n"`. @default "\r\n" */
  readonly lineEnd?: "\r\n" | "\n";
  /** Replaces the default process function (svSocket's `procfun`). */
  readonly process?: ProcessFunction;
  /**
   * Called with what svSocket echoes on the server's own console: each non-hidden line of
   * code, after the prompt (`":> "`, or `":+ "` while multi-line code is pending), e.g. to
   * print it in the host program.
   */
  readonly onEcho?: (client: string, text: string) => void;
  /**
   * Told why the listener could not accept a connection: a client that reset before it was
   * accepted (skipped), or no file descriptors left (retried after a pause from 10 ms up to
   * 1 s). Each kind is told once, not per occurrence; nothing but {@linkcode EvalServer.close}
   * stops the server accepting.
   *
   * @default {undefined} (nothing is reported)
   */
  readonly onError?: (error: Error) => void;
  /**
   * Told of every push (`sendSocketClients()` or {@linkcode EvalServer.push}) as it is sent:
   * `rsock serve --pub` publishes them to its monitors. A throwing hook stops no push.
   */
  readonly onPush?: (text: string, clients: readonly string[] | undefined) => void;
  /** Closes the server when aborted. */
  readonly signal?: AbortSignal;
}

/** A running evaluation server. */
export interface EvalServer extends AsyncDisposable {
  /** The port it listens on (the real one when started with port 0). */
  readonly port: number;
  /** The address it is bound to. */
  readonly hostname: string;
  /** The session every client evaluates in. */
  readonly session: EvalSession;
  /** Names of the connected clients (`sock1`, …, or their `<<<id=…>>>`). */
  readonly clients: readonly string[];
  /** Resolves once the server is closed. */
  readonly closed: Promise<void>;
  /**
   * Settings of a client by name (created with svSocket's defaults if new), like
   * `parSocket(client, port)`; `changes` are applied first.
   */
  settings(client: string, changes?: Partial<ClientSettings>): ClientSettings;
  /** Sends `text` (plus a newline) to the named clients, or all, like `sendSocketClients()`. */
  push(text: string, clients?: readonly string[]): Promise<void>;
  /** Disconnects the named clients, or all, like `closeSocketClients()`. */
  closeClients(clients?: readonly string[]): void;
  /** Stops listening, disconnects every client and, if the server created it, closes the session. */
  close(): Promise<void>;
}

/** Defaults of the per-client bounds (see {@linkcode EvalServerOptions}). */
const DEFAULT_MAX_LINE_BYTES = 1_048_576;
const DEFAULT_MAX_BACKLOG_BYTES = 4_194_304;
const DEFAULT_MAX_UNSENT_BYTES = 8_388_608;
const DEFAULT_MAX_CLIENT_NAMES = 1000;

/** A client went past one of its bounds: the message is sent to it, then it is closed. */
class ClientLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClientLimitError";
  }
}

class Server implements EvalServer {
  readonly port: number;
  readonly hostname: string;
  readonly session: EvalSession;
  readonly closed: Promise<void>;
  readonly #listener: Deno.Listener;
  readonly #ownsSession: boolean;
  readonly #options: EvalServerOptions;
  readonly #maxLineBytes: number;
  readonly #maxBacklogBytes: number;
  readonly #lineEnd: string;
  readonly #clients = new Set<Client>();
  readonly #registry: ClientRegistry;
  readonly #handlers = new Set<Promise<void>>();
  #nextId = 0;
  // An HTTP request (a web page) is reported once, however many pages try.
  #httpReported = false;
  #closing: Promise<void> | undefined;
  readonly #stopAccepting = new AbortController();
  readonly #accepting: Promise<void>;
  readonly #resolveClosed: () => void;

  constructor(
    listener: Deno.Listener,
    session: EvalSession,
    ownsSession: boolean,
    options: EvalServerOptions,
  ) {
    this.#listener = listener;
    this.session = session;
    this.#ownsSession = ownsSession;
    this.#options = options;
    const addr = listener.addr as Deno.NetAddr;
    this.port = addr.port;
    this.hostname = addr.hostname;
    this.#maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.#maxBacklogBytes = options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES;
    // Pending multi-line code under names no client is using is bounded by 16 lines' worth.
    this.#registry = new ClientRegistry(
      options.maxClientNames ?? DEFAULT_MAX_CLIENT_NAMES,
      16 * this.#maxLineBytes,
      () => this.#namesInUse(),
    );
    this.#lineEnd = options.lineEnd ?? "\r\n";
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#resolveClosed = resolve;
    this.#accepting = this.#accept();
  }

  get clients(): readonly string[] {
    return [...this.#clients].map((client) => client.id ?? client.name);
  }

  settings(client: string, changes?: Partial<ClientSettings>): ClientSettings {
    const settings = this.#registry.get(client);
    if (changes !== undefined) changeSettings(settings, changes);
    return settings;
  }

  /** The names connected clients go by: their settings are never forgotten. */
  *#namesInUse(): Iterable<string> {
    for (const client of this.#clients) {
      yield client.name;
      if (client.id !== undefined) yield client.id;
    }
  }

  #targets(clients?: readonly string[]): Client[] {
    return [...this.#clients].filter((c) =>
      clients === undefined || clients.includes(c.name) ||
      (c.id !== undefined && clients.includes(c.id))
    );
  }

  async push(text: string, clients?: readonly string[]): Promise<void> {
    try {
      this.#options.onPush?.(text, clients);
    } catch {
      // a failing monitor must not stop the push
    }
    await Promise.all(
      this.#targets(clients).map((client) =>
        client.write(framePush(text, client.settings, this.#lineEnd))
      ),
    );
  }

  closeClients(clients?: readonly string[]): void {
    for (const client of this.#targets(clients)) client.close();
  }

  #accept(): Promise<void> {
    return acceptConnections(this.#listener, (conn) => {
      const client = new Client(
        `sock${++this.#nextId}`,
        conn,
        this.#options.maxUnsentBytes ?? DEFAULT_MAX_UNSENT_BYTES,
      );
      this.#clients.add(client);
      const handler = this.#serve(client).finally(() => {
        client.close();
        this.#clients.delete(client);
        // Connection names are never reused, so their settings would only pile up; names
        // given with <<<id=…>>> are kept for the next connection.
        this.#registry.delete(client.name);
        this.#handlers.delete(handler);
      });
      this.#handlers.add(handler);
    }, {
      signal: this.#stopAccepting.signal,
      name: `eval server ${this.hostname}:${this.port}`,
      ...(this.#options.onError === undefined ? {} : { onError: this.#options.onError }),
    });
  }

  async #serve(client: Client): Promise<void> {
    const backlog = new Backlog();
    let authenticated = this.#options.token === undefined;
    let refused: Promise<void> | undefined;
    const worker = this.#processLines(client, backlog);
    // One guess per connection: a wrong first line ends it, and whatever the client sent
    // after it (more guesses, code) is never looked at.
    const checkToken = async (line: string): Promise<boolean> => {
      authenticated = await sameSecret(line, this.#options.token!);
      if (!authenticated) {
        refused = client.write(
          frameReply("Error: wrong token; the first line must be the server's token", "\r\n"),
        ).then(() => client.close());
      }
      return authenticated;
    };
    /** Takes one line; false stops reading the connection at once. */
    let first = true;
    const push = (line: string, bytes: number): boolean | Promise<boolean> => {
      if (first) {
        first = false;
        // A web page can POST to any port it likes (fetch no-cors, a text/plain form): the
        // body's lines would be code. Loopback is no boundary for a browser.
        if (isHttpRequestLine(line)) {
          void this.#refuseHttp(client);
          return false;
        }
      }
      if (!authenticated) return checkToken(line);
      const control = controlRequest(line);
      if (control === "interrupt") {
        // Out of band: the runaway is stopped now; the reply comes in this client's turn.
        const note = this.#status();
        const interrupted = note.running !== null && (this.session.interrupt?.() ?? false);
        backlog.push({ line, bytes, note: { ...note, interrupted } });
        return true;
      }
      if (control === undefined && isEscape(line)) {
        // <<<esc>>> while busy interrupts the client's own transaction (worker mode can kill
        // it); a lone <<<esc>>> from an idle client interrupts whatever the shared session is
        // running, so any client can stop a runaway that holds everyone.
        if (client.current !== undefined) client.current.abort();
        else if (isBareEscape(line)) this.session.interrupt?.();
      }
      backlog.push({ line, bytes });
      return true;
    };
    // A client that never sends the token would hold a connection forever.
    const authTimer = authenticated ? undefined : setTimeout(() => {
      if (authenticated) return;
      void client.write(frameReply("Error: no token within the time limit", "\r\n"))
        .then(() => client.close());
    }, this.#options.authTimeout ?? 10_000);
    try {
      await this.#readLines(client, push, backlog);
      await refused;
    } finally {
      clearTimeout(authTimer);
      // Its evaluations have nobody to answer now (see EvaluateOptions.requesterGone).
      client.gone.abort();
      backlog.end();
      await worker;
    }
  }

  async #refuseHttp(client: Client): Promise<void> {
    if (!this.#httpReported) {
      this.#httpReported = true;
      try {
        this.#options.onError?.(
          new ProtocolError(
            `eval server ${this.hostname}:${this.port}: ${client.name} sent an HTTP request ` +
              "(a web page?); answered 400 and closed, nothing in it evaluated; later ones are " +
              "not reported",
          ),
        );
      } catch {
        // a failing logger must not stop the server
      }
    }
    const body = "rsock eval server: this port speaks the svSocket line protocol, not HTTP\n";
    await client.write(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n" +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    client.close();
  }

  async #readLines(
    client: Client,
    push: (line: string, bytes: number) => boolean | Promise<boolean>,
    backlog: Backlog,
  ): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65_536);
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    while (!client.closed) {
      // A client that sends faster than it is served waits (TCP flow control), instead of
      // growing memory.
      await backlog.below(this.#maxBacklogBytes, () => client.closed);
      if (client.closed) return;
      let n: number | null;
      try {
        n = await client.conn.read(buffer);
      } catch {
        return;
      }
      if (n === null) return;
      let start = 0;
      for (let i = 0; i < n; i++) {
        if (buffer[i] !== 0x0a) continue;
        let bytes: Uint8Array = buffer.subarray(start, i);
        if (pending.length > 0) {
          pending.push(bytes.slice());
          bytes = concatBytes(pending, pendingBytes + bytes.length);
          pending = [];
          pendingBytes = 0;
        }
        if (bytes.length > this.#maxLineBytes) return await this.#tooLong(client);
        let line = decoder.decode(bytes);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        const taken = push(line, bytes.length);
        // Only the token line is checked asynchronously; the buffer is not read into meanwhile.
        if (!(typeof taken === "boolean" ? taken : await taken)) return;
        start = i + 1;
      }
      if (start < n) {
        pending.push(buffer.slice(start, n));
        pendingBytes += n - start;
        if (pendingBytes > this.#maxLineBytes) return await this.#tooLong(client);
      }
    }
  }

  async #tooLong(client: Client): Promise<void> {
    await client.write(frameReply(
      `Error: line longer than ${this.#maxLineBytes} bytes refused; send shorter lines`,
      this.#lineEnd,
    ));
    client.close();
  }

  async #processLines(client: Client, backlog: Backlog): Promise<void> {
    while (true) {
      const next = await backlog.next();
      if (next === undefined) return;
      const controller = new AbortController();
      client.current = controller;
      try {
        const reply = await this.#transaction(client, next, controller.signal);
        await client.write(frameReply(reply, this.#lineEnd));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const mark = client.settings?.markErrors ? ERROR_MARKER : "";
        await client.write(frameReply(`${mark}Error: ${message}`, this.#lineEnd));
        if (error instanceof ClientLimitError) client.close();
      } finally {
        client.current = undefined;
        backlog.done(next.bytes);
      }
    }
  }

  /** What the session runs now, as a control request's reply tells it. */
  #status(): SessionStatus {
    const running = this.session.running?.();
    if (running === undefined) return { running: null };
    return {
      running: {
        door: running.door,
        code: codePreview(running.code),
        ms: Math.max(0, Date.now() - running.since.getTime()),
      },
    };
  }

  #transaction(client: Client, waiting: Waiting, signal: AbortSignal): Promise<string> {
    const { line } = waiting;
    const parsed = parseLine(line, client.name, this.port);
    const settings = this.settings(parsed.client);
    client.settings = settings;
    if (parsed.client !== client.name) client.id = parsed.client;
    if (controlRequest(line) !== undefined) {
      // Answered here, never by evaluating: so never behind the session's runaway. A start
      // marker only ends this reply in a form feed, and the prompt is the client's own:
      // asking must not change its settings.
      const status = JSON.stringify(waiting.note ?? this.#status());
      const { marker } = parsed;
      const last = marker === "q" || marker === "h" || marker === "e" ? "\n\f" : settings.last;
      const prompt = settings.bare
        ? ""
        : settings.code === ""
        ? settings.prompt
        : settings.continue;
      return Promise.resolve(resultsText(STATUS_MARKER + status) + last + prompt);
    }
    const transaction: Transaction = {
      line,
      parsed,
      settings,
      connection: client.name,
      server: this,
      signal,
      defaultProcess: () => this.#defaultProcess(client, parsed, settings, signal),
    };
    const custom = this.#options.process;
    return Promise.resolve(custom ? custom(transaction) : transaction.defaultProcess());
  }

  /** svSocket's `processSocket`, with JavaScript in place of R. */
  async #defaultProcess(
    client: Client,
    parsed: ParsedLine,
    settings: ClientSettings,
    signal: AbortSignal,
  ): Promise<string> {
    if (parsed.escape) this.#registry.setCode(settings, "");
    const { marker } = parsed;
    const hidden = marker === "h" || marker === "H";
    const returnResults = marker !== "Q" && marker !== "H" && marker !== "u";
    if (marker === "Q" || marker === "H") {
      // Disconnected first, evaluated after: the client does not wait for the result.
      await client.write(""); // keep order with anything already queued
      client.close();
    }
    applyMarker(settings, marker);
    const bare = settings.bare;
    const prompt = bare ? "" : settings.prompt;
    const continuePrompt = bare ? "" : settings.continue;
    const echo = !bare && settings.echo && !hidden;
    if (!hidden && this.#options.onEcho !== undefined) {
      const pre = settings.code === "" ? settings.prompt : settings.continue;
      try {
        this.#options.onEcho(parsed.client, pre + parsed.code);
      } catch {
        // The host's echo must not break the transaction.
      }
    }
    // Like svSocket, the reply uses the settings as they were before the code ran, even if
    // the code changes them (parSocket(<<<s>>>, …)).
    const { last, multiline } = settings;
    const errorMark = settings.markErrors ? ERROR_MARKER : "";
    const notR = svSocketEvalReply(parsed.code);
    if (notR !== undefined) {
      // Answered at once: evaluated as JavaScript it would fail with a reply evalServer()
      // never stops waiting for.
      this.#registry.setCode(settings, "");
      return returnResults ? errorMark + resultsText(notR) + last + prompt : "";
    }
    let code = parsed.code;
    let continuation: Continuation | undefined;
    if (!hidden && settings.code !== "") {
      continuation = this.#registry.continuationOf(settings);
      if (continuation.bytes + 1 + utf8Length(code) > this.#maxLineBytes) {
        this.#registry.setCode(settings, "");
        throw new ClientLimitError(
          `multi-line code longer than ${this.#maxLineBytes} bytes refused; ` +
            "send it in shorter pieces",
        );
      }
      continuation.append(code);
      code = continuation.code;
      const step = continuation.next(4 * this.#maxLineBytes, 16 * this.#maxLineBytes);
      if (step === "too-much") {
        this.#registry.setCode(settings, "");
        throw new ClientLimitError(
          "multi-line code needed too many re-parses; send it as one line (<<<n>>> joins lines)",
        );
      }
      if (step === "wait") {
        // The scan shows open brackets: incomplete, without parsing it all again.
        this.#registry.setCode(settings, code, continuation);
        return returnResults ? last + continuePrompt : "";
      }
    } else if (code.trim() === "") {
      this.#registry.setCode(settings, "");
      return returnResults ? settings.last + prompt : "";
    }
    this.#registry.setCode(settings, "");
    // A <<<Q>>>/<<<H>>> client is gone on purpose: its code still runs to the end.
    const door = client.door;
    const result = await this.session.evaluate(
      code,
      returnResults ? { signal, door, requesterGone: client.gone.signal } : { door },
    );
    if (result.incomplete) {
      if (!hidden && !bare && multiline) {
        if (continuation === undefined) {
          continuation = new Continuation();
          continuation.append(code);
          continuation.work = continuation.bytes;
        }
        this.#registry.setCode(settings, code, continuation);
        return returnResults ? last + continuePrompt : "";
      }
      return returnResults ? errorMark + INCOMPLETE_SINGLE_LINE + last + prompt : "";
    }
    if (!returnResults) return "";
    const echoed = echo ? echoCode(code, settings.prompt, settings.continue) : "";
    return (result.error ? errorMark : "") + echoed + resultsText(result.text) + last + prompt;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      unregisterServer(this);
      this.#stopAccepting.abort();
      try {
        this.#listener.close();
      } catch {
        // already closed
      }
      await this.#accepting;
      for (const client of this.#clients) client.close();
      await Promise.all(this.#handlers);
      if (this.#ownsSession) await this.session.close();
      this.#resolveClosed();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts an evaluation server on svSocket's wire, like svSocket's `startSocketServer()`:
 * every line a client sends is one transaction evaluated in the shared session, one at a
 * time in arrival order; the reply is `results + last + prompt` and a newline (nothing when
 * empty). Evaluated code reaches the server through the globals `parSocket(<<<s>>>, {…})`,
 * `sendSocketClients(text, clients?)`, `getSocketClients()`, `closeSocketClients(clients?)`
 * and `stopSocketServer()` (in worker mode these calls are forwarded and return
 * `undefined`).
 *
 * Binds loopback by default; any other address requires `token`.
 *
 * @example
 * ```ts
 * import { startEvalServer } from "@x/rsock/eval";
 *
 * await using server = await startEvalServer({ port: 0 });
 * // then, from a shell: printf '1 + 1\n' | nc 127.0.0.1 PORT   → 2
 * ```
 */
export async function startEvalServer(options: EvalServerOptions = {}): Promise<EvalServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? 8888;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be a whole number from 0 to 65535, got ${port}`);
  }
  if (!isLoopback(hostname) && (options.token === undefined || options.token === "")) {
    throw new TypeError(
      `binding "${hostname}" exposes code evaluation beyond this machine; pass a token ` +
        `(clients send it as their first line) or bind 127.0.0.1`,
    );
  }
  for (
    const name of ["maxLineBytes", "maxBacklogBytes", "maxUnsentBytes", "maxClientNames"] as const
  ) {
    const value = options[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new RangeError(`${name} must be a whole number ≥ 1, got ${value}`);
    }
  }
  const listener = options.tls === undefined
    ? Deno.listen({ hostname, port })
    : Deno.listenTls({ hostname, port, cert: options.tls.cert, key: options.tls.key });
  const ownsSession = options.session === undefined;
  let session: EvalSession;
  try {
    session = options.session ?? await createSession({
      ...(options.worker === undefined ? {} : { worker: options.worker }),
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    });
  } catch (error) {
    listener.close();
    throw error;
  }
  exposeServerFunctions(session);
  const server = new Server(listener, session, ownsSession, options);
  registerServer(server);
  if (options.signal !== undefined) {
    if (options.signal.aborted) await server.close();
    else options.signal.addEventListener("abort", () => void server.close(), { once: true });
  }
  return server;
}
