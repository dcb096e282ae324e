/**
 * The TCP server on svSocket's wire: clients, per-client settings by name, the default process
 * function, and the functions evaluated code uses to reach the server.
 *
 * @module
 */

import { acceptConnections } from "../_internal/accept.ts";
import { concatBytes } from "../_internal/bytes.ts";
import { createSession, type EvalSession } from "./_session.ts";
import {
  applyMarker,
  changeSettings,
  type ClientSettings,
  defaultSettings,
  echoCode,
  framePush,
  frameReply,
  INCOMPLETE_SINGLE_LINE,
  isEscape,
  type ParsedLine,
  parseLine,
  resultsText,
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
  /** Longest line accepted, in bytes; longer gets an error reply and the client is closed. @default 1048576 */
  readonly maxLineBytes?: number;
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

const servers = new Map<number, EvalServer>();

function serverFor(port: unknown): EvalServer {
  if (port === undefined && servers.size === 1) return [...servers.values()][0]!;
  const server = typeof port === "number" ? servers.get(port) : undefined;
  if (server === undefined) {
    throw new RangeError(
      `no rsock eval server on port ${String(port)}; running on: ${
        [...servers.keys()].join(", ") || "none"
      }`,
    );
  }
  return server;
}

function clientList(clients: unknown): readonly string[] | undefined {
  if (clients === undefined || clients === null) return undefined;
  if (typeof clients === "string") return [clients];
  if (Array.isArray(clients) && clients.every((c) => typeof c === "string")) return clients;
  throw new TypeError("clients must be a client name or an array of names");
}

/**
 * The globals evaluated code uses to reach its server, named after svSocket's functions.
 * `<<<s>>>` in a line becomes `"CLIENT", PORT`, so `parSocket(<<<s>>>, { bare: false })` changes
 * the calling client's settings.
 */
const SERVER_FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  parSocket(client: unknown, port: unknown, changes?: unknown): ClientSettings {
    if (typeof client !== "string") throw new TypeError("parSocket(client, port, changes?)");
    const server = serverFor(port);
    const settings = server.settings(client);
    changeSettings(settings, changes);
    return { ...settings };
  },
  sendSocketClients(text: unknown, clients?: unknown, port?: unknown): undefined {
    void serverFor(port).push(String(text), clientList(clients));
    return undefined;
  },
  getSocketClients(port?: unknown): readonly string[] {
    return serverFor(port).clients;
  },
  closeSocketClients(clients?: unknown, port?: unknown): undefined {
    serverFor(port).closeClients(clientList(clients));
    return undefined;
  },
  stopSocketServer(port?: unknown): undefined {
    // Not awaited: closing waits for the session, which is running this very call.
    void serverFor(port).close();
    return undefined;
  },
};

const exposed = new WeakSet<EvalSession>();

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const encoder = new TextEncoder();

/** Equal strings, in time that depends only on their lengths. */
function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

class Client {
  readonly name: string;
  readonly conn: Deno.Conn;
  #writing: Promise<void> = Promise.resolve();
  closed = false;
  current: AbortController | undefined;
  /** The `<<<id=…>>>` name it last gave, if any. */
  id: string | undefined;
  /** The settings of its last transaction (under its `<<<id=…>>>` name, if it gave one). */
  settings: ClientSettings | undefined;

  constructor(name: string, conn: Deno.Conn) {
    this.name = name;
    this.conn = conn;
  }

  write(text: string): Promise<void> {
    if (text === "" || this.closed) return this.#writing;
    const bytes = encoder.encode(text);
    this.#writing = this.#writing.then(async () => {
      if (this.closed) return;
      try {
        let offset = 0;
        while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
      } catch {
        // A client that vanished: its reader sees the end and cleans up.
        this.close();
      }
    });
    return this.#writing;
  }

  flushed(): Promise<void> {
    return this.#writing;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The running transaction is left to finish (or to the time limit): in-process, giving up
    // on it would let the next one overlap it.
    try {
      this.conn.close();
    } catch {
      // already closed
    }
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
  readonly #lineEnd: string;
  readonly #clients = new Set<Client>();
  readonly #settings = new Map<string, ClientSettings>();
  readonly #handlers = new Set<Promise<void>>();
  #nextId = 0;
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
    this.#maxLineBytes = options.maxLineBytes ?? 1_048_576;
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
    let settings = this.#settings.get(client);
    if (settings === undefined) {
      settings = defaultSettings();
      this.#settings.set(client, settings);
    }
    if (changes !== undefined) changeSettings(settings, changes);
    return settings;
  }

  #targets(clients?: readonly string[]): Client[] {
    return [...this.#clients].filter((c) =>
      clients === undefined || clients.includes(c.name) ||
      (c.id !== undefined && clients.includes(c.id))
    );
  }

  async push(text: string, clients?: readonly string[]): Promise<void> {
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
      const client = new Client(`sock${++this.#nextId}`, conn);
      this.#clients.add(client);
      const handler = this.#serve(client).finally(() => {
        client.close();
        this.#clients.delete(client);
        // Connection names are never reused, so their settings would only pile up; names
        // given with <<<id=…>>> are kept for the next connection.
        this.#settings.delete(client.name);
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
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    let authenticated = this.#options.token === undefined;
    const worker = this.#processLines(client, queue, () =>
      new Promise<void>((resolve) => {
        if (queue.length > 0 || ended) resolve();
        else wake = resolve;
      }), () => ended);
    const push = (line: string) => {
      if (!authenticated) {
        authenticated = constantTimeEqual(line, this.#options.token!);
        if (!authenticated) {
          void client.write(
            frameReply("Error: wrong token; the first line must be the server's token", "\r\n"),
          ).then(() => client.close());
        }
        return;
      }
      // <<<esc>>> while busy interrupts the running transaction (worker mode can kill it).
      if (client.current !== undefined && isEscape(line)) client.current.abort();
      queue.push(line);
      wake?.();
      wake = undefined;
    };
    // A client that never sends the token would hold a connection forever.
    const authTimer = authenticated ? undefined : setTimeout(() => {
      if (authenticated) return;
      void client.write(frameReply("Error: no token within the time limit", "\r\n"))
        .then(() => client.close());
    }, this.#options.authTimeout ?? 10_000);
    try {
      await this.#readLines(client, push, () => queue.length);
    } finally {
      clearTimeout(authTimer);
      ended = true;
      wake?.();
      wake = undefined;
      await worker;
    }
  }

  async #readLines(
    client: Client,
    push: (line: string) => void,
    backlog: () => number,
  ): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65_536);
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    while (!client.closed) {
      // A client that sends faster than it is served waits, instead of growing memory.
      while (backlog() >= 256 && !client.closed) await new Promise((r) => setTimeout(r, 1));
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
        push(line);
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

  async #processLines(
    client: Client,
    queue: string[],
    next: () => Promise<void>,
    ended: () => boolean,
  ): Promise<void> {
    while (true) {
      if (queue.length === 0) {
        if (ended()) return;
        await next();
        continue;
      }
      const line = queue.shift()!;
      const controller = new AbortController();
      client.current = controller;
      try {
        const reply = await this.#transaction(client, line, controller.signal);
        await client.write(frameReply(reply, this.#lineEnd));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await client.write(frameReply(`Error: ${message}`, this.#lineEnd));
      } finally {
        client.current = undefined;
      }
    }
  }

  #transaction(client: Client, line: string, signal: AbortSignal): Promise<string> {
    const parsed = parseLine(line, client.name, this.port);
    const settings = this.settings(parsed.client);
    client.settings = settings;
    if (parsed.client !== client.name) client.id = parsed.client;
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
    if (parsed.escape) settings.code = "";
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
    const continuation = bare ? "" : settings.continue;
    const echo = !bare && settings.echo && !hidden;
    if (!hidden && this.#options.onEcho !== undefined) {
      const pre = settings.code === "" ? settings.prompt : settings.continue;
      try {
        this.#options.onEcho(parsed.client, pre + parsed.code);
      } catch {
        // The host's echo must not break the transaction.
      }
    }
    let code = parsed.code;
    if (!hidden && settings.code !== "") code = settings.code + "\n" + code;
    settings.code = "";
    if (code.trim() === "") return returnResults ? settings.last + prompt : "";
    // A <<<Q>>>/<<<H>>> client is gone on purpose: its code still runs to the end.
    // Like svSocket, the reply uses the settings as they were before the code ran, even if
    // the code changes them (parSocket(<<<s>>>, …)).
    const { last, multiline } = settings;
    const echoed = echo ? echoCode(code, settings.prompt, settings.continue) : "";
    const result = await this.session.evaluate(code, returnResults ? { signal } : {});
    if (result.incomplete) {
      if (!hidden && !bare && multiline) {
        settings.code = code;
        return returnResults ? last + continuation : "";
      }
      return returnResults ? INCOMPLETE_SINGLE_LINE + last + prompt : "";
    }
    if (!returnResults) return "";
    return echoed + resultsText(result.text) + last + prompt;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (servers.get(this.port) === this) servers.delete(this.port);
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
  const maxLineBytes = options.maxLineBytes ?? 1_048_576;
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new RangeError(`maxLineBytes must be a whole number ≥ 1, got ${maxLineBytes}`);
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
  if (!exposed.has(session)) {
    exposed.add(session);
    session.expose?.(SERVER_FUNCTIONS);
  }
  const server = new Server(listener, session, ownsSession, options);
  servers.set(server.port, server);
  if (options.signal !== undefined) {
    if (options.signal.aborted) await server.close();
    else options.signal.addEventListener("abort", () => void server.close(), { once: true });
  }
  return server;
}
