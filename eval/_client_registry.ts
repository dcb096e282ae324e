/**
 * The eval server's clients by name: the settings svSocket keeps per client (`<<<id=…>>>`
 * names outlive their connections), and the multi-line code pending under each, both bounded.
 *
 * @module
 */

import { Continuation } from "./_continuation.ts";
import { type ClientSettings, defaultSettings } from "./_protocol.ts";

/** Settings by client name, least recently used first, with the pending code they hold. */
export class ClientRegistry {
  readonly #maxNames: number;
  readonly #maxPendingBytes: number;
  readonly #inUse: () => Iterable<string>;
  /** Settings by client name, least recently used first. */
  readonly #settings = new Map<string, ClientSettings>();
  /** Where multi-line code stands, for settings with code pending. */
  readonly #continuations = new WeakMap<ClientSettings, Continuation>();
  /** Bytes of multi-line code pending under all names. */
  #pendingCodeBytes = 0;

  /**
   * Keeps at most `maxNames` names and `maxPendingBytes` of pending code; names `inUse()`
   * returns (the connected clients') are never forgotten.
   */
  constructor(maxNames: number, maxPendingBytes: number, inUse: () => Iterable<string>) {
    this.#maxNames = maxNames;
    this.#maxPendingBytes = maxPendingBytes;
    this.#inUse = inUse;
  }

  /** The settings of `client`, created with svSocket's defaults if new, now most recently used. */
  get(client: string): ClientSettings {
    let settings = this.#settings.get(client);
    if (settings === undefined) {
      settings = defaultSettings();
      this.#settings.set(client, settings);
      this.#forgetUnused();
    } else {
      // Most recently used last: the map's order is the eviction order.
      this.#settings.delete(client);
      this.#settings.set(client, settings);
    }
    return settings;
  }

  /** Forgets `client`'s settings and pending code, if any. */
  delete(client: string): void {
    const settings = this.#settings.get(client);
    if (settings !== undefined) this.#deleteSettings(client, settings);
  }

  /** Sets the pending multi-line code, keeping the total and the scan state in step. */
  setCode(settings: ClientSettings, code: string, continuation?: Continuation): void {
    const old = this.#continuations.get(settings);
    if (old !== undefined) this.#pendingCodeBytes -= old.bytes;
    settings.code = code;
    if (code === "" || continuation === undefined) {
      this.#continuations.delete(settings);
      return;
    }
    this.#continuations.set(settings, continuation);
    this.#pendingCodeBytes += continuation.bytes;
    this.#forgetUnused();
  }

  /** The scan state of the settings' pending code, rebuilt if something else changed it. */
  continuationOf(settings: ClientSettings): Continuation {
    const known = this.#continuations.get(settings);
    if (known !== undefined && known.code === settings.code) return known;
    const continuation = new Continuation();
    continuation.append(settings.code);
    this.setCode(settings, settings.code, continuation);
    return continuation;
  }

  /** Forgets the least recently used names no connected client uses, down to the bounds. */
  #forgetUnused(): void {
    if (!this.#overBounds()) return;
    const inUse = new Set(this.#inUse());
    for (const [name, settings] of this.#settings) {
      if (!this.#overBounds()) return;
      if (inUse.has(name)) continue;
      this.#deleteSettings(name, settings);
    }
  }

  #overBounds(): boolean {
    return this.#settings.size > this.#maxNames || this.#pendingCodeBytes > this.#maxPendingBytes;
  }

  #deleteSettings(name: string, settings: ClientSettings): void {
    this.#settings.delete(name);
    this.setCode(settings, "");
  }
}
