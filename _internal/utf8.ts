/**
 * UTF-8 sizes of strings, for byte bounds that should not cost an encoding.
 *
 * @module
 */

/** The UTF-8 length of `text`, without encoding it (a lone surrogate counts as U+FFFD, 3). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 2; // a surrogate pair: 2 units, 4 bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}
