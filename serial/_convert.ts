/**
 * Plain JS to typed R values: `toR` for callers who write `serialize({ a: 1 })`, and for
 * simplified values written back as the R value they came from ("like": the R type where the JS
 * still fits it, and the attributes that still describe the data).
 *
 * @module
 */

import { columnRows, lengthOf, rowCount } from "./_checks.ts";
import { type ComplexNumber, objectKeys, ORIGIN, type Simplified } from "./_simplify.ts";
import {
  classOf,
  isNA,
  isRValue,
  NA_INTEGER,
  namesOf,
  R_NULL,
  type RAttributes,
  REncoding,
  type RValue,
  setAttribute,
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

/**
 * Converts plain JS to a typed R value (see {@linkcode JsValue} for the mapping); typed R values
 * pass through unchanged. Arrays and objects that {@linkcode simplify} built are written back as
 * the R value they came from, edits included (see the table in the module doc); `like` does the
 * same for `value` itself, which may be a scalar: pass the typed value a request was decoded
 * from to answer with the same R type and attributes.
 *
 * @example
 * ```ts
 * import { serialize, simplify, toR, unserialize } from "@x/rsock/serial";
 * toR([1, null, 3]);   // { type: "double", data: Float64Array [1, NA, 3] }
 * toR({ a: "x" });     // a named list
 * const received = unserialize(serialize({ type: "integer", data: new Int32Array([42]) }));
 * toR(simplify(received) as number + 1, received); // 43L, still an integer
 * ```
 */
export function toR(value: JsValue | Simplified, like?: RValue): RValue {
  return convert(value as JsValue, 0, like);
}

function convert(value: JsValue, depth: number, like?: RValue): RValue {
  if (depth > 10_000) throw new RangeError("value nests more than 10000 levels deep");
  if (value === null || value === undefined) {
    // `null` is what simplify makes of a length-1 NA (NA_integer_, NA_character_, …).
    return like !== undefined && isAtomic(like) && lengthOf(like) === 1
      ? fit(value, like, depth) ?? R_NULL
      : R_NULL;
  }
  if (typeof value === "object") {
    const origin = (value as { [ORIGIN]?: RValue })[ORIGIN];
    if (origin !== undefined) like = origin;
    else if (isRValue(value)) return value;
  }
  if (like !== undefined) {
    const fitted = fit(value, like, depth);
    if (fitted !== undefined) return fitted;
  }
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
  if (isPlainObject(value)) {
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
  const kind = typeof value === "object" ? (value as object).constructor?.name : typeof value;
  throw new TypeError(
    `cannot convert ${kind} to an R value; expected null, number, string, boolean, ` +
      "Uint8Array, Float64Array, Int32Array, an array, a plain object or a typed R value",
  );
}

function isPlainObject(value: unknown): value is Record<string, JsValue> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
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
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v === null) setNA(data, i);
        else data[i] = v as number;
      }
      return { type: "double", data };
    }
    case "string":
      return { type: "character", data: values as (string | null)[] };
    case "boolean": {
      const data = new Int32Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        data[i] = v === null ? NA_INTEGER : v ? 1 : 0;
      }
      return { type: "logical", data };
    }
  }
  return { type: "list", data: values.map((v) => convert(v, depth + 1)) };
}

// ---------------------------------------------------------------------------------------------
// Writing JS back as the R value it came from ("like"): the R type where every element still
// fits it, and the attributes that still describe the data (names from object keys; dim,
// dimnames and row.names only while the shape is the same; class, levels, tzone and the rest
// always). Where the JS no longer fits, the plain rules of `convert` apply.

type Atomic = Extract<
  RValue,
  { type: "logical" | "integer" | "double" | "complex" | "character" | "raw" }
>;

function isAtomic(value: RValue): value is Atomic {
  switch (value.type) {
    case "logical":
    case "integer":
    case "double":
    case "complex":
    case "character":
    case "raw":
      return true;
  }
  return false;
}

function isComplexNumber(value: unknown): value is ComplexNumber {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 2 && typeof value.re === "number" && typeof value.im === "number";
}

function fit(value: JsValue, like: RValue, depth: number): RValue | undefined {
  if (isAtomic(like)) return fitAtomic(value, like) ?? fitMixed(value, like, depth);
  if (like.type === "list" || like.type === "expression") {
    return classOf(like).includes("data.frame")
      ? fitDataFrame(value, like, depth) ?? fitList(value, like, depth)
      : fitList(value, like, depth);
  }
  if (like.type === "pairlist") {
    // Fitted as the list of its values with the tags as names, then made a pairlist again.
    const cells = like.data;
    const asList: RValue = { type: "list", data: cells.map((cell) => cell.value) };
    if (cells.some((cell) => cell.tag !== undefined)) {
      asList.attributes = {
        names: { type: "character", data: cells.map((cell) => cell.tag ?? "") },
      };
    }
    const list = fitList(value, asList, depth);
    if (list?.type !== "list") return undefined;
    const names = namesOf(list);
    return {
      type: "pairlist",
      data: list.data.map((item, i) =>
        names?.[i] ? { tag: names[i]!, value: item } : { value: item }
      ),
    };
  }
  return undefined;
}

/** True when simplify turns `like` into an object (names, not only empty ones, none twice). */
function simplifiesToObject(like: RValue): boolean {
  return objectKeys(namesOf(like), lengthOf(like)) !== undefined;
}

/** How simplify names an unnamed element: `V2` in a data.frame, `2` elsewhere. */
function unnamedPrefix(like: RValue): string {
  return classOf(like).includes("data.frame") ? "V" : "";
}

/** For each key, the index of the element of `like` it stands for (simplify's naming rule). */
function keyIndex(like: RValue): Map<string, number> {
  const names = namesOf(like) ?? [];
  const prefix = unnamedPrefix(like);
  const index = new Map<string, number>();
  names.forEach((name, i) => {
    const key = name || `${prefix}${i + 1}`;
    if (!index.has(key)) index.set(key, i);
  });
  return index;
}

/**
 * The keys of `value` in R's order: JS lists integer-like keys ("2", what simplify names an
 * unnamed element) before the others, so keys `like` had come back in `like`'s order, then any
 * new ones in the object's order.
 */
function orderedKeys(value: object, like: RValue): string[] {
  const keys = Object.keys(value);
  const index = keyIndex(like);
  const known = keys.filter((key) => index.has(key));
  known.sort((a, b) => index.get(a)! - index.get(b)!);
  return [...known, ...keys.filter((key) => !index.has(key))];
}

/** `keys` as an R names vector, keeping `like`'s own names where simplify turned them into keys. */
function namesFromKeys(keys: string[], like: RValue): RValue {
  const old = namesOf(like);
  const prefix = unnamedPrefix(like);
  return {
    type: "character",
    data: keys.map((key, i) => {
      const name = old?.[i];
      return name !== undefined && (name || `${prefix}${i + 1}`) === key ? name : key;
    }),
  };
}

const int32 = (xs: number[]): RValue => ({ type: "integer", data: Int32Array.from(xs) });

/**
 * `like`'s attributes for data of `length` elements: `names` from `keys` when given, `dim` and
 * `dimnames` while `shape` (or the length) is unchanged, a new `dim` for a new `shape`.
 */
function carryAttributes(
  like: RValue,
  length: number,
  keys: string[] | undefined,
  shape: [number, number] | undefined,
  replace: RAttributes = {},
): RAttributes | undefined {
  const from = "attributes" in like ? like.attributes : undefined;
  const sameLength = length === lengthOf(like);
  const dim = from?.["dim"];
  const sameShape = shape === undefined
    ? sameLength
    : dim !== undefined && (dim.type === "integer" || dim.type === "double") &&
      dim.data.length === 2 && dim.data[0] === shape[0] && dim.data[1] === shape[1];
  const out: RAttributes = {};
  if (keys !== undefined && (from === undefined || !Object.hasOwn(from, "names"))) {
    setAttribute(out, "names", namesFromKeys(keys, like));
  }
  for (const [key, attribute] of Object.entries(from ?? {})) {
    let kept: RValue | undefined = attribute;
    switch (key) {
      case "names":
        kept = keys !== undefined ? namesFromKeys(keys, like) : sameLength ? attribute : undefined;
        break;
      case "dim":
        kept = sameShape ? attribute : shape !== undefined ? int32(shape) : undefined;
        break;
      case "dimnames":
        kept = sameShape ? attribute : undefined;
        break;
      case "row.names":
        kept = sameLength ? attribute : undefined;
        break;
    }
    if (Object.hasOwn(replace, key)) kept = replace[key];
    if (kept !== undefined) setAttribute(out, key, kept);
  }
  if (shape !== undefined && !Object.hasOwn(out, "dim")) setAttribute(out, "dim", int32(shape));
  return Object.keys(out).length > 0 ? out : undefined;
}

function withAttributes<T extends RValue>(value: T, attributes: RAttributes | undefined): T {
  if (attributes !== undefined) (value as { attributes?: RAttributes }).attributes = attributes;
  return value;
}

function fitAtomic(value: JsValue, like: Atomic): RValue | undefined {
  let items: unknown[];
  let keys: string[] | undefined;
  let shape: [number, number] | undefined;
  // Typed arrays of the R type's own storage are taken as they are.
  if (value instanceof Uint8Array || value instanceof Float64Array || value instanceof Int32Array) {
    const fits = like.type === "raw"
      ? value instanceof Uint8Array
      : like.type === "double"
      ? value instanceof Float64Array
      : (like.type === "integer" || like.type === "logical") && value instanceof Int32Array;
    if (!fits) return undefined;
    return withAttributes(
      { type: like.type, data: value } as RValue,
      carryAttributes(like, value.length, undefined, undefined),
    );
  }
  const dim = like.attributes?.["dim"];
  if (Array.isArray(value)) {
    const first = value[0];
    if (
      dim !== undefined && dim.type !== "NULL" && lengthOf(dim) === 2 && Array.isArray(first) &&
      value.every((row) => Array.isArray(row) && row.length === first.length)
    ) {
      // A matrix comes out of simplify as rows; R stores it by column.
      const rows = value.length;
      const cols = first.length;
      items = new Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        const row = value[r] as unknown[];
        for (let c = 0; c < cols; c++) items[r + c * rows] = row[c];
      }
      shape = [rows, cols];
    } else {
      items = value;
    }
  } else if (isPlainObject(value) && !isComplexNumber(value)) {
    keys = orderedKeys(value, like);
    items = keys.map((key) => value[key]);
  } else {
    items = [value];
  }
  const n = items.length;
  const same = n === lengthOf(like);
  const attributes = () => carryAttributes(like, n, keys, shape);
  switch (like.type) {
    case "logical": {
      // Loops rather than every()/from(fn): these run over every element of big vectors.
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const x = items[i];
        if (x == null) data[i] = NA_INTEGER;
        else if (typeof x === "boolean") data[i] = x ? 1 : 0;
        else return undefined;
      }
      return withAttributes({ type: "logical", data }, attributes());
    }
    case "integer": {
      if (classOf(like).includes("factor")) return fitFactor(items, like, keys, shape);
      const data = new Int32Array(n);
      let whole = true;
      for (let i = 0; i < n; i++) {
        const x = items[i];
        if (x == null) data[i] = NA_INTEGER;
        else if (typeof x !== "number") return undefined;
        else if ((x | 0) === x && x !== NA_INTEGER) data[i] = x;
        else whole = false;
      }
      const numbers = items as (number | null | undefined)[];
      if (whole) return withAttributes({ type: "integer", data }, attributes());
      // Integers mapped to fractions become doubles, keeping class and the rest.
      return withAttributes({ type: "double", data: doubles(numbers, undefined) }, attributes());
    }
    case "double": {
      for (let i = 0; i < n; i++) {
        const x = items[i];
        if (x != null && typeof x !== "number") return undefined;
      }
      const data = doubles(items as (number | null | undefined)[], same ? like.data : undefined);
      return withAttributes({ type: "double", data }, attributes());
    }
    case "complex": {
      if (!items.every((x) => x == null || typeof x === "number" || isComplexNumber(x))) {
        return undefined;
      }
      const data = new Float64Array(2 * n);
      items.forEach((x, i) => {
        if (x == null) {
          const re = like.data[2 * i];
          const im = like.data[2 * i + 1];
          // Keep which part was NA when this element is the one simplify read.
          if (same && re !== undefined && im !== undefined && (isNA(re) || isNA(im))) {
            new Uint8Array(data.buffer).set(
              new Uint8Array(like.data.buffer, like.data.byteOffset + 16 * i, 16),
              16 * i,
            );
          } else {
            setNA(data, 2 * i);
            setNA(data, 2 * i + 1);
          }
        } else if (typeof x === "number") {
          data[2 * i] = x;
        } else {
          data[2 * i] = (x as ComplexNumber).re;
          data[2 * i + 1] = (x as ComplexNumber).im;
        }
      });
      return withAttributes({ type: "complex", data }, attributes());
    }
    case "character": {
      if (!items.every((x) => x == null || typeof x === "string")) return undefined;
      const data = items.map((x) => (x ?? null) as string | null);
      const out: RValue = { type: "character", data };
      const encodings = like.encodings;
      if (encodings !== undefined && same) {
        const kept = data.map((x, i) =>
          x === like.data[i] ? encodings[i] ?? REncoding.native : REncoding.native
        );
        if (kept.some((e) => e !== REncoding.native)) out.encodings = kept;
      }
      return withAttributes(out, attributes());
    }
    case "raw": {
      if (!items.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 256)) {
        return undefined;
      }
      return withAttributes(
        { type: "raw", data: Uint8Array.from(items as number[]) },
        attributes(),
      );
    }
  }
}

/**
 * An atomic vector edited into values of several types (a string pushed onto numbers, a key of
 * another type added to a named vector) becomes a list, as the plain rules make it, but each
 * element still in place is written like the element it was: `NA` stays `NA` of its type
 * (not `NULL`), an integer stays an integer.
 */
function fitMixed(value: JsValue, like: Atomic, depth: number): RValue | undefined {
  let items: JsValue[];
  let keys: string[] | undefined;
  let at: (i: number, key?: string) => number | undefined;
  if (Array.isArray(value) && !value.some((x) => Array.isArray(x))) {
    items = value;
    at = (i) => i;
  } else if (isPlainObject(value) && !isComplexNumber(value)) {
    const index = keyIndex(like);
    keys = orderedKeys(value, like);
    items = keys.map((key) => value[key]);
    at = (_, key) => index.get(key!);
  } else {
    return undefined;
  }
  const n = lengthOf(like);
  const data = items.map((item, i) => {
    const j = at(i, keys?.[i]);
    return convert(item, depth + 1, j !== undefined && j < n ? elementOf(like, j) : undefined);
  });
  const list: RValue = { type: "list", data };
  if (keys !== undefined) list.attributes = { names: namesFromKeys(keys, like) };
  return list;
}

/** Element `i` of an atomic vector as a vector of one, with the attributes that are not shape. */
function elementOf(like: Atomic, i: number): RValue {
  const width = like.type === "complex" ? 2 : 1;
  const one = {
    type: like.type,
    data: like.data.slice(width * i, width * i + width),
  } as Atomic;
  if (like.type === "character" && like.encodings !== undefined) {
    (one as { encodings?: REncoding[] }).encodings = [like.encodings[i] ?? REncoding.native];
  }
  const attributes: RAttributes = {};
  for (const [key, attribute] of Object.entries(like.attributes ?? {})) {
    if (!["names", "dim", "dimnames", "row.names"].includes(key)) {
      setAttribute(attributes, key, attribute);
    }
  }
  return withAttributes(one, Object.keys(attributes).length > 0 ? attributes : undefined);
}

/** Numbers as R doubles; `null` is NA, and a NaN left where `old` had one keeps its bits. */
function doubles(
  items: (number | null | undefined)[],
  old: Float64Array | undefined,
): Float64Array {
  const data = new Float64Array(items.length);
  let nans = false;
  for (let i = 0; i < items.length; i++) {
    const x = items[i];
    if (x == null) setNA(data, i);
    else if (x !== x) nans = true;
    else data[i] = x;
  }
  if (nans) {
    const bits = new Uint32Array(data.buffer);
    const oldBits = old && new Uint32Array(old.buffer, old.byteOffset, old.length * 2);
    items.forEach((x, i) => {
      if (x !== x) {
        const was = old?.[i];
        const keep = oldBits !== undefined && was !== undefined && was !== was && !isNA(was);
        bits[2 * i] = keep ? oldBits[2 * i]! : 0;
        bits[2 * i + 1] = keep ? oldBits[2 * i + 1]! : 0x7ff80000;
      }
    });
  }
  return data;
}

function fitFactor(
  items: unknown[],
  like: Atomic,
  keys: string[] | undefined,
  shape: [number, number] | undefined,
): RValue | undefined {
  if (!items.every((x) => x == null || typeof x === "string")) return undefined;
  const levelsAttribute = like.attributes?.["levels"];
  const levels = levelsAttribute?.type === "character" ? levelsAttribute.data.slice() : [];
  const index = new Map<string | null, number>();
  levels.forEach((level, i) => index.has(level) || index.set(level, i + 1));
  const data = new Int32Array(items.length);
  const same = items.length === lengthOf(like);
  items.forEach((x, i) => {
    if (x == null) {
      // simplify reads a code of an NA level (addNA) as null too: keep it where it was.
      const was = like.data[i] as number;
      data[i] = same && was !== NA_INTEGER && levels[was - 1] === null ? was : NA_INTEGER;
      return;
    }
    let code = index.get(x as string);
    if (code === undefined) {
      // A label the factor did not have becomes a new level (R would make it NA).
      levels.push(x as string);
      code = levels.length;
      index.set(x as string, code);
    }
    data[i] = code;
  });
  const replace: RAttributes = {};
  if (levelsAttribute !== undefined && levels.length !== lengthOf(levelsAttribute)) {
    setAttribute(replace, "levels", { type: "character", data: levels });
  }
  return withAttributes(
    { type: "integer", data },
    carryAttributes(like, items.length, keys, shape, replace),
  );
}

function fitList(
  value: JsValue,
  like: Extract<RValue, { type: "list" | "expression" }>,
  depth: number,
): RValue | undefined {
  // The shape simplify gave must still be there: an array for an unnamed list, an object for a
  // named one. Anything else is new JS, written by the plain rules.
  const named = simplifiesToObject(like);
  if (Array.isArray(value) === named) return undefined;
  let data: RValue[];
  let keys: string[] | undefined;
  if (Array.isArray(value)) {
    data = value.map((x, i) => convert(x, depth + 1, like.data[i]));
  } else if (isPlainObject(value) && !isComplexNumber(value)) {
    const index = keyIndex(like);
    keys = orderedKeys(value, like);
    data = keys.map((key) => {
      const i = index.get(key);
      return convert(value[key], depth + 1, i === undefined ? undefined : like.data[i]);
    });
  } else {
    return undefined;
  }
  const attributes = carryAttributes(like, data.length, keys, undefined);
  if (attributes !== undefined && classOf(like).includes("data.frame")) {
    // Not a data frame any more (columns of different lengths): a plain named list.
    for (const key of ["class", "row.names"]) delete attributes[key];
  }
  return withAttributes({ type: like.type, data }, attributes);
}

function fitDataFrame(
  value: JsValue,
  like: Extract<RValue, { type: "list" | "expression" }>,
  depth: number,
): RValue | undefined {
  // Each column: its key, its JS and the column of `like` it stands for.
  let columns: [string, JsValue, RValue | undefined][];
  const index = keyIndex(like);
  const byKey = (key: string, column: JsValue): [string, JsValue, RValue | undefined] => {
    const i = index.get(key);
    return [key, column, i === undefined ? undefined : like.data[i]];
  };
  if (Array.isArray(value) && value.length > 0 && value.every((row) => isPlainObject(row))) {
    // The rows shape of simplify: one object per row.
    const keys = new Set<string>();
    for (const row of value) for (const key of Object.keys(row as object)) keys.add(key);
    columns = [...keys].map((key) =>
      byKey(key, value.map((row) => (row as Record<string, JsValue>)[key] ?? null))
    );
  } else if (Array.isArray(value) && !simplifiesToObject(like)) {
    // The columns as an array: a frame without columns, or whose names repeat. By position.
    const names = namesOf(like) ?? [];
    columns = value.map((column, i) => [names[i] || `V${i + 1}`, column, like.data[i]]);
  } else if (isPlainObject(value)) {
    columns = orderedKeys(value, like).map((key) => byKey(key, value[key]));
  } else {
    return undefined;
  }
  const rowNames = like.attributes?.["row.names"];
  const oldRows = rowNames === undefined ? 0 : rowCount(rowNames);
  const isScalar = (column: JsValue) => typeof column !== "object" || column === null;
  const converted = columns.map(([, column, template]) =>
    isScalar(column) ? undefined : convert(column, depth + 1, template)
  );
  // Scalars are recycled to the rows of a column that holds them; a frame with no columns (or
  // a column that is one) holds none, and a peer may have set its row count to 2^31: without a
  // column that holds its rows, the old count for a frame left with no columns, else one row.
  const first = converted.find((column) => column !== undefined && heldRows(column));
  const rows = first !== undefined ? columnRows(first) : columns.length === 0 ? oldRows : 1;
  const data = columns.map(([, column, template], i) => {
    const done = converted[i];
    if (done !== undefined) return done;
    // A scalar column is recycled, as data.frame() and `df$z <- 1` do in R; into no rows it
    // is an empty vector of its own type.
    if (rows === 0 && template === undefined && column !== null && column !== undefined) {
      const one = convert(column, depth + 1);
      return isAtomic(one) ? { ...one, data: one.data.slice(0, 0) } as RValue : one;
    }
    return convert(new Array(rows).fill(column), depth + 1, template);
  });
  if (!data.every((column) => columnRows(column) === rows)) return undefined;
  const keys = columns.map(([key]) => key);
  // Row names stay while the number of rows does; otherwise R's compact c(NA, -n).
  const newRowNames = rowNames !== undefined && rows === oldRows
    ? rowNames
    : int32([NA_INTEGER, -rows]);
  const replace: RAttributes = {};
  setAttribute(replace, "row.names", newRowNames);
  if (Array.isArray(value) && !simplifiesToObject(like) && data.length === lengthOf(like)) {
    // By position: keep the names as they were (repeats included).
    const names = like.attributes?.["names"];
    if (names !== undefined) setAttribute(replace, "names", names);
  }
  const attributes = carryAttributes(like, data.length, keys, undefined, replace) ?? {};
  if (!Object.hasOwn(attributes, "row.names")) setAttribute(attributes, "row.names", newRowNames);
  return { type: like.type, data, attributes };
}

/** Whether a column's elements are its rows: not a data.frame whose row count stands alone. */
function heldRows(column: RValue): boolean {
  if (column.type !== "list" || !classOf(column).includes("data.frame")) return true;
  const first = column.data[0];
  return first !== undefined && heldRows(first);
}
