/**
 * Byte helpers shared by the transports.
 *
 * @module
 */

/** One buffer holding `parts` back to back; `length` is their total, when the caller knows it. */
export function concatBytes(
  parts: readonly Uint8Array[],
  length: number = parts.reduce((sum, part) => sum + part.length, 0),
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
