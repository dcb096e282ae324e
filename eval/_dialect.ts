/**
 * The R dialect of svSocket's wire as rsock's client speaks it: the lines that carry values
 * between JavaScript and an rsock server (JSON) or an R svSocket server (R code one way, the
 * hex of `serialize()` the other), apart from the connection that sends them.
 *
 * @module
 */

import { simplify, unserialize } from "../serial/mod.ts";

/** An R string literal for `text`. */
export function rString(text: string): string {
  return `"${
    text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")
      .replaceAll("\r", "\\r").replaceAll("\t", "\\t")
      // deno-lint-ignore no-control-regex
      .replace(/[\x00-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
  }"`;
}

/**
 * R code that rebuilds a JSON-like value (null, booleans, numbers, strings, arrays, plain
 * objects) — what `evalServer(conn, name, value)` assigns on an R server.
 *
 * @example
 * ```ts
 * import { toRCode } from "@x/rsock/eval";
 * toRCode({ a: [1, 2], b: "x" }); // 'list("a" = c(1, 2), "b" = "x")'
 * ```
 */
export function toRCode(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  if (typeof value === "number") {
    if (Number.isNaN(value)) return "NaN";
    if (!Number.isFinite(value)) return value > 0 ? "Inf" : "-Inf";
    return Number.isInteger(value) ? `${value}` : `${value}`;
  }
  if (typeof value === "string") return rString(value);
  if (Array.isArray(value)) {
    const scalar = value.every((v) => typeof v === "number") ||
      value.every((v) => typeof v === "string") || value.every((v) => typeof v === "boolean");
    return `${scalar && value.length > 0 ? "c" : "list"}(${value.map(toRCode).join(", ")})`;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    return `list(${entries.map(([k, v]) => `${rString(k)} = ${toRCode(v)}`).join(", ")})`;
  }
  throw new TypeError(`Cannot send a ${typeof value} to R; expected JSON-like data`);
}

/** R `serialize()` bytes → plain JS, with rsock's reader (serial/). */
export function decodeR(bytes: Uint8Array): unknown {
  return simplify(unserialize(bytes));
}

/** Starts the line that carries a value back to `evalServer()`. */
export const VALUE_TAG = "\u0001rsock-value:";

/** The line `evalServer()` sends to assign `value` to `name` (exported for tests). */
export function assignLine(dialect: "rsock" | "r", name: string, value: unknown): string {
  if (!/^[A-Za-z_$.][\w$.]*$/.test(name)) {
    throw new TypeError(`name must be a plain identifier, got "${name}"`);
  }
  return dialect === "r"
    ? `<<<h>>>assign(${rString(name)}, ${toRCode(value)}, envir = .GlobalEnv)`
    : `<<<h>>>globalThis[${JSON.stringify(name)}] = JSON.parse(${
      JSON.stringify(JSON.stringify(value) ?? "null")
    }); undefined`;
}

/**
 * The line `evalServer()` sends to get the value of `code` (exported for tests): the
 * value comes back on one line starting with {@linkcode VALUE_TAG}, as JSON (rsock) or as the
 * hex of R's `serialize(value, NULL)`.
 */
export function valueLine(dialect: "rsock" | "r", code: string): string {
  if (dialect === "r") {
    return `<<<h>>>local({ v <- try(eval(parse(text = ${
      rString(code)
    }), envir = .GlobalEnv), silent = TRUE); if (inherits(v, "try-error")) cat("Error:", ` +
      `conditionMessage(attr(v, "condition")), "\\n") else cat(${
        rString(VALUE_TAG)
      }, paste(serialize(v, NULL), collapse = ""), "\\n", sep = "") })`;
  }
  return `<<<h>>>console.log(${JSON.stringify(VALUE_TAG)} + JSON.stringify({ v: await (0, eval)(${
    JSON.stringify(code)
  }) }))`;
}

/** The tagged value line of a reply, or undefined (the reply is then an error message). */
export function taggedValue(reply: string): string | undefined {
  const tagged = reply.split("\n").find((line) => line.startsWith(VALUE_TAG));
  return tagged === undefined ? undefined : tagged.slice(VALUE_TAG.length).trim();
}

/** Bytes of a hex string (`"580a"` → `[0x58, 0x0a]`). */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`expected an even number of hex digits, got ${hex.length} characters`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
