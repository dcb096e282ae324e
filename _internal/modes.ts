/**
 * nanonext's send and receive modes: how values become message bodies and back. `serial` is R
 * serialization (the `serial/` codec); the others are raw native little-endian bytes.
 *
 * @module
 */

import {
  isRValue,
  type RValue,
  serialize,
  type SerializeOptions,
  simplify,
  type SimplifyOptions,
  unserialize,
  type UnserializeOptions,
} from "../serial/mod.ts";
import { concatBytes } from "./bytes.ts";

/** How a value is sent: R serialization (default) or its raw bytes. */
export type SendMode = "serial" | "raw";
/**
 * How a received body is read, as nanonext's `recv(mode =)`; `"typed"` (rsock's own) reads R
 * serialization like `"serial"` but returns the exact typed {@linkcode RValue} tree instead of
 * simplifying it.
 */
export type RecvMode =
  | "serial"
  | "typed"
  | "character"
  | "complex"
  | "double"
  | "integer"
  | "logical"
  | "numeric"
  | "raw"
  | "string";

const RECV_MODES: readonly RecvMode[] = [
  "serial",
  "typed",
  "character",
  "complex",
  "double",
  "integer",
  "logical",
  "numeric",
  "raw",
  "string",
];

/**
 * Checks a mode name from user input.
 *
 * @example
 * ```ts
 * import { checkRecvMode } from "@x/rsock/reqrep";
 * const mode = checkRecvMode("double"); // "double", typed as a RecvMode
 * // checkRecvMode("float") throws a TypeError naming the modes there are
 * ```
 */
export function checkRecvMode(mode: string): RecvMode {
  if ((RECV_MODES as readonly string[]).includes(mode)) return mode as RecvMode;
  throw new TypeError(`receive mode "${mode}" is not one of ${RECV_MODES.join(", ")}`);
}

/**
 * Checks a send mode name from user input.
 *
 * @example
 * ```ts
 * import { checkSendMode } from "@x/rsock/reqrep";
 * const mode = checkSendMode("raw"); // "raw", typed as a SendMode
 * ```
 */
export function checkSendMode(mode: string): SendMode {
  if (mode === "serial" || mode === "raw") return mode;
  throw new TypeError(`send mode "${mode}" is not one of serial, raw`);
}

/**
 * What a socket passes to R's serialization for every message it writes in `"serial"` mode:
 * the writer's refhook (`persistentName`), format and version. `like` is set per reply, and a
 * borrowed buffer could be overwritten while the message waits to be sent, so neither is here.
 */
export type SerialWriteOptions = Pick<SerializeOptions, "format" | "version" | "persistentName">;

/**
 * The R serialization hooks and bounds of a socket, applied to every message it sends or
 * receives in `"serial"` mode (`"typed"` too when receiving), as nanonext's `serial_config()`
 * set on a socket with `opt(s, "serial") <- cfg`. Each field is handed as it is to the codec
 * function of its name: `unserialize` (its `persistentReference` hook, R's `refhook` on reading,
 * and the bounds `maxElements`, `maxExpandedElements`, `maxDepth`), `serialize`
 * (`persistentName`, R's `refhook` on writing; `format`, `version`) and `simplify`.
 *
 * nanonext's hooks are per class (`serial_config("torch_tensor", sfunc, ufunc)`); these are R's
 * own refhooks, called for every environment, external pointer and weak reference, which is
 * where such objects travel as persistent references.
 *
 * @example Environments by name, both ways
 * ```ts
 * import { type REnvironment, reply, socket } from "@x/rsock/reqrep";
 * const sessions = new Map<string, REnvironment>(); // filled by the application
 * await using rep = await socket("rep", {
 *   listen: "tcp://127.0.0.1:0",
 *   serial: {
 *     // R: serialize(list(e), NULL, refhook = function(x) "session-7")
 *     unserialize: { persistentReference: ([name]) => sessions.get(name ?? "")! },
 *     serialize: {
 *       persistentName: (value) => {
 *         for (const [name, env] of sessions) if (env === value) return [name];
 *         return undefined;
 *       },
 *     },
 *   },
 * });
 * ```
 */
export interface SerialConfig {
  /** Given to `unserialize` for every message received in `"serial"` or `"typed"` mode. */
  readonly unserialize?: UnserializeOptions;
  /** Given to `serialize` for every message sent in `"serial"` mode. */
  readonly serialize?: SerialWriteOptions;
  /** Given to `simplify` for every message received in `"serial"` mode. */
  readonly simplify?: SimplifyOptions;
}

function checkFunction(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(`serial.${name} must be a function, got ${typeof value}`);
  }
}

function checkCount(value: unknown, name: string): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
    throw new RangeError(`serial.${name} must be a whole number >= 0, got ${String(value)}`);
  }
}

function checkObject(value: unknown, name: string): void {
  if (value !== undefined && (value === null || typeof value !== "object")) {
    throw new TypeError(`serial${name} must be an object, got ${String(value)}`);
  }
}

/**
 * Checks a socket's `serial` option where the socket is made, so a typo fails there and not at
 * the first message; returns it (an empty config when absent).
 */
export function checkSerialConfig(config: SerialConfig | undefined): SerialConfig {
  if (config === undefined) return {};
  checkObject(config, "");
  const { unserialize: read, serialize: write, simplify: plain } = config;
  checkObject(read, ".unserialize");
  checkObject(write, ".serialize");
  checkObject(plain, ".simplify");
  if (read !== undefined) {
    checkFunction(read.persistentReference, "unserialize.persistentReference");
    checkCount(read.maxElements, "unserialize.maxElements");
    checkCount(read.maxExpandedElements, "unserialize.maxExpandedElements");
    checkCount(read.maxDepth, "unserialize.maxDepth");
  }
  if (write !== undefined) {
    checkFunction(write.persistentName, "serialize.persistentName");
    const { format, version } = write;
    if (format !== undefined && format !== "binary" && format !== "xdr" && format !== "ascii") {
      throw new TypeError(
        `serial.serialize.format must be "binary", "xdr" or "ascii", got ${String(format)}`,
      );
    }
    if (version !== undefined && version !== 2 && version !== 3) {
      throw new TypeError(`serial.serialize.version must be 2 or 3, got ${String(version)}`);
    }
  }
  if (plain !== undefined) checkCount(plain.maxExpandedElements, "simplify.maxExpandedElements");
  return config;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const NA_REAL = new Float64Array(new Uint32Array([1954, 0x7ff00000]).buffer)[0]!;

/** Raw bytes of a value, as nanonext's `send(mode = "raw")` writes an atomic vector. */
function encodeRaw(data: unknown): Uint8Array {
  if (data === null || data === undefined) return new Uint8Array(0);
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return encoder.encode(data + "\0");
  if (typeof data === "number") return bytesOf(new Float64Array([data]));
  if (typeof data === "boolean") return bytesOf(new Int32Array([data ? 1 : 0]));
  if (ArrayBuffer.isView(data)) return bytesOf(data);
  if (isRValue(data)) {
    const value = data as RValue;
    switch (value.type) {
      case "NULL":
        return new Uint8Array(0);
      case "raw":
      case "logical":
      case "integer":
      case "double":
      case "complex":
        return bytesOf(value.data);
      case "character":
        return concatBytes(value.data.map((s) => encoder.encode((s ?? "NA") + "\0")));
      default:
        break;
    }
  }
  if (Array.isArray(data)) {
    if (data.every((x) => typeof x === "number" || x === null)) {
      return bytesOf(Float64Array.from(data, (x) => x === null ? NA_REAL : x));
    }
    if (data.every((x) => typeof x === "string" || x === null)) {
      return concatBytes(data.map((s) => encoder.encode((s ?? "NA") + "\0")));
    }
    if (data.every((x) => typeof x === "boolean" || x === null)) {
      return bytesOf(Int32Array.from(data, (x) => x === null ? -0x80000000 : x ? 1 : 0));
    }
  }
  throw new TypeError(
    'mode "raw" sends an atomic vector: a number, string, boolean, an array of one of them, ' +
      "a typed array, Uint8Array, or null",
  );
}

/**
 * Encodes `data` for the wire in `mode`; in serial mode `like` (the typed request a reply
 * answers) gives `data` its R type and attributes back where it still fits them, and `config`
 * is the socket's (its `serialize` options).
 */
export function encodeBody(
  data: unknown,
  mode: SendMode = "serial",
  like?: RValue,
  config: SerialConfig = {},
): Uint8Array {
  if (mode === "raw") return encodeRaw(data);
  if (mode === "serial") {
    const options: SerializeOptions = { ...config.serialize };
    if (like !== undefined) options.like = like;
    return serialize(data as Parameters<typeof serialize>[0], options);
  }
  throw new TypeError(`send mode "${String(mode)}" is not one of serial, raw`);
}

/** What `simplify` made of a value, for telling a reply derived from the request. */
function shapeOf(value: unknown): "scalar" | "array" | "object" | "other" {
  if (value === null || value === undefined) return "scalar";
  switch (typeof value) {
    case "number":
    case "string":
    case "boolean":
      return "scalar";
    case "object":
      if (Array.isArray(value) || ArrayBuffer.isView(value)) return "array";
      return Object.getPrototypeOf(value) === Object.prototype ? "object" : "other";
  }
  return "other";
}

/**
 * The R value a reply is written like: `like` (the typed request) when `reply` was derived from
 * `request` (what simplify made of it), `undefined` when it was built from scratch, so a
 * reply's R type never depends on a request it was not made from. Derived means: the request's
 * own array or object, edited or not (it carries its R origin anyway), or a value of the
 * request's shape — a scalar for a scalar (`x + 1`), an array of the request's length
 * (`x.map(…)`), an object with every key of the request (`{ ...x, added: 2 }`).
 */
export function likeFor(reply: unknown, request: unknown, like?: RValue): RValue | undefined {
  if (like === undefined) return undefined;
  const shape = shapeOf(reply);
  if (shape !== shapeOf(request)) return undefined;
  switch (shape) {
    case "scalar":
      return like;
    case "array":
      return (reply as ArrayLike<unknown>).length === (request as ArrayLike<unknown>).length
        ? like
        : undefined;
    case "object": {
      const keys = new Set(Object.keys(reply as object));
      return Object.keys(request as object).every((key) => keys.has(key)) ? like : undefined;
    }
  }
  return undefined;
}

/** A decoded body, or the raw bytes with the reason they could not be converted. */
export interface Decoded {
  readonly value: unknown;
  readonly warning?: string;
  /** In serial mode, the typed R value `value` was simplified from. */
  readonly like?: RValue;
}

function isRStream(bytes: Uint8Array): boolean {
  const first = bytes[0];
  return bytes.length > 12 &&
    (first === 0x41 || first === 0x42 || first === 0x58 || first === 0x07);
}

function reinterpret<T>(
  bytes: Uint8Array,
  width: number,
  what: string,
  make: (buffer: ArrayBuffer, length: number) => T,
): Decoded {
  if (bytes.length % width !== 0) {
    return { value: bytes, warning: `received data could not be converted to ${what}` };
  }
  // Copy so the view is aligned and owned.
  const copy = bytes.slice();
  return { value: make(copy.buffer, bytes.length / width) };
}

/**
 * Decodes a body received in `mode`, as nanonext does (bytes that do not fit stay raw); R
 * serialization with the socket's `config`.
 */
export function decodeBody(
  bytes: Uint8Array,
  mode: RecvMode = "serial",
  config: SerialConfig = {},
): Decoded {
  switch (mode) {
    case "serial":
    case "typed": {
      if (!isRStream(bytes)) {
        return { value: bytes, warning: "received data could not be unserialized" };
      }
      const typed = unserialize(bytes, config.unserialize);
      return mode === "typed"
        ? { value: typed }
        : { value: simplify(typed, config.simplify), like: typed };
    }
    case "raw":
      return { value: bytes };
    case "string": {
      const nul = bytes.indexOf(0);
      if (nul !== -1 && nul !== bytes.length - 1) {
        return { value: bytes, warning: "data could not be converted to a character string" };
      }
      return { value: decoder.decode(nul === -1 ? bytes : bytes.subarray(0, nul)) };
    }
    case "character": {
      if (bytes.length === 0) return { value: [""] };
      const pieces = decoder.decode(bytes).split("\0");
      while (pieces.length > 1 && pieces[pieces.length - 1] === "") pieces.pop();
      return { value: pieces };
    }
    case "double":
    case "numeric":
      return reinterpret(bytes, 8, "double", (b, n) => new Float64Array(b, 0, n));
    case "integer":
      return reinterpret(bytes, 4, "integer", (b, n) => new Int32Array(b, 0, n));
    case "logical":
      return reinterpret(
        bytes,
        4,
        "logical",
        (b, n) => Array.from(new Int32Array(b, 0, n), (x) => x === -0x80000000 ? null : x !== 0),
      );
    case "complex":
      return reinterpret(bytes, 16, "complex", (b, n) => {
        const parts = new Float64Array(b, 0, n * 2);
        return Array.from({ length: n }, (_, i) => ({ re: parts[2 * i]!, im: parts[2 * i + 1]! }));
      });
  }
}
