/**
 * R serialization (versions 2 and 3), a pure codec with no I/O: the bytes R's `serialize()`,
 * nanonext's `send(mode = "serial")` and svSocket produce, to typed R values and back.
 *
 * ```ts
 * import { serialize, simplify, unserialize } from "@x/rsock/reqrep";
 *
 * const bytes = serialize({ x: [1.5, null], label: "é" }); // B\n, like nanonext
 * const value = unserialize(bytes);                          // typed: { type: "list", … }
 * console.log(simplify(value));                              // { x: [1.5, null], label: "é" }
 * ```
 *
 * `unserialize` reads `X\n` (XDR, R's default), `B\n` (native little-endian, nanonext) and `A\n`
 * (ascii), versions 2 and 3, with or without nanonext's `0x07` header; it expands the ALTREP
 * forms R writes (`compact_intseq`, `compact_realseq`, `deferred_string`, `wrap_*`). Closures,
 * environments other than the special ones, promises, byte code, external pointers and S4
 * objects are refused with a {@linkcode SerializationError}, as are truncated or garbage bytes;
 * every length is checked against the bytes left and `maxElements` (default 2^27) before
 * allocating, nesting against `maxDepth` (default 1000). ALTREP sequences (`1:n` is three
 * numbers on the wire) draw from one expansion budget per message, `maxExpandedElements`
 * (default 2^24 elements, at most 128 MiB), so reading an n-byte stream allocates O(n) plus that
 * budget. `simplify` checks `dim`, `dimnames`, `names`, `levels` and `row.names` against the data
 * they describe before building anything, and throws {@linkcode SerializationError} when one
 * does not fit. `serialize` writes `B\n` version 3 by default (`{ format: "xdr" }` for `X\n`,
 * `{ version: 2 }` for old R), never ALTREP.
 *
 * ## R values ↔ JS values
 *
 * Decoded values are typed ({@linkcode RValue}) so that writing them back is lossless:
 *
 * | R | typed JS value ({@linkcode RValue}) | `simplify()` | plain JS accepted by `serialize` |
 * |---|---|---|---|
 * | `NULL` | `{ type: "NULL" }` | `null` | `null`, `undefined` |
 * | logical | `{ type: "logical", data: Int32Array }` (1, 0, `NA_LOGICAL`) | `true`/`false`/`null` | `boolean`, `boolean[]` (`null` = NA) |
 * | integer | `{ type: "integer", data: Int32Array }` (`NA_INTEGER` = INT_MIN) | `number`/`null` | `Int32Array` |
 * | double | `{ type: "double", data: Float64Array }` (NA = NaN payload 1954, see `isNA`) | `number`, NA → `null`, NaN stays `NaN` | `number`, `number[]` (`null` = NA), `Float64Array` |
 * | complex | `{ type: "complex", data: Float64Array }` (re, im interleaved) | `{ re, im }` | — (typed only) |
 * | character | `{ type: "character", data: (string \| null)[], encodings? }` (latin1/bytes marks kept) | `string`/`null` | `string`, `string[]` (`null` = NA) |
 * | raw | `{ type: "raw", data: Uint8Array }` | `Uint8Array` | `Uint8Array` |
 * | list | `{ type: "list", data: RValue[] }` | array, or object when named | array of mixed values, plain object (named list) |
 * | attributes | `attributes: { names, dim, dimnames, class, levels, "row.names", … }` | names → object keys, `dim` (2-D) → array of rows | typed only |
 * | factor | integer codes + `levels` + `class` attributes | the labels | typed only |
 * | data.frame | list + `names`, `class`, `row.names` (compact `c(NA, -n)` kept as is) | `{ col: values[] }` or rows | typed only |
 * | pairlist, call, formula | `{ type: "pairlist" \| "language", data: { tag?, value }[] }` | unchanged | typed only |
 * | symbol | `{ type: "symbol", name }` | unchanged | typed only |
 * | `globalenv()`, `emptyenv()`, `baseenv()`, `.BaseNamespaceEnv` | `{ type: "environment", name }` | unchanged | typed only |
 *
 * Plain arrays become an atomic vector when every non-null element is a number (double), a
 * string or a boolean, and a list otherwise.
 *
 * @module
 */

export {
  classOf,
  isNA,
  NA_INTEGER,
  NA_LOGICAL,
  namesOf,
  R_NULL,
  type RAttributes,
  type RCharacter,
  type RComplex,
  type RDouble,
  REncoding,
  type REnvironment,
  type RInteger,
  type RList,
  type RLogical,
  type RNull,
  type RPairlist,
  type RPairlistCell,
  type RRaw,
  type RSymbol,
  type RValue,
  type RWithAttributes,
  SerializationError,
  setNA,
} from "./_types.ts";
export {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_ELEMENTS,
  DEFAULT_MAX_EXPANDED_ELEMENTS,
  unserialize,
  type UnserializeOptions,
} from "./_reader.ts";
export { SerialFormat, serialize, type SerializeOptions } from "./_writer.ts";
export {
  type ComplexNumber,
  isRValue,
  type JsValue,
  type Simplified,
  simplify,
  type SimplifyOptions,
  toR,
} from "./_convert.ts";
