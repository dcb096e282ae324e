/**
 * svSocket's functions as the globals evaluated code uses to reach its server
 * (`parSocket`, `sendSocketClients`, …), and the registry of running servers by port they
 * look the server up in.
 *
 * @module
 */

import type { EvalServer } from "./_server.ts";
import type { EvalSession } from "./_session.ts";
import { changeSettings, type ClientSettings } from "./_protocol.ts";

/** The running servers by port: svSocket's functions take a port, as R's do. */
const servers = new Map<number, EvalServer>();

/** Makes `server` the one these functions reach on its port. */
export function registerServer(server: EvalServer): void {
  servers.set(server.port, server);
}

/** Forgets `server` (if it is still the one on its port). */
export function unregisterServer(server: EvalServer): void {
  if (servers.get(server.port) === server) servers.delete(server.port);
}

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

/** Gives the session's code svSocket's functions, once per session however many servers share it. */
export function exposeServerFunctions(session: EvalSession): void {
  if (exposed.has(session)) return;
  exposed.add(session);
  session.expose?.(SERVER_FUNCTIONS);
}
