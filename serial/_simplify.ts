/**
 * `simplify`: a decoded R value to plain JS for callers who just want the values, with each
 * array and object remembering the R value it came from (so `toR` can write it back).
 *
 * @module
 */

import { checkAttributes } from "./_checks.ts";
import { DEFAULT_MAX_EXPANDED_ELEMENTS } from "./_reader.ts";
import {
  classOf,
  isNA,
  isRValue,
  NA_INTEGER,
  namesOf,
  type RValue,
  SerializationError,
} from "./_types.ts";
import { work } from "./_work.ts";

/**
 * Where `simplify` keeps, on each array or object it builds, the typed R value it came from, so
 * that `toR` writes the same R type and attributes back. Not enumerable: JSON, `Object.keys`,
 * spreading and `deepStrictEqual` do not see it.
 */
export const ORIGIN: unique symbol = Symbol("rsock.rValue");

export function tag<T>(target: T, origin: RValue): T {
  if (typeof target === "object" && target !== null && !isRValue(target)) {
    Object.defineProperty(target, ORIGIN, {
      value: origin,
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  return target;
}

/**
 * The typed R value an array or object returned by {@linkcode simplify} came from, or
 * `undefined` for JS built any other way (and for scalars, which cannot carry it).
 *
 * @example
 * ```ts
 * import { rValueOf, serialize, simplify, unserialize } from "@x/rsock/serial";
 * const frame = simplify(unserialize(serialize({ x: [1, 2] })));
 * rValueOf(frame)?.type; // "list"
 * ```
 */
export function rValueOf(value: unknown): RValue | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  return (value as { [ORIGIN]?: RValue })[ORIGIN];
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
   * How many JS values `simplify` may create that no element of the input stands for: the
   * row arrays of matrices, 4 per row (a matrix of 4 million rows at the default; `dim =
   * c(n, 0)` asks for n rows from 12 bytes, and R's `1:n` with a `dim` for n rows from 170).
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
 * import { serialize, simplify, unserialize } from "@x/rsock/serial";
 * simplify(unserialize(serialize({ a: 1, b: [true, null] }))); // { a: 1, b: [true, null] }
 * ```
 */
export function simplify(value: RValue | Simplified, options: SimplifyOptions = {}): Simplified {
  // Already plain JS (say, what recv() returned): nothing left to simplify.
  if (!isRValue(value) || rValueOf(value) !== undefined) return value;
  const budget = { left: options.maxExpandedElements ?? DEFAULT_MAX_EXPANDED_ELEMENTS };
  return simplifyValue(value, options.dataFrame ?? "columns", options.scalars ?? true, budget);
}

/** R's S4 object bit in the gp field (`S4_OBJECT_MASK`). */
const S4_BIT = 16;

/** What one row of a matrix costs from simplify's budget: a JS array is ~4 elements' worth. */
const ROW_COST = 4;

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
  return tag(simplifyOne(value, dataFrame, scalars, budget), value);
}

function simplifyOne(
  value: RValue,
  dataFrame: "columns" | "rows",
  scalars: boolean,
  budget: Budget,
): Simplified {
  // What has no plain JS meaning stays the typed value, written back exactly: functions,
  // environments, S4 objects (also a vector with the S4 bit), promises, pointers.
  if ("levels" in value && value.levels !== undefined && (value.levels & S4_BIT) !== 0) {
    return value;
  }
  checkAttributes(value);
  switch (value.type) {
    case "NULL":
      return null;
    case "symbol":
    case "environment":
    case "language":
    case "dots":
    case "closure":
    case "promise":
    case "bytecode":
    case "builtin":
    case "special":
    case "S4":
    case "externalptr":
    case "weakref":
    case "persistent":
    case "unbound":
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
  // A matrix is charged before anything is built, so one that does not fit fails at once.
  const dim = value.attributes?.["dim"];
  const shape = dim !== undefined && (dim.type === "integer" || dim.type === "double") &&
      dim.data.length === 2
    ? { rows: dim.data[0]!, cols: dim.data[1]! }
    : undefined;
  if (shape !== undefined) {
    const { rows, cols } = shape;
    // Each row is an array no element stands for, and costs several elements: 2^24 rows of
    // one element (R's 1:2^24 with dim c(2^24, 1), 170 bytes) took 1.1 GiB. dim = c(n, 0)
    // asks for n empty rows without holding any element at all.
    const cost = ROW_COST * rows;
    if (cost > budget.left) {
      throw new SerializationError(
        `a ${rows} x ${cols} matrix would simplify to ${rows} ${cols === 0 ? "empty " : ""}rows ` +
          `(${ROW_COST} elements each), more than the ${budget.left} left of ` +
          "maxExpandedElements; receive it typed instead, or raise the option",
      );
    }
    budget.left -= cost;
  }
  let elements: Simplified[];
  if (value.type === "integer" && classOf(value).includes("factor")) {
    const levels = value.attributes?.["levels"];
    const labels = levels?.type === "character" ? levels.data : [];
    const codes = value.data;
    work.elements += codes.length;
    elements = new Array(codes.length);
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i]!;
      elements[i] = code === NA_INTEGER ? null : labels[code - 1] ?? null;
    }
  } else {
    elements = atomicElements(value);
  }
  if (shape !== undefined) {
    const { rows, cols } = shape;
    work.elements += rows * (1 + cols);
    // Loops, not Array.from: ten times faster on the millions of rows a big matrix has.
    const out: Simplified[][] = new Array(rows);
    for (let r = 0; r < rows; r++) {
      const row: Simplified[] = new Array(cols);
      for (let c = 0; c < cols; c++) row[c] = elements[r + c * rows] ?? null;
      out[r] = row;
    }
    return out;
  }
  const names = namesOf(value);
  if (names !== undefined) return nameElements(elements, names);
  return scalars && elements.length === 1 ? elements[0]! : elements;
}

function atomicElements(
  value: Extract<RValue, { type: "logical" | "integer" | "double" | "complex" | "character" }>,
): Simplified[] {
  // Loops into a presized array: Array.from(typedArray, fn) is ~10 times slower.
  work.elements += value.type === "complex" ? value.data.length / 2 : value.data.length;
  switch (value.type) {
    case "logical": {
      const data = value.data;
      const out: Simplified[] = new Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const x = data[i]!;
        out[i] = x === NA_INTEGER ? null : x !== 0;
      }
      return out;
    }
    case "integer": {
      const data = value.data;
      const out: Simplified[] = new Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const x = data[i]!;
        out[i] = x === NA_INTEGER ? null : x;
      }
      return out;
    }
    case "double": {
      const data = value.data;
      const out: Simplified[] = new Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const x = data[i]!;
        // Only a NaN can be NA: test the bits of those alone.
        out[i] = x === x || !isNA(x) ? x : null;
      }
      return out;
    }
    case "complex": {
      const out: Simplified[] = [];
      for (let i = 0; i < value.data.length; i += 2) {
        const re = value.data[i]!;
        const im = value.data[i + 1]!;
        out.push(isNA(re) || isNA(im) ? null : { re, im });
      }
      return out;
    }
    case "character":
      return value.data.slice();
  }
}

/**
 * The keys a vector or list of `length` elements simplifies to, or `undefined` when it stays an
 * array: no names, or names that repeat (a JS object would keep only one of them; the array
 * keeps every element, and `toR` the names, while the length is the same).
 */
export function objectKeys(
  names: (string | null)[] | undefined,
  length: number,
  prefix = "",
): string[] | undefined {
  if (names === undefined || names.length !== length || names.every((n) => !n)) return undefined;
  const keys = names.map((name, i) => name || `${prefix}${i + 1}`);
  return new Set(keys).size === keys.length ? keys : undefined;
}

function nameElements(elements: Simplified[], names: (string | null)[] | undefined): Simplified {
  const keys = objectKeys(names, elements.length);
  if (keys === undefined) return elements;
  const object: { [key: string]: Simplified } = {};
  elements.forEach((element, i) => {
    const key = keys[i]!;
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
    // A data.frame column that is itself a data.frame keeps its own (columns) shape.
    if (typeof s === "object" && s !== null && classOf(column).includes("data.frame")) {
      return s as Simplified[];
    }
    return Array.isArray(s) ? s : s instanceof Uint8Array ? Array.from(s) : [s];
  });
  const keys = columns.map((_, i) => names[i] || `V${i + 1}`);
  if (shape === "columns") return nameElements(simplified, keys);
  const rows = Math.max(0, ...simplified.map((column) => column.length));
  work.elements += rows * (1 + columns.length);
  return Array.from(
    { length: rows },
    (_, r) => nameElements(simplified.map((column) => column[r] ?? null), keys),
  );
}
