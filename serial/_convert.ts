/**
 * Plain JS ↔ typed R values: `toR` for callers who write `serialize({ a: 1 })`, and `simplify`
 * for callers who just want the values out of a decoded R object.
 *
 * @module
 */

import { DEFAULT_MAX_EXPANDED_ELEMENTS } from "./_reader.ts";
import {
  classOf,
  isNA,
  NA_INTEGER,
  namesOf,
  R_NULL,
  type RValue,
  SerializationError,
  setNA,
} from "./_types.ts";

/**
 * Plain JS that {@linkcode toR} (and so `serialize`) accepts: `null`/`undefined` → `NULL`,
 * `number` → double, `string` → character, `boolean` → logical, `Uint8Array` → raw,
 * `Float64Array` → double, `Int32Array` → integer, arrays → an atomic vector when all elements
 * are numbers, strings or booleans (with `null` as `NA`), else a list; plain objects → a named
 * list.
 */
export type JsValue =
  | null
  | undefined
  | number
  | string
  | boolean
  | Uint8Array
  | Float64Array
  | Int32Array
  | RValue
  | JsValue[]
  | { [key: string]: JsValue };

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
]);

/**
 * True when `value` is a typed R value (as {@linkcode unserialize} returns), not plain JS: an
 * object whose `type` names an R type and whose `data` has that type's shape.
 *
 * @example
 * ```ts
 * import { isRValue } from "./mod.ts";
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
      return true;
    case "symbol":
      return typeof v.name === "string";
    case "environment":
      return typeof v.name === "string";
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

/**
 * Converts plain JS to a typed R value (see {@linkcode JsValue} for the mapping); typed R values
 * pass through unchanged.
 *
 * @example
 * ```ts
 * import { toR } from "./mod.ts";
 * toR([1, null, 3]);   // { type: "double", data: Float64Array [1, NA, 3] }
 * toR({ a: "x" });     // a named list
 * ```
 */
export function toR(value: JsValue): RValue {
  return convert(value, 0);
}

function convert(value: JsValue, depth: number): RValue {
  if (depth > 10_000) throw new RangeError("value nests more than 10000 levels deep");
  if (value === null || value === undefined) return R_NULL;
  switch (typeof value) {
    case "number":
      return { type: "double", data: new Float64Array([value]) };
    case "string":
      return { type: "character", data: [value] };
    case "boolean":
      return { type: "logical", data: new Int32Array([value ? 1 : 0]) };
  }
  if (value instanceof Uint8Array) return { type: "raw", data: value };
  if (value instanceof Float64Array) return { type: "double", data: value };
  if (value instanceof Int32Array) return { type: "integer", data: value };
  if (Array.isArray(value)) return convertArray(value, depth);
  if (isRValue(value)) return value;
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      const entries = Object.entries(value);
      const list: RValue = {
        type: "list",
        data: entries.map(([, v]) => convert(v, depth + 1)),
      };
      if (entries.length > 0) {
        list.attributes = { names: { type: "character", data: entries.map(([k]) => k) } };
      }
      return list;
    }
  }
  const kind = typeof value === "object" ? (value as object).constructor?.name : typeof value;
  throw new TypeError(
    `cannot convert ${kind} to an R value; expected null, number, string, boolean, ` +
      "Uint8Array, Float64Array, Int32Array, an array, a plain object or a typed R value",
  );
}

function convertArray(values: JsValue[], depth: number): RValue {
  let kind: "number" | "string" | "boolean" | "mixed" | undefined;
  for (const v of values) {
    if (v === null) continue;
    const t = typeof v;
    if (t !== "number" && t !== "string" && t !== "boolean") {
      kind = "mixed";
      break;
    }
    if (kind === undefined) kind = t as "number" | "string" | "boolean";
    else if (kind !== t) {
      kind = "mixed";
      break;
    }
  }
  switch (kind) {
    case "number": {
      const data = new Float64Array(values.length);
      values.forEach((v, i) => v === null ? setNA(data, i) : (data[i] = v as number));
      return { type: "double", data };
    }
    case "string":
      return { type: "character", data: values as (string | null)[] };
    case "boolean":
      return {
        type: "logical",
        data: Int32Array.from(values, (v) => v === null ? NA_INTEGER : v ? 1 : 0),
      };
  }
  return { type: "list", data: values.map((v) => convert(v, depth + 1)) };
}

/** A complex number from {@linkcode simplify}. */
export interface ComplexNumber {
  /** Real part. */
  re: number;
  /** Imaginary part. */
  im: number;
}

/**
 * What {@linkcode simplify} returns: JS scalars, arrays and objects; language objects, symbols
 * and environments stay typed R values.
 */
export type Simplified =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | ComplexNumber
  | RValue
  | Simplified[]
  | { [key: string]: Simplified };

/** Options for {@linkcode simplify}. */
export interface SimplifyOptions {
  /**
   * How a data.frame comes out: `"columns"` (`{ x: [1, 2], y: ["a", "b"] }`) or `"rows"`
   * (`[{ x: 1, y: "a" }, { x: 2, y: "b" }]`). Row names are dropped either way.
   *
   * @default {"columns"}
   */
  dataFrame?: "columns" | "rows";
  /**
   * Whether an unnamed length-1 vector becomes a scalar (`1` rather than `[1]`).
   *
   * @default {true}
   */
  scalars?: boolean;
  /**
   * How many JS values `simplify` may create that no element of the input stands for: today
   * only the empty rows of a matrix with no columns (`dim = c(n, 0)`, 12 bytes for any n).
   * Everything else it builds is bounded by the input's own size.
   *
   * @default {16777216}
   */
  maxExpandedElements?: number;
}

/**
 * Turns a decoded R value into plain JS for callers who just want the values: length-1
 * vectors → scalars, `NA` → `null` (`NaN` stays `NaN`), named vectors and lists → objects,
 * factors → their labels, data.frames → columns (or rows), matrices → arrays of rows, raw →
 * `Uint8Array`, complex → `{ re, im }`. Lossy by design: keep the typed value when you need
 * integer vs double or attributes.
 *
 * @example
 * ```ts
 * import { serialize, simplify, unserialize } from "./mod.ts";
 * simplify(unserialize(serialize({ a: 1, b: [true, null] }))); // { a: 1, b: [true, null] }
 * ```
 */
export function simplify(value: RValue, options: SimplifyOptions = {}): Simplified {
  const budget = { left: options.maxExpandedElements ?? DEFAULT_MAX_EXPANDED_ELEMENTS };
  return simplifyValue(value, options.dataFrame ?? "columns", options.scalars ?? true, budget);
}

/** What is left of one `simplify` call's budget (see {@linkcode SimplifyOptions}). */
interface Budget {
  left: number;
}

function simplifyValue(
  value: RValue,
  dataFrame: "columns" | "rows",
  scalars: boolean,
  budget: Budget,
): Simplified {
  checkAttributes(value);
  switch (value.type) {
    case "NULL":
      return null;
    case "symbol":
    case "environment":
    case "language":
      return value;
    case "raw":
      return value.data;
    case "list":
    case "expression":
    case "pairlist": {
      const elements = value.type === "pairlist"
        ? value.data.map((cell) => simplifyValue(cell.value, dataFrame, scalars, budget))
        : (value.data as RValue[]).map((element) =>
          simplifyValue(element, dataFrame, scalars, budget)
        );
      const names = value.type === "pairlist"
        ? value.data.map((cell) => cell.tag ?? "")
        : namesOf(value);
      if (value.type === "list" && classOf(value).includes("data.frame")) {
        return simplifyDataFrame(value.data, names ?? [], dataFrame, budget);
      }
      return nameElements(elements, names);
    }
  }
  let elements: Simplified[];
  if (value.type === "integer" && classOf(value).includes("factor")) {
    const levels = value.attributes?.["levels"];
    const labels = levels?.type === "character" ? levels.data : [];
    elements = Array.from(
      value.data,
      (code) => code === NA_INTEGER ? null : labels[code - 1] ?? null,
    );
  } else {
    elements = atomicElements(value);
  }
  const dim = value.attributes?.["dim"];
  if (
    dim !== undefined && (dim.type === "integer" || dim.type === "double") && dim.data.length === 2
  ) {
    const rows = dim.data[0]!;
    const cols = dim.data[1]!;
    if (cols === 0) {
      // dim = c(n, 0) holds no element yet asks for n empty rows: charge them to the budget.
      if (rows > budget.left) {
        throw new SerializationError(
          `a ${rows} x 0 matrix would simplify to ${rows} empty rows, more than the ` +
            `${budget.left} left of maxExpandedElements`,
        );
      }
      budget.left -= rows;
    }
    return Array.from(
      { length: rows },
      (_, r) => Array.from({ length: cols }, (_, c) => elements[r + c * rows] ?? null),
    );
  }
  const names = namesOf(value);
  if (names !== undefined) return nameElements(elements, names);
  return scalars && elements.length === 1 ? elements[0]! : elements;
}

function atomicElements(
  value: Exclude<
    RValue,
    {
      type:
        | "NULL"
        | "symbol"
        | "environment"
        | "language"
        | "raw"
        | "list"
        | "expression"
        | "pairlist";
    }
  >,
): Simplified[] {
  switch (value.type) {
    case "logical":
      return Array.from(value.data, (x) => x === NA_INTEGER ? null : x !== 0);
    case "integer":
      return Array.from(value.data, (x) => x === NA_INTEGER ? null : x);
    case "double":
      return Array.from(value.data, (x) => isNA(x) ? null : x);
    case "complex": {
      const out: Simplified[] = [];
      for (let i = 0; i < value.data.length; i += 2) {
        const re = value.data[i]!;
        out.push(isNA(re) ? null : { re, im: value.data[i + 1]! });
      }
      return out;
    }
    case "character":
      return value.data.slice();
  }
}

function nameElements(elements: Simplified[], names: (string | null)[] | undefined): Simplified {
  if (names === undefined || names.length !== elements.length || names.every((n) => !n)) {
    return elements;
  }
  const object: { [key: string]: Simplified } = {};
  elements.forEach((element, i) => {
    const key = names[i] || `${i + 1}`;
    Object.defineProperty(object, key, {
      value: element,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  });
  return object;
}

function simplifyDataFrame(
  columns: RValue[],
  names: (string | null)[],
  shape: "columns" | "rows",
  budget: Budget,
): Simplified {
  const simplified = columns.map((column) => {
    const s = simplifyValue(column, shape, false, budget);
    return Array.isArray(s) ? s : [s];
  });
  const keys = columns.map((_, i) => names[i] || `V${i + 1}`);
  if (shape === "columns") return nameElements(simplified, keys);
  const rows = Math.max(0, ...simplified.map((column) => column.length));
  return Array.from(
    { length: rows },
    (_, r) => nameElements(simplified.map((column) => column[r] ?? null), keys),
  );
}

// ---------------------------------------------------------------------------------------------
// Attribute checks. The reader keeps attributes as sent; before `simplify` builds anything from
// them, each must describe the data it sits on, or a few bytes (`dim = c(2, 1e8)` on one double)
// would make it allocate without bound.

function fail(message: string): never {
  throw new SerializationError(message);
}

/** The number of elements of a vector or list (pairlist cells), or -1 for the other types. */
function lengthOf(value: RValue): number {
  switch (value.type) {
    case "NULL":
      return 0;
    case "symbol":
    case "environment":
      return -1;
    case "complex":
      return value.data.length / 2;
    default:
      return value.data.length;
  }
}

/** The whole-number entries of an integer or double attribute, or a SerializationError. */
function extents(value: RValue, what: string): number[] {
  if (value.type !== "integer" && value.type !== "double") {
    return fail(`${what} is a ${value.type} vector; expected integer or double`);
  }
  const out: number[] = [];
  for (const x of value.data) {
    if (!Number.isInteger(x) || x < 0 || x === NA_INTEGER) {
      return fail(`${what} holds ${isNA(x) ? "NA" : x}; expected non-negative whole numbers`);
    }
    out.push(x);
  }
  return out;
}

/** How many rows a data.frame's `row.names` describe (compact `c(NA, ±n)` or one per row). */
function rowCount(rowNames: RValue): number {
  if (
    rowNames.type === "integer" && rowNames.data.length === 2 && rowNames.data[0] === NA_INTEGER
  ) {
    const n = Math.abs(rowNames.data[1]!);
    if (rowNames.data[1] === NA_INTEGER) fail("data.frame row.names c(NA, NA); expected c(NA, -n)");
    return n;
  }
  const n = lengthOf(rowNames);
  if (n < 0 || rowNames.type === "list") {
    return fail(`data.frame row.names is a ${rowNames.type}; expected integer or character`);
  }
  return n;
}

/** The rows of one data.frame column: its length, or its first extent when it has a `dim`. */
function columnRows(column: RValue): number {
  const attributes = "attributes" in column ? column.attributes : undefined;
  const dim = attributes?.["dim"];
  if (dim !== undefined && (dim.type === "integer" || dim.type === "double")) {
    return dim.data[0] ?? 0;
  }
  const rowNames = attributes?.["row.names"];
  if (rowNames !== undefined && classOf(column).includes("data.frame")) return rowCount(rowNames);
  return lengthOf(column);
}

function checkAttributes(value: RValue): void {
  if (!("attributes" in value) || value.attributes === undefined) return;
  const attributes = value.attributes;
  const length = lengthOf(value);
  const own = (key: string) => Object.hasOwn(attributes, key) ? attributes[key] : undefined;
  const names = own("names");
  if (names !== undefined && value.type !== "pairlist" && value.type !== "language") {
    if (names.type !== "character") fail(`names is a ${names.type} vector; expected character`);
    if (names.data.length !== length) {
      fail(`names has ${names.data.length} entries for a ${value.type} vector of ${length}`);
    }
  }
  const dim = own("dim");
  if (dim !== undefined) {
    const extent = extents(dim, "dim");
    if (extent.length === 0) fail("dim is empty; expected one extent per dimension");
    let product = 1;
    for (const e of extent) {
      product *= e;
      // Stop before the product can overflow; it must equal a length that fits in memory.
      if (product > length) break;
    }
    if (extent.includes(0)) product = 0;
    if (product !== length) {
      fail(
        `dim c(${extent.join(", ")}) describes ${
          extent.includes(0) ? 0 : extent.reduce((a, b) => a * b, 1)
        } elements but the ${value.type} vector holds ${length}; expected their product to equal the length`,
      );
    }
    const dimnames = own("dimnames");
    if (dimnames !== undefined) {
      if (dimnames.type !== "list" || dimnames.data.length !== extent.length) {
        fail(`dimnames is not a list of ${extent.length} (one per dimension)`);
      }
      dimnames.data.forEach((entry, i) => {
        const n = lengthOf(entry);
        if (entry.type !== "NULL" && n !== extent[i]) {
          fail(`dimnames[[${i + 1}]] has ${n} entries for an extent of ${extent[i]}`);
        }
      });
    }
  } else if (own("dimnames") !== undefined) {
    fail("dimnames without dim");
  }
  const cls = classOf(value);
  if (cls.includes("factor")) {
    const levels = own("levels");
    if (value.type !== "integer") fail(`a factor stored as ${value.type}; expected integer codes`);
    if (levels !== undefined && levels.type !== "character") {
      fail(`factor levels is a ${levels.type} vector; expected character`);
    }
    const count = levels === undefined ? 0 : lengthOf(levels);
    for (const code of value.data) {
      if (code !== NA_INTEGER && (code < 1 || code > count)) {
        fail(`factor code ${code} outside its ${count} levels`);
      }
    }
  }
  if (cls.includes("data.frame")) {
    if (value.type !== "list") fail(`a data.frame stored as ${value.type}; expected a list`);
    const rowNames = own("row.names");
    if (rowNames === undefined) fail("a data.frame without row.names");
    const rows = rowCount(rowNames);
    value.data.forEach((column, i) => {
      const n = columnRows(column);
      if (n !== rows) fail(`data.frame column ${i + 1} has ${n} rows; row.names say ${rows}`);
    });
  }
}
