/**
 * `rsock serve`'s flags turned into a plan: which doors, on which addresses, and the security
 * policy that decides which combinations are refused. Pure: nothing is bound, read or asked
 * for, so the policy is testable without sockets.
 *
 * @module
 */

import type { Endpoint } from "../_internal/sp/wire.ts";
import { isLoopback } from "../_internal/loopback.ts";
import { endpointNeeds } from "./req.ts";
import {
  booleanFlag,
  type Needed,
  type ParsedArgs,
  parseDuration,
  parsePort,
  stringFlag,
  UsageError,
} from "./_common.ts";

/** svSocket's port. */
export const DEFAULT_EVAL_PORT = 8888;
/** The browser console's port. */
export const DEFAULT_WS_PORT = 7681;
/** The REP door's URL when `--rep` has no value. */
export const DEFAULT_REP_URL = "tcp://127.0.0.1:5555";
/** When serve says an evaluation is slow, by default. */
export const SLOW_AFTER_MS = 10_000;

/** An NNG endpoint of the plan, and the grants it needs. */
export interface PlannedEndpoint {
  /** As given. */
  readonly url: string;
  /** Parsed. */
  readonly endpoint: Endpoint;
  /** The grants listening on it needs. */
  readonly needs: Needed[];
}

/** What `rsock serve` will start, checked against its security policy. */
export interface ServePlan {
  /** The address of the eval, console and socket doors. */
  readonly hostname: string;
  /** No endpoint flag was given: every default door is served. */
  readonly all: boolean;
  /** The eval door's port, if served. */
  readonly evalPort: number | undefined;
  /** The browser console's port, if served. */
  readonly wsPort: number | undefined;
  /** The REP door, if served. */
  readonly rep: PlannedEndpoint | undefined;
  /** The REP door's client certificates are checked against `caFile` (tls+tcp only). */
  readonly certified: boolean;
  /** The monitors' PUB socket, if any. */
  readonly pub: PlannedEndpoint | undefined;
  /** The plain-message door's port, if served. */
  readonly socketPort: number | undefined;
  /** The environment variable holding the token, if the token is given that way. */
  readonly tokenVariable: string | undefined;
  /** The token itself, if given with `--token`. */
  readonly tokenFlag: string | undefined;
  /** TLS certificate file (PEM). */
  readonly certFile: string | undefined;
  /** TLS key file (PEM). */
  readonly keyFile: string | undefined;
  /** CA file a tls+tcp REP door checks client certificates against. */
  readonly caFile: string | undefined;
  /** The session runs in a worker (the default) rather than in-process. */
  readonly worker: boolean;
  /** The time limit of one evaluation in ms, if any. */
  readonly timeout: number | undefined;
  /** Milliseconds after which a running evaluation is reported; 0: never. */
  readonly warnAfter: number;
}

/**
 * The plan of `rsock serve` for its parsed flags. Throws {@linkcode UsageError} for flags
 * that contradict each other and for any door the security policy refuses:
 *
 * | door | without a token | with a token |
 * | --- | --- | --- |
 * | eval, console, socket (`--hostname`) | loopback only | any address |
 * | `--rep` (SP has no authentication) | loopback, ipc://, or tls+tcp:// with a CA | ipc://, or tls+tcp:// with a CA; off by default |
 * | `--pub` (the session's output) | loopback or ipc:// | ipc:// only |
 */
export function planServe(args: ParsedArgs): ServePlan {
  const hostname = stringFlag(args, "hostname") ?? "127.0.0.1";
  const evalFlag = stringFlag(args, "eval");
  const wsFlag = stringFlag(args, "ws");
  const repFlag = stringFlag(args, "rep");
  const all = evalFlag === undefined && wsFlag === undefined && repFlag === undefined;
  const evalPort = all || evalFlag !== undefined
    ? parsePort(evalFlag || undefined, DEFAULT_EVAL_PORT, "--eval")
    : undefined;
  const wsPort = all || wsFlag !== undefined
    ? parsePort(wsFlag || undefined, DEFAULT_WS_PORT, "--ws")
    : undefined;
  const tokenGiven = stringFlag(args, "token-env") !== undefined ||
    stringFlag(args, "token") !== undefined;
  // SP has no authentication: with a token, only an owner-only ipc:// file keeps the REP door
  // from running code for a peer the eval door would refuse. The default set then leaves it out.
  const repUrl = repFlag !== undefined
    ? (repFlag || DEFAULT_REP_URL)
    : all && !tokenGiven
    ? DEFAULT_REP_URL
    : undefined;
  const rep = repUrl === undefined ? undefined : endpointNeeds(repUrl, "--rep");
  const caFile = stringFlag(args, "tls-ca");
  // Client certificates signed by --tls-ca are the one authentication an SP peer can give.
  const certified = rep?.endpoint.transport === "tls+tcp" && caFile !== undefined &&
    stringFlag(args, "tls-cert") !== undefined && stringFlag(args, "tls-key") !== undefined;
  if (rep !== undefined && tokenGiven && rep.endpoint.transport !== "ipc" && !certified) {
    throw new UsageError(
      `--rep ${repUrl}: with a token, the REP endpoint listens on ipc:// only — NNG's SP ` +
        "has no authentication, so anyone who can connect to it could run code without the " +
        "token; use e.g. --rep ipc:///tmp/rsock.ipc (its socket file is created owner-only), " +
        "or tls+tcp:// with --tls-cert, --tls-key and --tls-ca (client certificates)",
    );
  }
  if (
    rep !== undefined && rep.endpoint.transport !== "ipc" && !isLoopback(rep.endpoint.hostname) &&
    !certified
  ) {
    throw new UsageError(
      `--rep ${repUrl} is not loopback; NNG has no authentication, so the REP endpoint ` +
        "binds loopback or ipc:// only, or tls+tcp:// with --tls-cert, --tls-key and --tls-ca",
    );
  }
  const pubUrl = stringFlag(args, "pub");
  const pub = pubUrl === undefined ? undefined : endpointNeeds(pubUrl, "--pub");
  // The session's output is what the token guards too: with one, only an owner-only ipc://
  // file keeps other users of this machine from subscribing to it.
  if (pub !== undefined && tokenGiven && pub.endpoint.transport !== "ipc") {
    throw new UsageError(
      `--pub ${pubUrl}: with a token, the session's output is published on ipc:// only ` +
        "(its socket file is created owner-only), e.g. --pub ipc:///tmp/rsock-pub.ipc",
    );
  }
  if (
    pub !== undefined && pub.endpoint.transport !== "ipc" && !isLoopback(pub.endpoint.hostname)
  ) {
    throw new UsageError(
      `--pub ${pubUrl} is not loopback; the session's output stays on this machine`,
    );
  }
  const socketFlag = stringFlag(args, "socket");
  const socketPort = socketFlag === undefined ? undefined : parsePort(socketFlag, 0, "--socket");
  const tokenVariable = stringFlag(args, "token-env");
  const tokenFlag = stringFlag(args, "token");
  if (tokenVariable !== undefined && tokenFlag !== undefined) {
    throw new UsageError("give the token once: --token-env VAR or --token TOKEN");
  }
  if (tokenFlag === "") throw new UsageError("--token must not be empty");
  const certFile = stringFlag(args, "tls-cert");
  const keyFile = stringFlag(args, "tls-key");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const timeoutFlag = stringFlag(args, "timeout");
  const inProcess = booleanFlag(args, "in-process");
  if (inProcess && booleanFlag(args, "worker")) {
    throw new UsageError("--in-process and --worker contradict each other; give one");
  }
  const worker = !inProcess;
  if (timeoutFlag !== undefined && !worker) {
    throw new UsageError(
      "--timeout does not work with --in-process (an in-process evaluation cannot be stopped)",
    );
  }
  const timeout = timeoutFlag === undefined
    ? undefined
    : parseDuration(timeoutFlag, 0, "--timeout");
  // A limit of nothing would interrupt every evaluation before it starts.
  if (timeout === 0) {
    throw new UsageError(`--timeout must be at least 1ms, got "${timeoutFlag}"`);
  }
  const warnAfter = parseDuration(stringFlag(args, "warn-after"), SLOW_AFTER_MS, "--warn-after");
  if (!isLoopback(hostname) && tokenVariable === undefined && tokenFlag === undefined) {
    throw new UsageError(
      `--hostname ${hostname} is not loopback: anyone who reaches it could run code; ` +
        "give a token with --token-env VAR (and preferably --tls-cert/--tls-key)",
    );
  }
  return {
    hostname,
    all,
    evalPort,
    wsPort,
    rep: rep === undefined || repUrl === undefined ? undefined : { url: repUrl, ...rep },
    certified,
    pub: pub === undefined || pubUrl === undefined ? undefined : { url: pubUrl, ...pub },
    socketPort,
    tokenVariable,
    tokenFlag,
    certFile,
    keyFile,
    caFile,
    worker,
    timeout,
    warnAfter,
  };
}
