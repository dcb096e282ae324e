/**
 * rsock: R's socket tools for inter-process communication, in Deno, on the same wire.
 *
 * Each transport is its own door; import the one you need:
 * - `@x/rsock/socket`: plain message sockets (R's `make.socket`, `read.socket`, `write.socket`).
 * - `@x/rsock/eval`: a shared-session evaluation server and client on R svSocket's wire.
 * - `@x/rsock/ws`: WebSocket server, client and small HTTP service (R's `websockets`), and a
 *   browser console for an eval session.
 * - `@x/rsock/serial`: R serialization (R's `serialize`, `unserialize`), a pure codec with no
 *   I/O: the bytes nanonext's `send(mode = "serial")` and svSocket carry, to typed R values and
 *   back.
 * - `@x/rsock/reqrep`: NNG request/reply (nanonext's `socket`, `request`, `reply`), wire-compatible
 *   with nngcat, nanonext, pynng and mangos, with the R serialization codec.
 * - `@x/rsock/nng`: the rest of the NNG family (pub/sub, push/pull, surveyor/respondent, pair,
 *   bus, devices) over tcp, ipc, ws and TLS; here as the `nng` namespace.
 * - `@x/rsock/cli`: the `rsock` command line (`main(args)`), one subcommand per transport.
 *
 * This module re-exports `socket`, `eval`, `ws` and `reqrep` (which carries `serial`'s codec),
 * and `nng` as a namespace.
 *
 * @example
 * ```ts
 * import { connect, listen } from "@x/rsock";
 *
 * await using server = listen({ port: 0, framing: "line" });
 * await using client = await connect({ hostname: "127.0.0.1", port: server.port });
 * await client.writeLine("hello");
 * ```
 *
 * @module
 */

export * from "./socket/mod.ts";
export * from "./eval/mod.ts";
export * from "./ws/mod.ts";
export * from "./reqrep/mod.ts";
export * as nng from "./nng/mod.ts";
