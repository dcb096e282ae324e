/**
 * Text for one log or status line: whitespace runs folded to one space, cut at a length.
 *
 * @module
 */

/** `text` on one line, at most `max` characters, an ellipsis marking a cut. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, max)}…`;
}
