/**
 * Attribute checks for `simplify`: the reader keeps attributes as sent, and before anything is
 * built from them each must describe the data it sits on, or a few bytes (`dim = c(2, 1e8)` on
 * one double) would make it allocate without bound.
 *
 * @module
 */

import { classOf, isNA, NA_INTEGER, type RValue, SerializationError } from "./_types.ts";

/** A check failed: the attribute does not describe its data. */
export function fail(message: string): never {
  throw new SerializationError(message);
}

/** The number of elements of a vector or list (pairlist cells), or -1 for the other types. */
export function lengthOf(value: RValue): number {
  switch (value.type) {
    case "NULL":
      return 0;
    case "complex":
      return value.data.length / 2;
    case "logical":
    case "integer":
    case "double":
    case "character":
    case "raw":
    case "list":
    case "expression":
    case "pairlist":
    case "language":
    case "dots":
      return value.data.length;
    default:
      return -1;
  }
}

/** The whole-number entries of an integer or double attribute, or a SerializationError. */
export function extents(value: RValue, what: string): number[] {
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
export function rowCount(rowNames: RValue): number {
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
export function columnRows(column: RValue): number {
  const attributes = "attributes" in column ? column.attributes : undefined;
  const dim = attributes?.["dim"];
  if (dim !== undefined && (dim.type === "integer" || dim.type === "double")) {
    return dim.data[0] ?? 0;
  }
  const rowNames = attributes?.["row.names"];
  if (rowNames !== undefined && classOf(column).includes("data.frame")) return rowCount(rowNames);
  return lengthOf(column);
}

export function checkAttributes(value: RValue): void {
  if (!("attributes" in value) || value.attributes === undefined) return;
  // Closures, environments, S4 objects and the like stay typed: nothing is built from them.
  if (lengthOf(value) < 0) return;
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
