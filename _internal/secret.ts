/**
 * Comparing secrets (tokens) without leaking, through timing, how much of a guess was right.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text, "utf8").digest();
}

/**
 * True when `guess` equals `secret`. Both are hashed first, so `timingSafeEqual` always
 * compares 32 bytes: the time taken depends neither on where the two differ nor on the
 * secret's length.
 */
export function sameSecret(guess: string, secret: string): boolean {
  return timingSafeEqual(digest(guess), digest(secret));
}
