/**
 * Stream transports: `tcp://`, `ipc://` and `tls+tcp://` listeners and dialers, giving byte
 * streams to the pipe layer. TLS runs on Deno's own TLS where it can; `node:tls` covers the two
 * things `Deno.listenTls` / `Deno.connectTls` cannot do: require client certificates signed by
 * a CA (NNG's auth mode "required") and dial without verifying the server (nngcat's
 * `--insecure`).
 *
 * @module
 */

import tls from "node:tls";
import type { Socket } from "node:net";
import { acceptConnections } from "../accept.ts";
import { ConnectionError, describeNetworkError } from "../errors.ts";
import { type ByteStream, HANDSHAKE_TIMEOUT_MS } from "./pipe.ts";
import { type Endpoint, formatUrl } from "./wire.ts";

/** TLS settings for `tls+tcp://` and `wss://`. */
export interface TlsOptions {
  /** PEM certificate chain: the server's when listening, the client's when dialing. */
  readonly cert?: string;
  /** PEM private key of `cert`. */
  readonly key?: string;
  /**
   * PEM CA certificate(s). Dialing: the server's certificate must chain to one of them (besides
   * the system roots). Listening on `tls+tcp://`: every client must present a certificate one of
   * them signed, or the connection is refused before the SP handshake.
   */
  readonly ca?: string | readonly string[];
  /** Dial without verifying the server's certificate (nngcat's `--insecure`). @default {false} */
  readonly insecure?: boolean;
}

/** A stream endpoint: tcp, ipc or tls+tcp. */
export type StreamEndpoint = Extract<Endpoint, { transport: "tcp" | "ipc" | "tls+tcp" }>;

/** A listening endpoint. */
export interface SpListener {
  /** The URL with the real port once bound. */
  readonly url: string;
  /** Stops accepting; waits until the accept loop ended. */
  close(): Promise<void>;
}

/** A new connection handed to the socket: its byte stream and who is on the other end. */
export type Accept = (stream: ByteStream, remote: string) => void;

function caList(ca: TlsOptions["ca"]): string[] | undefined {
  if (ca === undefined) return undefined;
  return typeof ca === "string" ? [ca] : [...ca];
}

function remoteOf(addr: Deno.Addr): string {
  return addr.transport === "tcp" || addr.transport === "udp"
    ? `${addr.hostname}:${addr.port}`
    : "ipc";
}

/** Prepares a Deno connection for SP: no Nagle delay on TCP (NNG's default too). */
export function adoptConn(conn: Deno.Conn): ByteStream {
  if (conn.remoteAddr.transport === "tcp") {
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // a TLS connection has no setNoDelay; Deno sets it on the socket below
    }
  }
  return conn;
}

/** Listens on a stream endpoint; each accepted connection goes to `accept`. */
export async function listenStream(
  endpoint: StreamEndpoint,
  tlsOptions: TlsOptions,
  ipcPermissions: number | undefined,
  accepting: { readonly signal: AbortSignal; readonly onError: (error: Error) => void },
  accept: Accept,
): Promise<SpListener> {
  if (endpoint.transport === "tls+tcp" && tlsOptions.ca !== undefined) {
    return await listenNodeTls(endpoint, tlsOptions, accept);
  }
  const listener = await openDenoListener(endpoint, tlsOptions, ipcPermissions);
  const addr = listener.addr;
  const url = formatUrl(
    addr.transport === "tcp" && endpoint.transport !== "ipc"
      ? { transport: endpoint.transport, hostname: addr.hostname, port: addr.port }
      : endpoint,
  );
  // The shared accept loop: a reset client or a shortage of descriptors never ends it.
  const stop = new AbortController();
  const onStop = () => stop.abort();
  accepting.signal.addEventListener("abort", onStop, { once: true });
  const loop = acceptConnections(listener, (conn) => {
    accept(adoptConn(conn), remoteOf(conn.remoteAddr));
  }, { signal: stop.signal, name: url, onError: accepting.onError });
  return {
    url,
    async close() {
      stop.abort();
      accepting.signal.removeEventListener("abort", onStop);
      try {
        listener.close();
      } catch {
        // closed
      }
      await loop;
      if (endpoint.transport === "ipc") await Deno.remove(endpoint.path).catch(() => {});
    },
  };
}

/**
 * Opens a Deno listener, removing a stale IPC socket file as NNG does. With `ipcPermissions`,
 * an IPC socket file is created with that mode and no other: the process umask is narrowed
 * around the bind (no window in which anyone else could connect, unlike a chmod after it),
 * then the file is set to exactly that mode.
 */
async function openDenoListener(
  endpoint: StreamEndpoint,
  tlsOptions: TlsOptions,
  ipcPermissions: number | undefined,
): Promise<Deno.Listener> {
  const where = formatUrl(endpoint);
  if (endpoint.transport !== "ipc") {
    try {
      if (endpoint.transport === "tcp") {
        return Deno.listen({ transport: "tcp", hostname: endpoint.hostname, port: endpoint.port });
      }
      const { cert, key } = requireCertificate(tlsOptions, where);
      return Deno.listenTls({ hostname: endpoint.hostname, port: endpoint.port, cert, key });
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw new ConnectionError(`Cannot listen on "${where}": ${describeNetworkError(error)}`, {
        cause: error,
      });
    }
  }
  const bind = (): Deno.Listener => {
    if (ipcPermissions === undefined) {
      return Deno.listen({ transport: "unix", path: endpoint.path });
    }
    let previous: number;
    try {
      previous = Deno.umask(0o777 & ~ipcPermissions);
    } catch (error) {
      throw new ConnectionError(
        `Cannot listen on "${where}" with mode 0${ipcPermissions.toString(8)}: setting the ` +
          "umask needs --allow-sys=umask",
        { cause: error },
      );
    }
    // Synchronous from here to the restore, so no other code of this thread sees the umask.
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ transport: "unix", path: endpoint.path });
    } finally {
      Deno.umask(previous);
    }
    try {
      Deno.chmodSync(endpoint.path, ipcPermissions);
    } catch (error) {
      listener.close();
      throw new ConnectionError(
        `Cannot set mode 0${ipcPermissions.toString(8)} on "${endpoint.path}": ${
          describeNetworkError(error)
        }`,
        { cause: error },
      );
    }
    return listener;
  };
  try {
    return bind();
  } catch (error) {
    if (error instanceof ConnectionError) throw error;
    if (!(error instanceof Deno.errors.AddrInUse)) {
      throw new ConnectionError(`Cannot listen on "${where}": ${describeNetworkError(error)}`, {
        cause: error,
      });
    }
  }
  // A socket file nobody answers on is stale: remove it and listen again, as NNG does.
  try {
    (await Deno.connect({ transport: "unix", path: endpoint.path })).close();
  } catch {
    await Deno.remove(endpoint.path).catch(() => {});
    return bind();
  }
  throw new ConnectionError(`Cannot listen on "${where}": address already in use`);
}

function requireCertificate(options: TlsOptions, where: string): { cert: string; key: string } {
  if (options.cert === undefined || options.key === undefined) {
    throw new TypeError(
      `listening on "${where}" needs a certificate and its key (tls: { cert, key } in PEM)`,
    );
  }
  return { cert: options.cert, key: options.key };
}

/** `tls+tcp://` with client certificates required: `Deno.listenTls` cannot ask for them. */
function listenNodeTls(
  endpoint: Extract<StreamEndpoint, { transport: "tls+tcp" }>,
  options: TlsOptions,
  accept: Accept,
): Promise<SpListener> {
  const where = formatUrl(endpoint);
  const { cert, key } = requireCertificate(options, where);
  // Connections still in their TLS handshake, by remote address: NNG's handshake timeout ends
  // them, and so does closing the listener (the server's close waits for every connection, and
  // a peer that never finishes would hold it).
  const handshaking = new Map<
    string,
    { socket: Socket; timer: ReturnType<typeof setTimeout> }
  >();
  const handshaken = (remote: string) => {
    const entry = handshaking.get(remote);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    handshaking.delete(remote);
  };
  const server = tls.createServer({
    cert,
    key,
    ca: caList(options.ca)!,
    requestCert: true,
    rejectUnauthorized: true,
  }, (socket) => {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    handshaken(remote);
    accept(new NodeSocketStream(socket), remote);
  });
  server.on("connection", (socket: Socket) => {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const timer = setTimeout(() => {
      handshaking.delete(remote);
      socket.destroy();
    }, HANDSHAKE_TIMEOUT_MS);
    handshaking.set(remote, { socket, timer });
    socket.once("close", () => handshaken(remote));
  });
  // A client without an acceptable certificate fails the TLS handshake; the server goes on.
  server.on("tlsClientError", () => {});
  return new Promise((resolve, reject) => {
    server.once("error", (error: Error) => {
      reject(
        new ConnectionError(`Cannot listen on "${where}": ${error.message}`, { cause: error }),
      );
    });
    server.listen(endpoint.port, endpoint.hostname, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      resolve({
        url: formatUrl({ ...endpoint, port }),
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const { socket, timer } of handshaking.values()) {
              clearTimeout(timer);
              socket.destroy();
            }
            handshaking.clear();
          }),
      });
    });
  });
}

/** Connects once to a stream endpoint. */
export async function dialStream(
  endpoint: StreamEndpoint,
  tlsOptions: TlsOptions,
): Promise<{ stream: ByteStream; remote: string }> {
  const where = formatUrl(endpoint);
  try {
    if (endpoint.transport === "ipc") {
      const conn = await Deno.connect({ transport: "unix", path: endpoint.path });
      return { stream: conn, remote: "ipc" };
    }
    const remote = `${endpoint.hostname}:${endpoint.port}`;
    if (endpoint.transport === "tcp") {
      const conn = await Deno.connect({ hostname: endpoint.hostname, port: endpoint.port });
      return { stream: adoptConn(conn), remote };
    }
    if (tlsOptions.insecure === true) {
      return { stream: await dialNodeTlsInsecure(endpoint, tlsOptions), remote };
    }
    const base = {
      hostname: endpoint.hostname,
      port: endpoint.port,
      ...(tlsOptions.ca === undefined ? {} : { caCerts: caList(tlsOptions.ca)! }),
    };
    const conn = tlsOptions.cert !== undefined && tlsOptions.key !== undefined
      ? await Deno.connectTls({ ...base, cert: tlsOptions.cert, key: tlsOptions.key })
      : await Deno.connectTls(base);
    try {
      // Certificate errors surface here, as a failed dial, not as a broken pipe later.
      await conn.handshake();
    } catch (error) {
      conn.close();
      throw error;
    }
    return { stream: conn, remote };
  } catch (error) {
    throw new ConnectionError(`Cannot connect to "${where}": ${describeNetworkError(error)}`, {
      cause: error,
    });
  }
}

function dialNodeTlsInsecure(
  endpoint: Extract<StreamEndpoint, { transport: "tls+tcp" }>,
  options: TlsOptions,
): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: endpoint.hostname,
      port: endpoint.port,
      rejectUnauthorized: false,
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
    }, () => {
      socket.off("error", reject);
      socket.setNoDelay(true);
      resolve(new NodeSocketStream(socket));
    });
    socket.once("error", reject);
  });
}

const NODE_PAUSE_BYTES = 1024 * 1024;

/** A `node:net`/`node:tls` socket read and written like a `Deno.Conn`. */
export class NodeSocketStream implements ByteStream {
  readonly #socket: Socket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > NODE_PAUSE_BYTES) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < buffer.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, buffer.length - n);
      buffer.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered <= NODE_PAUSE_BYTES && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (error?: Error | null) => {
        if (error) reject(error);
        else resolve(bytes.length);
      });
    });
  }

  close(): void {
    this.#socket.destroy();
    this.#ended = true;
    this.#notify();
  }
}
