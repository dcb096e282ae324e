/**
 * `rsock pub|sub|push|pull|survey|respond|pair|bus`: the NNG family from the shell, with
 * nngcat's flags (the table in `_sp_options.ts`, shared with `req` and `rep`).
 *
 * @module
 */

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
  parseDuration,
  parsePositiveInteger,
  requirePermissions,
  stringFlag,
  untilStopped,
  UsageError,
} from "./_common.ts";
import { endpointNeeds } from "./req.ts";
import {
  endpointsOf,
  flagsFor,
  formatBytes,
  formatOf,
  list,
  noticeWaiting,
  sharedNotes,
  type SpRole,
  writeShown,
} from "./_sp_options.ts";
import { pause } from "../_internal/pause.ts";

type Role = Exclude<SpRole, "req" | "rep">;

const SENDERS: readonly Role[] = ["pub", "push"];
/** Send standard input lines (or --data) and print what comes, both at once. */
const DUPLEX: readonly Role[] = ["pair", "bus"];

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
  sub: "print messages from NNG publishers, filtered by --subscribe",
  push: "push standard input lines (or --data) to NNG pullers, one each",
  pull: "print messages pushed by NNG pushers",
  survey: "send one survey and print the answers that come in time",
  respond: "answer NNG surveys with --data TEXT and print them",
  pair: "talk to one NNG pair0 peer: send standard input lines, print what it sends",
  bus: "talk to NNG bus peers: send standard input lines to all, print what they send",
};

/** What a role promises about the lines it sends, where that needs saying. */
const NOTES: Partial<Record<Role, string>> = {
  pub: `Every subscriber gets every line: input is read at the pace of the slowest
subscriber (one that stops reading holds pub up; pub says so the first time it waits).
With --drop-slow pub never waits and a slow subscriber loses its oldest queued lines, as
NNG's pub does. pub sends a line as its bytes, without nanonext's closing NUL; R reads it
with recv(s, mode = "character").
`,
  sub: `Every message that reaches sub is printed: while its output is slow it stops reading,
which holds up an rsock pub (an NNG publisher drops for it instead). The default format
prints each message as a line (a closing NUL, nanonext's string end, left out), so a message
with newlines spans several lines; --quoted prints one line per message, as nngcat.
`,
  bus: `Every peer gets every line: input is read at the pace of the slowest peer (one that
stops reading holds bus up; bus says so the first time it waits). With --drop-slow bus never
waits and a slow peer misses lines, as NNG's bus does.
`,
};

const EXAMPLES: Record<Role, string> = {
  pub: "  tail -f app.log | rsock pub tcp://127.0.0.1:5560",
  sub: "  rsock sub tcp://127.0.0.1:5560 --subscribe ERROR --subscribe WARN",
  push: "  seq 1 100 | rsock push ipc:///tmp/jobs.ipc --peers 2",
  pull: "  rsock pull ipc:///tmp/jobs.ipc --count 50",
  survey: "  rsock survey tcp://0.0.0.0:5570 --data status? --peers 3 --survey-time 500ms",
  respond: "  rsock respond tls+tcp://host:5570 --tls-ca ca.pem --data ok",
  pair:
    "  rsock pair --listen tcp://127.0.0.1:5580       # then: nngcat --pair0 --dial … --data hi",
  bus: "  rsock bus --listen tcp://127.0.0.1:5590 --dial tcp://127.0.0.1:5591",
};

function notes(role: Role): string {
  const note = NOTES[role] === undefined ? "" : `${NOTES[role]}\n`;
  const files = flagsFor(role)
    .filter((flag) => flag.value === "FILE")
    .map((flag) => `--${flag.name}`)
    .join(", ");
  return `${sharedNotes(role)}

${note}Permissions: --allow-net=HOST:PORT per URL (ipc: --allow-read=PATH --allow-write=PATH
--allow-net=unix:PATH; the files of ${files}: --allow-read=FILE)

${EXAMPLES[role]}`;
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

function whole(args: ParsedArgs, flag: string, fallback: number): number {
  const text = stringFlag(args, flag);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`--${flag} must be a whole number of at least 0, got "${text}"`);
  }
  return Number(text);
}

function duration(args: ParsedArgs, flag: string): number | undefined {
  const text = stringFlag(args, flag);
  return text === undefined ? undefined : parseDuration(text, 0, `--${flag}`);
}

/** The message `--data` or `--file` gives (`--file -`: all of standard input), if any. */
async function fixedMessage(args: ParsedArgs): Promise<Uint8Array | undefined> {
  const data = stringFlag(args, "data");
  const file = stringFlag(args, "file");
  if (data !== undefined && file !== undefined) {
    throw new UsageError("give the message once: --data TEXT or --file FILE");
  }
  if (data !== undefined) return new TextEncoder().encode(data);
  if (file === "-") return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  return file === undefined ? undefined : await Deno.readFile(file);
}

async function runRole(role: Role, args: ParsedArgs, output: Output): Promise<number> {
  const { listen, dial } = endpointsOf(role, args);
  if (listen.length + dial.length === 0) {
    throw new UsageError("give at least one URL: URL, --listen URL or --dial URL");
  }
  const needs = [
    ...listen.flatMap((url) => needsFor(url, "listen")),
    ...dial.flatMap((url) => needsFor(url, "dial")),
  ];
  for (const flag of ["tls-cert", "tls-key", "tls-ca", "file"]) {
    const path = stringFlag(args, flag);
    if (path !== undefined && path !== "-") needs.push({ name: "read", path });
  }
  const limit = stringFlag(args, "count") === undefined
    ? Infinity
    : parsePositiveInteger(stringFlag(args, "count"), 1, "--count");
  const recvTimeout = duration(args, "recv-timeout");
  const sendTimeout = duration(args, "send-timeout");
  const recvWait = recvTimeout === undefined ? {} : { timeout: recvTimeout };
  const sendWait = sendTimeout === undefined ? {} : { timeout: sendTimeout };
  const peers = whole(args, "peers", 1);
  const interval = duration(args, "interval") ?? 0;
  const delay = duration(args, "delay") ?? 0;
  const surveyTime = duration(args, "survey-time") ?? 1000;
  const format = formatOf(args);
  const dropSlow = args.values["drop-slow"] === true;
  const failFast = args.values["fail-fast"] === true;
  if (
    (role === "survey" || role === "respond") && stringFlag(args, "data") === undefined &&
    stringFlag(args, "file") === undefined
  ) {
    throw new UsageError(
      `give the ${role === "survey" ? "survey" : "answer"} with --data TEXT or --file FILE`,
    );
  }
  await requirePermissions(needs);
  const tls = await tlsFrom(args);
  const fixed = await fixedMessage(args);
  const stop = untilStopped();
  const controller = new AbortController();
  stop.promise.then(() => controller.abort());
  const signal = controller.signal;
  const print = (body: Uint8Array) => {
    if (format === "text") output.write(printable(body) + "\n");
    else writeShown(output, formatBytes(body, format));
  };
  let cancelNotice = () => {};
  try {
    await using sock: Socket = await socket(PROTOCOL[role], {
      listen,
      dial,
      tls,
      surveyTime,
      // A subscriber or worker started before its peer waits for it, as nanonext dials;
      // --fail-fast reports a refused dial at once, as nngcat does.
      retryFirstDial: !failFast,
      ...(role === "sub"
        ? { subscribe: list(args, "subscribe").length > 0 ? list(args, "subscribe") : "" }
        : {}),
      // A user piping a file in expects every line: pub and bus wait for the slowest reader,
      // and sub prints every message that reaches it (a slow output slows its reading instead).
      ...(role === "pub" || role === "sub"
        ? { slowSubscriber: dropSlow ? "drop" : "wait" } as const
        : {}),
      ...(role === "bus" ? { slowPeer: dropSlow ? "drop" : "wait" } as const : {}),
      onError: (error) => output.error(`rsock ${role}: ${error.message}`),
    });
    for (const url of sock.urls) output.error(`rsock ${role}: listening on ${url}`);
    cancelNotice = noticeWaiting(
      sock,
      [...sock.urls, ...dial],
      (line) => output.error(`rsock ${role}: ${line}`),
    );
    let toldSlow = false;
    const reader = role === "pub" ? "subscriber" : "peer";
    const send = async (body: Uint8Array) => {
      const sending = sock.sendBytes(body, { ...sendWait, signal });
      // heldBack counts a wait as it begins: say so once, while the slow reader holds us back.
      if (!toldSlow && sock.heldBack > 0) {
        toldSlow = true;
        output.error(
          `rsock ${role}: a ${reader}'s queue is full; reading input at the slowest ` +
            `${reader}'s pace (--drop-slow: drop for slow ${reader}s instead)`,
        );
      }
      await sending;
    };
    // --recv-timeout ends the receiving once no message came for that long, with status 0, as
    // nngcat's does; a send that times out is an error (status 1), as in nngcat.
    const receiveOne = async (): Promise<Uint8Array | undefined> => {
      try {
        return (await sock.recvMessage({ ...recvWait, signal })).body;
      } catch (error) {
        if (error instanceof TimeoutError && recvTimeout !== undefined) return undefined;
        throw error;
      }
    };
    const receiveAll = async () => {
      for (let received = 0; received < limit && !signal.aborted; received++) {
        const body = await receiveOne();
        if (body === undefined) return;
        print(body);
      }
    };
    // A duplex role prints while it sends (a pair peer may speak first).
    const receiving = DUPLEX.includes(role) ? receiveAll() : undefined;
    receiving?.catch(() => {}); // awaited below; not unhandled while sending
    if (SENDERS.includes(role) || DUPLEX.includes(role) || role === "survey") {
      if (peers > 0) await sock.waitForPipes(peers, { ...sendWait, signal });
      await pause(delay, signal);
    }
    switch (role) {
      case "pub":
      case "push":
      case "pair":
      case "bus": {
        let sent = 0;
        if (fixed !== undefined) {
          // As nngcat: --interval without --count sends again until Ctrl-C.
          const times = limit !== Infinity ? limit : interval > 0 ? Infinity : 1;
          for (; sent < times && !signal.aborted; sent++) {
            if (sent > 0) await pause(interval, signal);
            if (!signal.aborted) await send(fixed);
          }
        } else {
          const encoder = new TextEncoder();
          for await (const line of readLines(Deno.stdin.readable)) {
            if (signal.aborted || sent >= limit) break;
            await send(encoder.encode(line));
            sent++;
          }
        }
        // --drop-slow never waits for a slow reader; close's linger still lets readers have
        // what is queued.
        if (!dropSlow) await sock.flush({ ...sendWait, signal });
        // Duplex: go on printing until --count messages came, --recv-timeout passed or Ctrl-C.
        await receiving;
        return 0;
      }
      case "sub":
      case "pull":
        await receiveAll();
        return 0;
      case "survey": {
        await sock.sendBytes(fixed!, { ...sendWait, signal });
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
        for (let received = 0; received < limit && !signal.aborted; received++) {
          const body = await receiveOne();
          if (body === undefined) break;
          print(body);
          await sock.sendBytes(fixed!, { ...sendWait, signal });
        }
        await sock.flush({ ...sendWait, signal });
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
    cancelNotice();
    stop.dispose();
  }
}

function command(role: Role): Command {
  return {
    name: role,
    summary: SUMMARY[role],
    synopsis: "[URL…]",
    flags: flagsFor(role),
    notes: notes(role),
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
