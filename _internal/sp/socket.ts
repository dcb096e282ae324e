/**
 * The SP socket both doors wrap: what every scalability-protocol socket does whatever its
 * protocol (listen, dial, count and wait for peers, flush, close, start-up from its options),
 * and the send and receive options they share. `@x/rsock/nng`'s `Socket` and
 * `@x/rsock/reqrep`'s `ScalabilitySocket` extend it with their protocol's own calls.
 *
 * @module
 */

import { decodeBody, type RecvMode, type SendMode, type SerialConfig } from "../modes.ts";
import { type CoreOptions, type SpCore, urlList, type WaitOptions } from "./core.ts";

/** Options of `send()` on any SP socket or context. */
export interface SendOptions extends WaitOptions {
  /** How `data` is encoded, as nanonext's `send(mode =)`. @default {"serial"} */
  readonly mode?: SendMode;
}

/** Options of `recv()` on any SP socket or context. */
export interface RecvOptions extends WaitOptions {
  /** How the body is decoded, as nanonext's `recv(mode =)`. @default {"serial"} */
  readonly mode?: RecvMode;
  /** Told when the bytes did not fit the mode and come back raw (nanonext warns). */
  readonly onWarning?: (message: string) => void;
}

/**
 * Decodes `body` in `options.mode` (R serialization with the socket's `config`), as nanonext's
 * `recv()`: bytes that do not fit the mode come back raw, and `options.onWarning` is told why.
 * `warned` says whether that happened.
 */
export function decodeReceived(
  body: Uint8Array,
  options: RecvOptions,
  config?: SerialConfig,
): { readonly value: unknown; readonly warned: boolean } {
  const result = decodeBody(body, options.mode ?? "serial", config);
  if (result.warning !== undefined) options.onWarning?.(result.warning);
  return { value: result.value, warned: result.warning !== undefined };
}

/**
 * One socket of the NNG scalability protocols, whatever its protocol: listeners and dialers
 * over `tcp://`, `ipc://`, `ws://`, `tls+tcp://` and `wss://`, the peers connected, and close.
 * `@x/rsock/nng`'s `Socket` and `@x/rsock/reqrep`'s `ScalabilitySocket` are the two
 * kinds there are; open one with their `socket()`.
 *
 * @example
 * ```ts
 * import { socket, SpSocket } from "@x/rsock/nng";
 * await using pull = await socket("pull", { listen: "tcp://127.0.0.1:0" });
 * pull instanceof SpSocket; // true, as is a reqrep socket
 * console.log(pull.urls[0], pull.pipeCount); // "tcp://127.0.0.1:41234" 0
 * ```
 */
export abstract class SpSocket implements AsyncDisposable {
  readonly #core: SpCore;
  readonly #serial: SerialConfig;

  /**
   * @internal Opened by the doors' `socket()`; `core` has its protocol machine attached, and
   * `serial` was checked (`checkSerialConfig`) before the core was made.
   */
  constructor(core: SpCore, serial: SerialConfig = {}) {
    this.#core = core;
    this.#serial = serial;
  }

  /**
   * The R serialization hooks and bounds this socket's messages in `"serial"` mode go through:
   * its `serial` option, as given.
   */
  get serial(): SerialConfig {
    return this.#serial;
  }

  /** The URLs listened on, with real ports once bound (`tcp://127.0.0.1:0` → the port). */
  get urls(): readonly string[] {
    return this.#core.urls;
  }

  /** Number of connected peers. */
  get pipeCount(): number {
    return this.#core.pipes.size;
  }

  /** True once {@linkcode SpSocket.close} was called. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Listens on `url` (`tcp://host:port`, port 0 picks one; `ipc:///path`;
   * `ws://host:port/path`; `tls+tcp://` and `wss://` with `tls` options); resolves to the bound
   * URL.
   */
  listen(url: string): Promise<string> {
    return this.#core.listen(url);
  }

  /**
   * Dials `url` and keeps a pipe to it: when the peer goes away it redials after a delay that
   * doubles from `reconnectMinimum` to `reconnectMaximum`. Resolves after the first attempt.
   * If that attempt failed (nothing listening: refused at once), it throws a
   * `ConnectionError` naming the address and stops, as `nng_dial` does; with `wait: false` it
   * resolves instead and keeps redialing until a peer is there (nanonext's
   * `dial(autostart = TRUE)`).
   */
  dial(url: string, options: { readonly wait?: boolean } = {}): Promise<void> {
    return this.#core.dial(url, options);
  }

  /** Resolves when at least `count` peers are connected. */
  waitForPipes(count = 1, options: WaitOptions = {}): Promise<void> {
    return this.#core.waitForPipes(count, options);
  }

  /**
   * Resolves once every pipe wrote what was queued on it: call it before closing a socket that
   * just sent, as NNG's linger does.
   */
  flush(options: WaitOptions = {}): Promise<void> {
    return this.#core.drain(options);
  }

  /**
   * Closes every pipe, listener and dialer; pending waits fail with a `ConnectionError`.
   * Idempotent.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** Same as {@linkcode SpSocket.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * @internal Listens on and dials the URLs of `options`, as nanonext's `socket(listen =,
   * dial =)`; closes the socket and throws if one fails.
   */
  async start(options: CoreOptions): Promise<void> {
    try {
      for (const url of urlList(options.listen)) await this.listen(url);
      for (const url of urlList(options.dial)) {
        await this.dial(url, { wait: options.retryFirstDial !== true });
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }
}
