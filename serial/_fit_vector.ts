/**
 * Fitting one atomic vector back to the R vector it was simplified from: the R type where every
 * element still fits it, and the attributes that still describe the data (names from object
 * keys; dim, dimnames and row.names only while the shape is the same; class, levels, tzone and
 * the rest always). Lists and data frames are walked in `_convert.ts`.
 *
 * @module
 */

import { lengthOf } from "./_checks.ts";
import { type ComplexNumber, objectKeys } from "./_simplify.ts";
import {
  classOf,
  isNA,
  NA_INTEGER,
  namesOf,
  type RAttributes,
  REncoding,
  type RValue,
  setAttribute,
  setNA,
} from "./_types.ts";
import type { JsValue } from "./_convert.ts";

/** True for a plain object (`{}` or `Object.create(null)`), not a class instance. */
export function isPlainObject(value: unknown): value is Record<string, JsValue> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export type Atomic = Extract<
  RValue,
  { type: "logical" | "integer" | "double" | "complex" | "character" | "raw" }
>;

export function isAtomic(value: RValue): value is Atomic {
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

export function isComplexNumber(value: unknown): value is ComplexNumber {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 2 && typeof value.re === "number" && typeof value.im === "number";
}

/** True when simplify turns `like` into an object (names, not only empty ones, none twice). */
export function simplifiesToObject(like: RValue): boolean {
  return objectKeys(namesOf(like), lengthOf(like)) !== undefined;
}

/** How simplify names an unnamed element: `V2` in a data.frame, `2` elsewhere. */
export function unnamedPrefix(like: RValue): string {
  return classOf(like).includes("data.frame") ? "V" : "";
}

/** For each key, the index of the element of `like` it stands for (simplify's naming rule). */
export function keyIndex(like: RValue): Map<string, number> {
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
export function orderedKeys(value: object, like: RValue): string[] {
  const keys = Object.keys(value);
  const index = keyIndex(like);
  const known = keys.filter((key) => index.has(key));
  known.sort((a, b) => index.get(a)! - index.get(b)!);
  return [...known, ...keys.filter((key) => !index.has(key))];
}

/** `keys` as an R names vector, keeping `like`'s own names where simplify turned them into keys. */
export function namesFromKeys(keys: string[], like: RValue): RValue {
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

export const int32 = (xs: number[]): RValue => ({ type: "integer", data: Int32Array.from(xs) });

/**
 * `like`'s attributes for data of `length` elements: `names` from `keys` when given, `dim` and
 * `dimnames` while `shape` (or the length) is unchanged, a new `dim` for a new `shape`.
 */
export function carryAttributes(
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

export function withAttributes<T extends RValue>(value: T, attributes: RAttributes | undefined): T {
  if (attributes !== undefined) (value as { attributes?: RAttributes }).attributes = attributes;
  return value;
}

export function fitAtomic(value: JsValue, like: Atomic): RValue | undefined {
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
          x === like.data[i] ? encodings[i] ?? REncoding.utf8 : REncoding.utf8
        );
        if (kept.some((e) => e !== REncoding.utf8)) out.encodings = kept;
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

/** Element `i` of an atomic vector as a vector of one, with the attributes that are not shape. */
export function elementOf(like: Atomic, i: number): RValue {
  const width = like.type === "complex" ? 2 : 1;
  const one = {
    type: like.type,
    data: like.data.slice(width * i, width * i + width),
  } as Atomic;
  if (like.type === "character" && like.encodings !== undefined) {
    (one as { encodings?: REncoding[] }).encodings = [like.encodings[i] ?? REncoding.utf8];
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
export function doubles(
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

export function fitFactor(
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
