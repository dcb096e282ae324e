/**
 * Typed R values: what the reader produces and the writer consumes. Every R value keeps what R
 * knows about it (integer vs double, NA vs NaN, attributes, string encodings), so a decoded value
 * written back is the same R object.
 *
 * @module
 */

/**
 * Integer and logical `NA` in R: `INT_MIN`.
 *
 * @example
 * ```ts
 * import { NA_INTEGER, serialize } from "@x/rsock/serial";
 * serialize({ type: "integer", data: new Int32Array([1, NA_INTEGER]) }); // c(1L, NA)
 * ```
 */
export const NA_INTEGER: number = -2147483648;

/**
 * Logical `NA` in R (the same bits as {@linkcode NA_INTEGER}).
 *
 * @example
 * ```ts
 * import { NA_LOGICAL, serialize } from "@x/rsock/serial";
 * serialize({ type: "logical", data: new Int32Array([1, NA_LOGICAL, 0]) }); // c(TRUE, NA, FALSE)
 * ```
 */
export const NA_LOGICAL: number = -2147483648;

/**
 * The low 32-bit word of R's `NA_real_`: a NaN whose payload is 1954. R tells `NA` from `NaN` by
 * this word alone, so JS must keep the bits (Float64Array does; `NaN` literals do not).
 */
export const NA_REAL_LOW_WORD = 1954;

const naScratch = new Float64Array(1);
const naScratchWords = new Uint32Array(naScratch.buffer);
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Index of the low 32-bit word of a double in a Uint32Array view, on this machine. */
export const LOW_WORD: number = LITTLE_ENDIAN_HOST ? 0 : 1;
/** True when this machine stores numbers little-endian (every platform Deno runs on). */
export const IS_LITTLE_ENDIAN: boolean = LITTLE_ENDIAN_HOST;

/**
 * True when `x` is R's `NA_real_` (a NaN whose low word is 1954), false for `NaN` and numbers.
 *
 * @example
 * ```ts
 * import { isNA, serialize, unserialize } from "@x/rsock/serial";
 * const v = unserialize(serialize([1, null, NaN]));
 * if (v.type === "double") console.log(Array.from(v.data, isNA)); // [false, true, false]
 * ```
 */
export function isNA(x: number): boolean {
  if (x === x) return false;
  naScratch[0] = x;
  return naScratchWords[LOW_WORD] === NA_REAL_LOW_WORD;
}

/**
 * Sets `array[index]` to R's `NA_real_`, writing the bits so the payload survives.
 *
 * @example
 * ```ts
 * import { serialize, setNA } from "@x/rsock/serial";
 * const data = new Float64Array([1.5, 0]);
 * setNA(data, 1);
 * serialize({ type: "double", data }); // c(1.5, NA)
 * ```
 */
export function setNA(array: Float64Array, index: number): void {
  const words = new Uint32Array(array.buffer, array.byteOffset + index * 8, 2);
  words[LOW_WORD] = NA_REAL_LOW_WORD;
  words[1 - LOW_WORD] = 0x7ff00000;
}

/**
 * How R marked a string's bytes (the CHARSXP encoding bits).
 *
 * @example
 * ```ts
 * import { REncoding, serialize } from "@x/rsock/serial";
 * // "café" written as latin1 bytes, as R's iconv(x, "UTF-8", "latin1") holds it
 * serialize({ type: "character", data: ["café"], encodings: [REncoding.latin1] });
 * ```
 */
export const REncoding = {
  /**
   * No mark: the writer's native encoding (UTF-8 for every modern R). A non-ASCII string so
   * marked is written unmarked, as R holds a string read without a declared encoding.
   */
  native: "native",
  /** Pure ASCII. */
  ascii: "ascii",
  /** Marked UTF-8 (what the writer uses for a non-ASCII string with no mark given). */
  utf8: "UTF-8",
  /** Marked latin1; the JS string holds the decoded characters. */
  latin1: "latin1",
  /** Marked "bytes": each JS char code 0–255 is one byte, kept as is. */
  bytes: "bytes",
  /**
   * No mark, and the bytes are not valid UTF-8 (R's `"caf\xe9"` typed in a UTF-8 session): each
   * JS char code 0–255 is one byte, written back unmarked as R had it.
   */
  nativeBytes: "native bytes",
} as const;

/** One of the {@linkcode REncoding} values. */
export type REncoding = typeof REncoding[keyof typeof REncoding];

/** Attributes of an R value, in R's order (`names`, `dim`, `class`, `row.names`, …). */
export type RAttributes = Record<string, RValue>;

/** The part every attributed R value shares. */
export interface RWithAttributes {
  /** Attributes in stream order; absent when the value has none. */
  attributes?: RAttributes;
  /**
   * R's 16 general-purpose bits of the object (`LEVELS`) as the stream had them, absent when 0:
   * `levels & 16` is the S4 bit (an S4 object with a data part, `setClass(contains =
   * "numeric")`); closures keep their JIT bits here. Written back as read.
   */
  levels?: number;
  /**
   * R's object bit, present only where it disagrees with the class attribute (R sets it
   * exactly when a class attribute exists, and the writer does the same when this is absent).
   */
  object?: boolean;
}

/** R `NULL`. */
export interface RNull {
  /** Discriminant. */
  type: "NULL";
}

/** An R logical vector: 1 TRUE, 0 FALSE, {@linkcode NA_LOGICAL} NA. */
export interface RLogical extends RWithAttributes {
  /** Discriminant. */
  type: "logical";
  /** The values. */
  data: Int32Array;
}

/** An R integer vector; `NA_integer_` is {@linkcode NA_INTEGER}. */
export interface RInteger extends RWithAttributes {
  /** Discriminant. */
  type: "integer";
  /** The values. */
  data: Int32Array;
}

/** An R double vector; `NA_real_` is a NaN with payload 1954 (see {@linkcode isNA}). */
export interface RDouble extends RWithAttributes {
  /** Discriminant. */
  type: "double";
  /** The values, NaN payloads intact. */
  data: Float64Array;
}

/** An R complex vector, stored as interleaved (re, im) pairs. */
export interface RComplex extends RWithAttributes {
  /** Discriminant. */
  type: "complex";
  /** `[re0, im0, re1, im1, …]`, length twice the vector length. */
  data: Float64Array;
}

/** An R character vector; `null` is `NA_character_`. */
export interface RCharacter extends RWithAttributes {
  /** Discriminant. */
  type: "character";
  /** The strings. */
  data: (string | null)[];
  /**
   * The encoding mark of each string, when any is not plain ASCII/UTF-8 (latin1 or bytes);
   * absent means "ASCII or UTF-8 as appropriate".
   */
  encodings?: REncoding[];
}

/** An R raw vector. */
export interface RRaw extends RWithAttributes {
  /** Discriminant. */
  type: "raw";
  /** The bytes. */
  data: Uint8Array;
}

/** An R list (VECSXP) or expression vector (EXPRSXP). */
export interface RList extends RWithAttributes {
  /** Discriminant. */
  type: "list" | "expression";
  /** The elements. */
  data: RValue[];
}

/**
 * One cell of a pairlist or call: an optional tag and a value. Inside byte code, R shares cells
 * between calls; the reader gives a shared cell as the same JS object, and the writer writes
 * it once (`BCREPDEF`) and refers to it after (`BCREPREF`), as R does.
 */
export interface RPairlistCell {
  /** The tag (argument or element name), absent when untagged. */
  tag?: string;
  /** The tag's print-name mark, where it is not R's parser's (see {@linkcode RSymbol.encoding}). */
  tagEncoding?: REncoding;
  /** The value in the cell. */
  value: RValue;
  /**
   * R's general-purpose bits of the cell, absent when 0: in an environment's frame, a locked
   * binding (`1 << 14`) or an active one (`1 << 15`).
   */
  levels?: number;
  /**
   * The SEXP type of a cell after the first where it is not a plain pairlist cell (R can link
   * a call cell into a chain); absent otherwise.
   */
  cellType?: "language" | "dots";
  /**
   * Attributes R set on this cell itself, for a cell after the first (the first cell's are the
   * list's own `attributes`); absent when it has none.
   */
  attributes?: RAttributes;
  /** R's object bit of a cell after the first, present only where it disagrees with `class`. */
  object?: boolean;
}

/**
 * An R pairlist (LISTSXP), call (LANGSXP, e.g. `quote(f(x))`, a formula) or the `...` of a
 * function's frame (DOTSXP).
 */
export interface RPairlist extends RWithAttributes {
  /** Discriminant. */
  type: "pairlist" | "language" | "dots";
  /** The cells in order; for a call, the first is the function. */
  data: RPairlistCell[];
}

/** An R symbol (`quote(x)`); the empty name is R's missing argument. */
export interface RSymbol {
  /** Discriminant. */
  type: "symbol";
  /** The print name. */
  name: string;
  /**
   * The print name's encoding mark where it is not R's parser's: a name R parsed from code is
   * unmarked (written so when this is absent), one `as.name()` made from a marked string keeps
   * that mark (`"UTF-8"`, `"latin1"`, `"bytes"`). Only non-ASCII names carry one.
   */
  encoding?: REncoding;
}

/** One of R's special environments, which cross the wire as a name only. */
export interface REnvironment {
  /** Discriminant. */
  type: "environment";
  /** Which one. */
  name: "global" | "empty" | "base" | "base namespace";
}

/**
 * A package (`as.environment("package:stats")`) or namespace (`asNamespace("stats")`)
 * environment, which R writes as its name: the reading R finds (or loads) it by that name.
 */
export interface RNamedEnvironment {
  /** Discriminant. */
  type: "environment";
  /** Which kind. */
  name: "package" | "namespace";
  /** What R writes: `"package:stats"`, or a namespace's `c(name, version)`. */
  spec: string[];
}

/**
 * An environment with its own bindings (`new.env()`, a closure's, a reference class object).
 * It is one JS object however often the value refers to it (R writes it once and then a
 * reference), and may hold itself: its `frame` can contain this very object.
 */
export interface RFrameEnvironment extends RWithAttributes {
  /** Discriminant. */
  type: "environment";
  /** The kind: an environment with a frame. */
  name: "frame";
  /** Whether it was locked (`lockEnvironment`). */
  locked: boolean;
  /** The enclosing environment (`parent.env`). */
  enclosure: RValue;
  /** The bindings of an unhashed environment: a pairlist (tags are the names), or NULL. */
  frame: RValue;
  /** The buckets of a hashed environment (`new.env()` is hashed): a list, or NULL. */
  hashTable: RValue;
}

/** An R function written in R (CLOSXP); `body` is byte code when the function was compiled. */
export interface RClosure extends RWithAttributes {
  /** Discriminant. */
  type: "closure";
  /** The arguments: a pairlist of defaults tagged with the names, or NULL. */
  formals: RValue;
  /** The body: a call, a symbol, a constant, or {@linkcode RBytecode}. */
  body: RValue;
  /** The environment the function closes over. */
  environment: RValue;
}

/** A promise (PROMSXP): a lazy argument or binding; `environment` is NULL once forced. */
export interface RPromise extends RWithAttributes {
  /** Discriminant. */
  type: "promise";
  /** The value, or R's unbound marker while unforced. */
  value: RValue;
  /** The expression to evaluate. */
  expression: RValue;
  /** Where to evaluate it; NULL when forced. */
  environment: RValue;
}

/**
 * Byte code (BCODESXP) as R writes it: the decoded instructions and the constant pool, whose
 * calls share cells (see {@linkcode RPairlistCell}).
 */
export interface RBytecode extends RWithAttributes {
  /** Discriminant. */
  type: "bytecode";
  /** The instructions, as an integer vector (the first is the byte-code version). */
  code: RValue;
  /** The constant pool; the first is the expression compiled. */
  constants: RValue[];
}

/** A primitive function (`sum`, `if`), which crosses the wire as its name. */
export interface RPrimitive extends RWithAttributes {
  /** Discriminant: `builtin` evaluates its arguments, `special` does not. */
  type: "builtin" | "special";
  /** The primitive's name. */
  name: string;
}

/** An S4 object without a data part (S4SXP): its slots are its attributes. */
export interface RS4 extends RWithAttributes {
  /** Discriminant. */
  type: "S4";
}

/**
 * An external pointer as R writes it: no address (the reading R gets a NULL pointer), only the
 * protected value and the tag.
 */
export interface RExternalPointer extends RWithAttributes {
  /** Discriminant. */
  type: "externalptr";
  /** The value the pointer keeps alive. */
  protected: RValue;
  /** The pointer's tag. */
  tag: RValue;
}

/** R's unbound marker: the value of a promise not yet forced. */
export interface RUnbound {
  /** Discriminant. */
  type: "unbound";
}

/** A weak reference as R writes it: nothing but its identity and attributes. */
export interface RWeakReference extends RWithAttributes {
  /** Discriminant. */
  type: "weakref";
}

/**
 * A persistent reference (PERSISTSXP): an object that R's `serialize(x, NULL, refhook = f)`
 * wrote as the strings `f` returned for it instead of its contents (an environment, external
 * pointer or weak reference `f` claimed). The reading R calls its own `refhook` with `names`
 * to get the object back; {@linkcode unserialize} does the same with its `persistentReference`
 * option, and without one keeps this node, which {@linkcode serialize} writes back as it was.
 */
export interface RPersistent {
  /** Discriminant. */
  type: "persistent";
  /**
   * The strings the writer's refhook gave for the object, as a character vector's
   * {@linkcode RCharacter.data}: `null` is `NA_character_`. R's refhook gives at least one, but
   * R's reader accepts none; such a node is kept and written back with none.
   */
  names: (string | null)[];
  /**
   * The encoding mark of each name, as {@linkcode RCharacter.encodings} (a latin1 or bytes
   * name keeps its mark); absent means "ASCII or UTF-8 as appropriate".
   */
  encodings?: REncoding[];
  /**
   * The type of the object the refhook claimed, where the stream tells it: R writes it before a
   * persistent reference that is a byte-code constant. Absent, such a constant is written as an
   * environment.
   */
  claimedType?: "environment" | "externalptr" | "weakref";
}

/**
 * Any R value the codec can read and write; switch on `type`.
 *
 * @example
 * ```ts
 * import { type RValue, serialize, unserialize } from "@x/rsock/serial";
 * const value: RValue = unserialize(serialize(["a", "b"]));
 * if (value.type === "character") console.log(value.data); // ["a", "b"]
 * ```
 */
export type RValue =
  | RNull
  | RLogical
  | RInteger
  | RDouble
  | RComplex
  | RCharacter
  | RRaw
  | RList
  | RPairlist
  | RSymbol
  | REnvironment
  | RNamedEnvironment
  | RFrameEnvironment
  | RClosure
  | RPromise
  | RBytecode
  | RPrimitive
  | RS4
  | RExternalPointer
  | RWeakReference
  | RPersistent
  | RUnbound;

/**
 * Thrown when bytes are not a readable R serialization (truncated, garbage, too large, a
 * reference to an item not read, a compression rsock cannot read), or when a value cannot be
 * written.
 */
export class SerializationError extends Error {
  /** Byte offset in the input where reading failed, when known. */
  readonly offset: number | undefined;
  /**
   * Creates the error; pass `{ cause }` to keep the underlying error.
   *
   * @example
   * ```ts
   * import { SerializationError } from "@x/rsock/serial";
   * throw new SerializationError("stream ends at byte 12; expected 8 more bytes of a double", 12);
   * ```
   */
  constructor(message: string, offset?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "SerializationError";
    this.offset = offset;
  }
}

/**
 * The R value `NULL`, shared.
 *
 * @example
 * ```ts
 * import { R_NULL, serialize } from "@x/rsock/serial";
 * serialize({ type: "list", data: [R_NULL] }); // list(NULL)
 * ```
 */
export const R_NULL: RNull = Object.freeze({ type: "NULL" }) as RNull;

/** Sets `key` on an attribute record without tripping over names like `__proto__` (internal). */
export function setAttribute(attributes: RAttributes, key: string, value: RValue): void {
  // Plain assignment is several times faster; only "__proto__" would set the prototype.
  if (key !== "__proto__") {
    attributes[key] = value;
    return;
  }
  Object.defineProperty(attributes, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/**
 * The names in `attributes.names` as strings (NA → null), or undefined.
 *
 * @example
 * ```ts
 * import { namesOf, serialize, unserialize } from "@x/rsock/serial";
 * namesOf(unserialize(serialize({ a: 1, b: 2 }))); // ["a", "b"]
 * ```
 */
export function namesOf(value: RValue): (string | null)[] | undefined {
  if (!("attributes" in value) || value.attributes === undefined) return undefined;
  const names = Object.hasOwn(value.attributes, "names") ? value.attributes["names"] : undefined;
  return names?.type === "character" ? names.data : undefined;
}

/**
 * The class attribute as strings, or an empty array.
 *
 * @example
 * ```ts
 * import { classOf, type RValue } from "@x/rsock/serial";
 * declare const value: RValue;
 * if (classOf(value).includes("data.frame")) console.log("a data frame");
 * ```
 */
export function classOf(value: RValue): string[] {
  if (!("attributes" in value) || value.attributes === undefined) return [];
  const cls = Object.hasOwn(value.attributes, "class") ? value.attributes["class"] : undefined;
  return cls?.type === "character" ? cls.data.filter((s): s is string => s !== null) : [];
}

const R_TYPES = new Set([
  "NULL",
  "logical",
  "integer",
  "double",
  "complex",
  "character",
  "raw",
  "list",
  "expression",
  "pairlist",
  "language",
  "symbol",
  "environment",
  "dots",
  "closure",
  "promise",
  "bytecode",
  "builtin",
  "special",
  "S4",
  "externalptr",
  "weakref",
  "persistent",
  "unbound",
]);

/**
 * True when `value` is a typed R value (as {@linkcode unserialize} returns), not plain JS: an
 * object whose `type` names an R type and whose `data` has that type's shape.
 *
 * @example
 * ```ts
 * import { isRValue } from "@x/rsock/serial";
 * isRValue({ type: "double", data: new Float64Array([1]) }); // true
 * isRValue({ type: "double" });                               // false: a plain object
 * ```
 */
export function isRValue(value: unknown): value is RValue {
  if (typeof value !== "object" || value === null) return false;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !R_TYPES.has(type)) return false;
  const v = value as Record<string, unknown>;
  switch (type) {
    case "NULL":
    case "S4":
    case "weakref":
    case "unbound":
      return true;
    case "symbol":
    case "environment":
    case "builtin":
    case "special":
      return typeof v.name === "string";
    case "closure":
      return typeof v.body === "object" && v.body !== null;
    case "promise":
      return typeof v.expression === "object" && v.expression !== null;
    case "bytecode":
      return Array.isArray(v.constants);
    case "externalptr":
      return typeof v.protected === "object" && v.protected !== null;
    case "persistent":
      return Array.isArray(v.names);
    case "logical":
    case "integer":
      return v.data instanceof Int32Array;
    case "double":
    case "complex":
      return v.data instanceof Float64Array;
    case "raw":
      return v.data instanceof Uint8Array;
    default:
      return Array.isArray(v.data);
  }
}
