/**
 * R's `as.character()` of numbers, needed to expand ALTREP `deferred_string` vectors (R writes
 * `as.character(1:3)` as the integers plus a note to format them later).
 *
 * @module
 */

import { isNA, NA_INTEGER } from "./_types.ts";

/** `as.character()` of one R integer: decimal, NA → NA_character_. */
export function formatInteger(x: number): string | null {
  return x === NA_INTEGER ? null : String(x);
}

/**
 * `as.character()` of one R double with R's rule: 15 significant digits, fixed notation unless
 * scientific is shorter by more than `scipen` characters.
 */
export function formatDouble(x: number, scipen: number): string | null {
  if (x !== x) return isNA(x) ? null : "NaN";
  if (x === Infinity) return "Inf";
  if (x === -Infinity) return "-Inf";
  if (x === 0) return "0";
  const negative = x < 0;
  const [mantissa = "0", exponentText = "0"] = Math.abs(x).toExponential(14).split("e");
  const digits = mantissa.replace(".", "").replace(/0+$/, "") || "0";
  const exponent = Number(exponentText);
  const sign = negative ? "-" : "";
  const nsig = digits.length;
  const expDigits = Math.abs(exponent) >= 100
    ? String(Math.abs(exponent))
    : String(Math.abs(exponent)).padStart(2, "0");
  const sci = `${sign}${digits[0]}${nsig > 1 ? "." + digits.slice(1) : ""}e${
    exponent < 0 ? "-" : "+"
  }${expDigits}`;
  let fixed: string;
  if (exponent >= 0) {
    const left = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
    const right = digits.slice(exponent + 1);
    fixed = `${sign}${left}${right.length > 0 ? "." + right : ""}`;
  } else {
    fixed = `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  }
  return fixed.length <= sci.length + scipen ? fixed : sci;
}
