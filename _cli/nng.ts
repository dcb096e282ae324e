/**
 * `rsock pub|sub|push|pull|survey|respond|pair|bus`: the NNG family from the shell, in nngcat's
 * spirit.
 * One table of options serves every role; each role takes the ones that make sense for it.
 *
 * @module
 */

import type { ParseArgsOptionsConfig } from "node:util";
import { readLines } from "../_internal/lines.ts";
import {
  type Socket,
  socket,
  type SocketProtocol,
  TimeoutError,
  type TlsOptions,
} from "../nng/mod.ts";
import {
  type Command,
  type Needed,
  type Output,
  type ParsedArgs,
  parsePositiveInteger,
  requirePermissions,
  stringFlag,
  untilStopped,
  UsageError,
} from "./_common.ts";
import { endpointNeeds } from "./req.ts";

type Role = "pub" | "sub" | "push" | "pull" | "survey" | "respond" | "pair" | "bus";

interface OptionRow {
  readonly flag: string;
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  readonly value?: string;
  readonly help: string;
  /** The roles that take it. */
  readonly roles: readonly Role[];
}

/**
 * Bus waits for every peer to take what was sent after this many lines: half its queue of
 * 1024 messages per pipe, so no reading peer's queue ever fills (pub waits in its socket).
 */
const PACE_EVERY = 512;

const ALL: readonly Role[] = ["pub", "sub", "push", "pull", "survey", "respond", "pair", "bus"];
const SENDERS: readonly Role[] = ["pub", "push"];
const RECEIVERS: readonly Role[] = ["sub", "pull"];
/** Send standard input lines (or --data) and print what comes, both at once. */
const DUPLEX: readonly Role[] = ["pair", "bus"];

/** Every option of the family commands, once. */
const OPTIONS: readonly OptionRow[] = [
  {
    flag: "listen",
    type: "string",
    multiple: true,
    value: "URL",
    help: "listen on URL (repeatable)",
    roles: ALL,
  },
  {
    flag: "dial",
    type: "string",
    multiple: true,
    value: "URL",
    help: "dial URL, redialing when it goes away (repeatable)",
    roles: ALL,
  },
  {
    flag: "topic",
    type: "string",
    multiple: true,
    value: "T",
    help: 'receive messages starting with T (repeatable; default "": all)',
    roles: ["sub"],
  },
  {
    flag: "data",
    type: "string",
    value: "TEXT",
    help: "send TEXT instead of standard input lines",
    roles: [...SENDERS, ...DUPLEX, "survey"],
  },
  {
    flag: "answer",
    type: "string",
    value: "TEXT",
    help: "answer every survey with TEXT",
    roles: ["respond"],
  },
  {
    flag: "count",
    type: "string",
    value: "N",
    help: "stop after N messages (with --data: send it N times)",
    roles: ALL,
  },
  {
    flag: "interval",
    type: "string",
    value: "MS",
    help: "with --data: wait MS between sends",
    roles: [...SENDERS, ...DUPLEX],
  },
  {
    flag: "peers",
    type: "string",
    value: "N",
    help: "wait for N peers before sending (default 1)",
    roles: [...SENDERS, ...DUPLEX, "survey"],
  },
  {
    flag: "drop-slow",
    type: "boolean",
    help: "never wait for a slow reader: drop what it cannot take, as NNG does",
    roles: ["pub", "bus"],
  },
  {
    flag: "survey-time",
    type: "string",
    value: "MS",
    help: "how long answers are taken (default 1000)",
    roles: ["survey"],
  },
  {
    flag: "timeout",
    type: "string",
    value: "MS",
    help: "give up waiting for peers or messages after MS",
    roles: ALL,
  },
  {
    flag: "raw",
    type: "boolean",
    help: "print message bodies as they are (no line per message)",
    roles: [...RECEIVERS, ...DUPLEX, "survey", "respond"],
  },
  {
    flag: "tls-cert",
    type: "string",
    value: "FILE",
    help: "PEM certificate (listening: the server's; dialing: the client's)",
    roles: ALL,
  },
  {
    flag: "tls-key",
    type: "string",
    value: "FILE",
    help: "PEM private key of --tls-cert",
    roles: ALL,
  },
  {
    flag: "tls-ca",
    type: "string",
    value: "FILE",
    help: "PEM CA: verify servers with it; listening on tls+tcp://, admit only clients it signed",
    roles: ALL,
  },
  {
    flag: "tls-insecure",
    type: "boolean",
    help: "dial tls+tcp:// without verifying the server (nngcat --insecure)",
    roles: ALL,
  },
];

const PROTOCOL: Record<Role, SocketProtocol> = {
  pub: "pub",
  sub: "sub",
  push: "push",
  pull: "pull",
  survey: "surveyor",
  respond: "respondent",
  pair: "pair",
  bus: "bus",
};

const SUMMARY: Record<Role, string> = {
  pub: "publish standard input lines (or --data) to NNG subscribers",
  sub: "print messages from NNG publishers, filtered by --topic",
  push: "push standard input lines (or --data) to NNG pullers, one each",
  pull: "print messages pushed by NNG pushers",
  survey: "send one survey and print the answers that come in time",
  respond: "answer NNG surveys with --answer TEXT and print them",
  pair: "talk to one NNG pair0 peer: send standard input lines, print what it sends",
  bus: "talk to NNG bus peers: send standard input lines to all, print what they send",
};

/** What a role promises about the lines it sends, where that needs saying. */
const NOTES: Partial<Record<Role, string>> = {
  pub: `Every subscriber gets every line: input is read at the pace of the slowest
subscriber (one that stops reading holds pub up; pub says so the first time it waits).
With --drop-slow pub never waits and a slow subscriber loses its oldest queued lines, as
NNG's pub does.
`,
  sub: `Every message that reaches sub is printed: while its output is slow it stops reading,
which holds up an rsock pub (an NNG publisher drops for it instead).
`,
  bus: `Every peer gets every line: input is read at the pace of the slowest peer. With
--drop-slow bus never waits and a slow peer misses lines, as NNG's bus does.
`,
};

const EXAMPLES: Record<Role, string> = {
  pub: "  tail -f app.log | rsock pub --listen tcp://127.0.0.1:5560",
  sub: "  rsock sub --dial tcp://127.0.0.1:5560 --topic ERROR --topic WARN",
  push: "  seq 1 100 | rsock push --listen ipc:///tmp/jobs.ipc --peers 2",
  pull: "  rsock pull --dial ipc:///tmp/jobs.ipc --count 50",
  survey: "  rsock survey --listen tcp://0.0.0.0:5570 --data status? --peers 3 --survey-time 500",
  respond: "  rsock respond --dial tls+tcp://host:5570 --tls-ca ca.pem --answer ok",
  pair:
    "  rsock pair --listen tcp://127.0.0.1:5580       # then: nngcat --pair0 --dial … --data hi",
  bus: "  rsock bus --listen tcp://127.0.0.1:5590 --dial tcp://127.0.0.1:5591",
};

function help(role: Role): string {
  const rows = OPTIONS.filter((row) => row.roles.includes(role));
  const left = rows.map((row) =>
    `  --${row.flag}${row.value === undefined ? "" : ` ${row.value}`}`
  );
  const width = Math.max(...left.map((text) => text.length)) + 2;
  const lines = rows.map((row, i) => `${left[i]!.padEnd(width)}${row.help}`);
  const note = NOTES[role] === undefined ? "" : `${NOTES[role]}\n`;
  return `rsock ${role} — ${SUMMARY[role]}

Usage: rsock ${role} (--listen URL | --dial URL)... [options]

URLs: tcp://host:port, ipc:///path, ws://host:port/path, tls+tcp://host:port, wss://host:port/path

${lines.join("\n")}

${note}Permissions: --allow-net=HOST:PORT per URL (ipc: --allow-read=PATH --allow-write=PATH
--allow-net=unix:PATH; --tls-*: --allow-read=FILE)

${EXAMPLES[role]}`;
}

function options(role: Role): ParseArgsOptionsConfig {
  const config: ParseArgsOptionsConfig = {};
  for (const row of OPTIONS) {
    if (!row.roles.includes(role)) continue;
    config[row.flag] = row.multiple === true
      ? { type: "string", multiple: true }
      : { type: row.type };
  }
  return config;
}

function list(args: ParsedArgs, flag: string): string[] {
  const value = args.values[flag];
  return Array.isArray(value) ? value.map(String) : typeof value === "string" ? [value] : [];
}

function needsFor(url: string, flag: string): Needed[] {
  return endpointNeeds(url, `--${flag}`).needs;
}

async function tlsFrom(args: ParsedArgs): Promise<TlsOptions> {
  const read = async (flag: string) => {
    const path = stringFlag(args, flag);
    return path === undefined ? undefined : await Deno.readTextFile(path);
  };
  const cert = await read("tls-cert");
  const key = await read("tls-key");
  const ca = await read("tls-ca");
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  return {
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(ca === undefined ? {} : { ca }),
    ...(args.values["tls-insecure"] === true ? { insecure: true } : {}),
  };
}

/** A body as a line: nanonext strings end in a NUL, which is not printed. */
function printable(body: Uint8Array): string {
  const end = body.at(-1) === 0 ? body.length - 1 : body.length;
  return new TextDecoder().decode(body.subarray(0, end));
}

function count(args: ParsedArgs, flag: string, fallback: number): number {
  return parsePositiveInteger(stringFlag(args, flag), fallback, `--${flag}`);
}

function whole(args: ParsedArgs, flag: string, fallback: number): number {
  const text = stringFlag(args, flag);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`--${flag} must be a whole number of at least 0, got "${text}"`);
  }
  return Number(text);
}

async function runRole(role: Role, args: ParsedArgs, output: Output): Promise<number> {
  if (args.positionals.length > 0) {
    throw new UsageError(
      `unexpected "${args.positionals[0]}"; give endpoints as --listen URL or --dial URL`,
    );
  }
  const listen = list(args, "listen");
  const dial = list(args, "dial");
  if (listen.length + dial.length === 0) {
    throw new UsageError("give at least one --listen or --dial URL");
  }
  const needs = [
    ...listen.flatMap((url) => needsFor(url, "listen")),
    ...dial.flatMap((url) => needsFor(url, "dial")),
  ];
  for (const flag of ["tls-cert", "tls-key", "tls-ca"]) {
    const path = stringFlag(args, flag);
    if (path !== undefined) needs.push({ name: "read", path });
  }
  const limit = stringFlag(args, "count") === undefined ? Infinity : count(args, "count", 1);
  const timeoutText = stringFlag(args, "timeout");
  const timeout = timeoutText === undefined ? undefined : count(args, "timeout", 1);
  const wait = timeout === undefined ? {} : { timeout };
  const peers = whole(args, "peers", 1);
  const interval = whole(args, "interval", 0);
  const surveyTime = whole(args, "survey-time", 1000);
  const raw = args.values.raw === true;
  const dropSlow = args.values["drop-slow"] === true;
  await requirePermissions(needs);
  const tls = await tlsFrom(args);
  const stop = untilStopped();
  const controller = new AbortController();
  stop.promise.then(() => controller.abort());
  const signal = controller.signal;
  const print = (body: Uint8Array) => {
    if (raw) Deno.stdout.writeSync(body);
    else output.write(printable(body) + "\n");
  };
  try {
    await using sock: Socket = await socket(PROTOCOL[role], {
      listen,
      dial,
      tls,
      surveyTime,
      // A subscriber or worker started before its peer waits for it, as nanonext dials.
      retryFirstDial: true,
      ...(role === "sub"
        ? { subscribe: list(args, "topic").length > 0 ? list(args, "topic") : "" }
        : {}),
      // A user piping a file in expects every line: pub waits for the slowest subscriber, and
      // sub prints every message that reaches it (a slow output slows its reading instead).
      ...(role === "pub" || role === "sub"
        ? { slowSubscriber: dropSlow ? "drop" : "wait" } as const
        : {}),
      onError: (error) => output.error(`rsock ${role}: ${error.message}`),
    });
    for (const url of sock.urls) output.error(`rsock ${role}: listening on ${url}`);
    const encoder = new TextEncoder();
    let toldSlow = false;
    let sentSinceFlush = 0;
    const send = async (body: Uint8Array) => {
      if (role === "bus" && !dropSlow && ++sentSinceFlush > PACE_EVERY) {
        sentSinceFlush = 1;
        await sock.flush({ signal });
      }
      const sending = sock.sendBytes(body, { signal });
      // heldBack counts a wait as it begins: say so once, while the subscriber holds pub back.
      if (!toldSlow && sock.heldBack > 0) {
        toldSlow = true;
        output.error(
          `rsock ${role}: a subscriber's queue is full; reading input at the slowest ` +
            "subscriber's pace (--drop-slow: drop for slow subscribers instead)",
        );
      }
      await sending;
    };
    const receiveAll = async () => {
      for (let received = 0; received < limit && !signal.aborted; received++) {
        print((await sock.recvMessage({ ...wait, signal })).body);
      }
    };
    // A duplex role prints while it sends (a pair peer may speak first).
    const receiving = DUPLEX.includes(role) ? receiveAll() : undefined;
    receiving?.catch(() => {}); // awaited below; not unhandled while sending
    if (SENDERS.includes(role) || DUPLEX.includes(role) || role === "survey") {
      if (peers > 0) await sock.waitForPipes(peers, { ...wait, signal });
    }
    switch (role) {
      case "pub":
      case "push":
      case "pair":
      case "bus": {
        const data = stringFlag(args, "data");
        let sent = 0;
        if (data !== undefined) {
          const times = limit === Infinity ? 1 : limit;
          for (; sent < times && !signal.aborted; sent++) {
            if (sent > 0 && interval > 0) {
              await new Promise((resolve) => setTimeout(resolve, interval));
            }
            await send(encoder.encode(data));
          }
        } else {
          for await (const line of readLines(Deno.stdin.readable)) {
            if (signal.aborted || sent >= limit) break;
            await send(encoder.encode(line));
            sent++;
          }
        }
        // --drop-slow never waits for a subscriber; close's linger still lets readers have
        // what is queued.
        if (!dropSlow) await sock.flush({ ...wait, signal });
        // Duplex: go on printing until --count messages came, --timeout passed or Ctrl-C.
        await receiving;
        return 0;
      }
      case "sub":
      case "pull":
        await receiveAll();
        return 0;
      case "survey": {
        const data = stringFlag(args, "data");
        if (data === undefined) throw new UsageError("give the survey with --data TEXT");
        await sock.sendBytes(encoder.encode(data));
        for (let received = 0; received < limit && !signal.aborted; received++) {
          try {
            print((await sock.recvMessage({ signal })).body);
          } catch (error) {
            if (error instanceof TimeoutError) break;
            throw error;
          }
        }
        return 0;
      }
      case "respond": {
        const answer = stringFlag(args, "answer");
        if (answer === undefined) throw new UsageError("give the answer with --answer TEXT");
        for (let received = 0; received < limit && !signal.aborted; received++) {
          print((await sock.recvMessage({ ...wait, signal })).body);
          await sock.sendBytes(encoder.encode(answer));
        }
        await sock.flush({ ...wait, signal });
        return 0;
      }
    }
  } catch (error) {
    if (signal.aborted) return 0;
    if (error instanceof TimeoutError) {
      output.error(`rsock ${role}: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    stop.dispose();
  }
}

function command(role: Role): Command {
  return {
    name: role,
    summary: SUMMARY[role],
    help: help(role),
    positionals: true,
    options: options(role),
    run: (args, output) => runRole(role, args, output),
  };
}

/** The family subcommands, in the order `rsock --help` lists them. */
export const nngCommands: readonly Command[] = [
  command("pub"),
  command("sub"),
  command("push"),
  command("pull"),
  command("survey"),
  command("respond"),
  command("pair"),
  command("bus"),
];
