/**
 * R serialization (versions 2 and 3), a pure codec with no I/O: the bytes R's `serialize()`,
 * `saveRDS(compress = FALSE)`, nanonext's `send(mode = "serial")` and svSocket produce, to typed
 * R values and back.
 *
 * ```ts
 * import { serialize, simplify, unserialize } from "@x/rsock/serial";
 *
 * const bytes = serialize({ x: [1.5, null], label: "é" }); // B\n, like nanonext
 * const value = unserialize(bytes);                          // typed: { type: "list", … }
 * const plain = simplify(value);                             // { x: [1.5, null], label: "é" }
 * serialize(plain);                                          // the same R object again
 * ```
 *
 * `unserialize` reads `X\n` (XDR, R's default), `B\n` (native little-endian, nanonext) and `A\n`
 * (ascii), versions 2 and 3, with or without nanonext's `0x07` header; it expands the ALTREP
 * forms R writes (`compact_intseq`, `compact_realseq`, `deferred_string`, `wrap_*`). Every
 * SEXP type R writes is read and written back: closures with their environments, byte code
 * (its constant pool and shared cells), environments (one JS object however often referred to,
 * cycles included; locked, hashed, active bindings), package and namespace environments by
 * name, promises, `...`, primitives, S4 objects and the S4 bit, external pointers and weak
 * references, and the persistent references R's `refhook` writes (kept as typed nodes, or
 * restored by the `persistentReference` option; `persistentName` writes them). A value read
 * and written in the same format and version gives R's own bytes when it holds no ALTREP.
 * Truncated or garbage bytes, and a reference to an item not read, are a
 * {@linkcode SerializationError}.
 *
 * Files: {@linkcode readRds} reads `saveRDS()` output (gzip by default) and
 * {@linkcode readRData} `save()` workspaces, inflating gzip with zlib (`node:zlib`) up to
 * `maxDecompressedBytes` (1 GiB, for all gzip members together) and reading the first object,
 * as R's `readRDS()` does; bzip2 and xz are refused with the R call that writes gzip.
 * {@linkcode writeRds} writes what `saveRDS()` writes: XDR version 3, gzip at R's level 6.
 *
 * ## Bounds
 *
 * Every length is checked against the bytes left and `maxElements` (default 2^27) before
 * allocating, nesting against `maxDepth` (default 1000). ALTREP sequences (`1:n` is three
 * numbers on the wire) draw from one expansion budget per message, `maxExpandedElements`
 * (default 2^24 elements, at most 128 MiB; a string R defers over such a sequence,
 * `as.character(1:n)`, counts 9), so reading an n-byte stream allocates O(n) plus that budget. `simplify` checks `dim`, `dimnames`, `names`, `levels` and `row.names` against the data
 * they describe before building anything, and throws {@linkcode SerializationError} when one
 * does not fit; the row arrays of a matrix draw 4 elements each from its own budget
 * (`SimplifyOptions.maxExpandedElements`, 2^24 by default: 4 million rows). `serialize` writes `B\n` version 3 by default (`{ format: "xdr" }` for `X\n`,
 * `{ version: 2 }` for old R), never ALTREP.
 *
 * ## R values ↔ JS values
 *
 * `unserialize` returns the exact tree ({@linkcode RValue}); writing it back is lossless.
 * `simplify` turns it into plain JS, and every array or object it builds remembers the R value
 * it came from (under a non-enumerable symbol, see {@linkcode rValueOf}), so `serialize` writes
 * it back as the same R type with the same attributes — also after ordinary edits in JS. A
 * scalar cannot carry that, and a spread copy (`{ ...frame, z }`) or `map()` builds a new
 * object without it: pass the typed value as `like` (`serialize(x, { like })`, which reqrep's
 * `reply`/`serve` do with each request) and its parts are matched by key or position, so `42L`
 * stays an integer, a lone date a Date and a spread data.frame a data.frame. For the exact tree
 * instead, receive with reqrep's `{ mode: "typed" }` (`rsock rep|req --recv-mode typed`).
 *
 * | R | {@linkcode RValue} | `simplify()` gives | written back from that JS (edited) |
 * |---|---|---|---|
 * | `NULL` | `{ type: "NULL" }` | `null` | `NULL` |
 * | logical | `{ type: "logical", data: Int32Array }` (`NA_LOGICAL`) | `boolean`/`null` (arrays when length ≠ 1) | logical while every element is a boolean or `null` |
 * | integer (`1:3`, `42L`) | `{ type: "integer", data: Int32Array }` (`NA_INTEGER`) | `number`/`null` | integer while every number is a 32-bit whole number, else double with the same attributes |
 * | double | `{ type: "double", data: Float64Array }` (NA = NaN payload 1954, `isNA`) | `number`, NA → `null`, NaN stays `NaN` | double; NA and NaN bits kept where unchanged |
 * | complex | `{ type: "complex", data: Float64Array }` (re, im interleaved) | `{ re, im }`, NA → `null` | complex (numbers as `re + 0i`) |
 * | character | `{ type: "character", data, encodings? }` | `string`/`null` | character; latin1/bytes marks kept on unchanged strings |
 * | raw | `{ type: "raw", data: Uint8Array }` | `Uint8Array` | raw |
 * | named vector `c(a = 1)` | vector + `names` | object | same type, names from the keys |
 * | list, named list | `{ type: "list", data: RValue[] }` + `names` | array / object (an array when names repeat, as one key cannot hold two) | list while it is still an array (unnamed, or names repeat: kept while the length is) or object (named); elements matched by key (or position) keep their own type; new keys are new names |
 * | factor | integer codes + `levels` + `class` | the labels (`null` for NA and for an `addNA` level) | factor with the same levels (an NA level kept where it was); a new label becomes a new level |
 * | matrix, array | vector + `dim` (+ `dimnames`) | array of rows (2-D), flat otherwise | same `dim`/`dimnames` while the shape is the same, new `dim` (no dimnames) otherwise |
 * | data.frame | list + `names`, `class`, `row.names` | `{ col: values[] }` (or rows); a data.frame column as its own `{ col: values[] }`; no columns → `[]` | data.frame while all columns have one length: columns keep their types, new columns follow the plain rules (scalars recycled; into 0 rows an empty vector of their type), row names kept while the row count is |
 * | Date, POSIXct, other classes | vector + `class` (+ `tzone`, …) | numbers | same class and other attributes |
 * | empty vector (`character(0)`) | vector of length 0 | `[]` | the same type |
 * | pairlist | `{ type: "pairlist", data: { tag?, value }[] }` | array / object | pairlist, tags from the keys |
 * | call, formula | `{ type: "language", data: { tag?, value }[] }` | unchanged | unchanged |
 * | symbol | `{ type: "symbol", name }` | unchanged | unchanged |
 * | `globalenv()`, `emptyenv()`, `baseenv()`, `.BaseNamespaceEnv` | `{ type: "environment", name }` | unchanged | unchanged |
 * | `new.env()`, a closure's environment, a reference class object | `{ type: "environment", name: "frame", locked, enclosure, frame, hashTable }` (one object per environment) | unchanged | unchanged |
 * | `asNamespace("stats")`, `as.environment("package:stats")` | `{ type: "environment", name: "namespace" \| "package", spec }` | unchanged | unchanged |
 * | function | `{ type: "closure", formals, body, environment }` (`body` `{ type: "bytecode", code, constants }` when compiled) | unchanged | unchanged |
 * | `sum`, `` `if` `` | `{ type: "builtin" \| "special", name }` | unchanged | unchanged |
 * | S4 object (`new("Person", …)`) | `{ type: "S4", attributes }`; with a data part, the vector with `levels & 16` | unchanged | unchanged |
 * | promise, `...`, external pointer, weak reference | `promise`, `dots`, `externalptr`, `weakref` | unchanged | unchanged |
 * | what `serialize(x, NULL, refhook = f)` let `f` name | `{ type: "persistent", names }` (or what `persistentReference` returns) | unchanged | unchanged |
 *
 * JS built from scratch (no R value behind it) follows the plain rules of {@linkcode toR}:
 * `null`/`undefined` → `NULL`, a number → double, a string → character, a boolean → logical,
 * `Uint8Array` → raw, `Float64Array` → double, `Int32Array` → integer; arrays become an atomic
 * vector when every non-null element is a number (double), a string or a boolean (`null` is NA),
 * and a list otherwise; plain objects become named lists. Where edited JS no longer fits its R
 * value (say, strings put in an integer vector), the plain rules apply to that part: a vector
 * edited into several types becomes a list, whose elements still in place keep their own type
 * (`NA` stays an `NA` of that type, not `NULL`).
 *
 * @module
 */

export {
  classOf,
  isNA,
  isRValue,
  NA_INTEGER,
  NA_LOGICAL,
  namesOf,
  R_NULL,
  type RAttributes,
  type RBytecode,
  type RCharacter,
  type RClosure,
  type RComplex,
  type RDouble,
  REncoding,
  type REnvironment,
  type RExternalPointer,
  type RFrameEnvironment,
  type RInteger,
  type RList,
  type RLogical,
  type RNamedEnvironment,
  type RNull,
  type RPairlist,
  type RPairlistCell,
  type RPersistent,
  type RPrimitive,
  type RPromise,
  type RRaw,
  type RS4,
  type RSymbol,
  type RUnbound,
  type RValue,
  type RWeakReference,
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
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  type ReadFileOptions,
  readRData,
  readRds,
  writeRds,
  type WriteRdsOptions,
} from "./_files.ts";
export { type JsValue, toR } from "./_convert.ts";
export {
  type ComplexNumber,
  rValueOf,
  type Simplified,
  simplify,
  type SimplifyOptions,
} from "./_simplify.ts";
