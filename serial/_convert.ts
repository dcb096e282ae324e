/**
 * Plain JS to typed R values: `toR` for callers who write `serialize({ a: 1 })`, and for
 * simplified values written back as the R value they came from ("like": the R type where the JS
 * still fits it, and the attributes that still describe the data).
 *
 * @module
 */

import { columnRows, lengthOf, rowCount } from "./_checks.ts";
import {
  type Atomic,
  carryAttributes,
  elementOf,
  fitAtomic,
  int32,
  isAtomic,
  isComplexNumber,
  isPlainObject,
  keyIndex,
  namesFromKeys,
  orderedKeys,
  simplifiesToObject,
  withAttributes,
} from "./_fit_vector.ts";
import { ORIGIN, type Simplified } from "./_simplify.ts";
import {
  classOf,
  isRValue,
  NA_INTEGER,
  namesOf,
  R_NULL,
  type RAttributes,
  type RValue,
  setAttribute,
  setNA,
} from "./_types.ts";
import { work } from "./_work.ts";

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

// Writing JS back as the R value it came from ("like"): the R type where every element still
// fits it, and the attributes that still describe the data. Where the JS no longer fits, the
// plain rules of `convert` apply.

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
    work.elements += rows;
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
