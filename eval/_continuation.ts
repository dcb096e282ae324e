/**
 * Multi-line input kept between lines (svSocket's `code` setting), in linear time.
 *
 * svSocket re-parses the whole pending code for every new line: n lines cost O(n²) parsing,
 * and a client sending many short lines could hold the shared session for minutes. Here each
 * line is scanned once for the brackets, template literals and comments it opens or closes;
 * past a small budget of eager re-parses, the whole code is parsed again only when the scan
 * says it could be complete, and the total parse work per block has a hard bound.
 *
 * @module
 */

import { utf8Length } from "../_internal/utf8.ts";

/** What to do with the pending code after a line was added. */
export type ContinuationStep = "parse" | "wait" | "too-much";

const OPENERS: Record<string, string> = { "(": ")", "[": "]", "{": "}" };
/** After these words a `/` starts a regular expression, not a division. */
const KEYWORDS_BEFORE_EXPRESSION = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

/**
 * One block of pending multi-line code: its size, the lexical state at its end, and the parse
 * work spent on it.
 */
export class Continuation {
  /** UTF-8 bytes of the pending code. */
  bytes = 0;
  /** Bytes parsed so far for this block (each re-parse costs the whole code). */
  work = 0;
  /** The code this state describes; anything else in the settings means it was changed. */
  code = "";
  // Lexical state at the end of the code: open brackets and template literals ("`" for a
  // template's text, "${" for an expression inside one), and what the scanner is inside.
  readonly #stack: string[] = [];
  #mode: "code" | "block-comment" | "regex" | "regex-class" | "bad" = "code";
  /** The last significant character (or word) outside comments: decides what `/` means. */
  #previous = "";

  /** Scans `text` (appended to the code, after a newline when code was pending). */
  append(text: string): void {
    const joined = this.code === "" ? text : "\n" + text;
    this.bytes += utf8Length(joined);
    this.code = this.code === "" ? text : this.code + joined;
    this.#scan(joined);
  }

  /**
   * Decides whether the code must be parsed now: always while the work stays under `eager`
   * (errors show at once, as in svSocket), then only when the scan finds nothing open; past
   * `budget` of work, "too-much".
   */
  next(eager: number, budget: number): ContinuationStep {
    const cost = this.bytes;
    if (this.work + cost <= eager) {
      this.work += cost;
      return "parse";
    }
    if (this.#mode !== "bad" && this.#mode !== "block-comment" && this.#stack.length > 0) {
      return "wait";
    }
    if (this.work + cost > budget) return "too-much";
    this.work += cost;
    return "parse";
  }

  #scan(text: string): void {
    const stack = this.#stack;
    let i = 0;
    while (i < text.length && this.#mode !== "bad") {
      const c = text[i]!;
      const top = stack[stack.length - 1];
      if (this.#mode === "block-comment") {
        const end = text.indexOf("*/", i);
        if (end < 0) return;
        this.#mode = "code";
        i = end + 2;
        continue;
      }
      if (this.#mode === "regex" || this.#mode === "regex-class") {
        if (c === "\\") i++;
        else if (c === "\n") this.#mode = "bad"; // V8 reports the error
        else if (c === "[") this.#mode = "regex-class";
        else if (c === "]" && this.#mode === "regex-class") this.#mode = "regex";
        else if (c === "/" && this.#mode === "regex") {
          this.#mode = "code";
          this.#previous = "a"; // a regex is an operand: a "/" after it divides
        }
        i++;
        continue;
      }
      if (top === "`") {
        if (c === "\\") i += 2;
        else if (c === "`") {
          stack.pop();
          this.#previous = "a";
          i++;
        } else if (c === "$" && text[i + 1] === "{") {
          stack.push("${");
          this.#previous = "";
          i += 2;
        } else i++;
        continue;
      }
      if (c === " " || c === "\t" || c === "\r" || c === "\n") {
        i++;
        continue;
      }
      if (c === "/" && text[i + 1] === "/") {
        const end = text.indexOf("\n", i);
        if (end < 0) return;
        i = end;
        continue;
      }
      if (c === "/" && text[i + 1] === "*") {
        this.#mode = "block-comment";
        i += 2;
        continue;
      }
      if (c === '"' || c === "'") {
        // Strings end on their line: one that does not is an error V8 reports.
        let j = i + 1;
        while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
        if (j >= text.length || text[j] === "\n") {
          this.#mode = "bad";
          return;
        }
        this.#previous = "a";
        i = j + 1;
        continue;
      }
      if (c === "`") {
        stack.push("`");
        i++;
        continue;
      }
      if (c === "/") {
        this.#mode = this.#startsRegex() ? "regex" : "code";
        this.#previous = "/";
        i++;
        continue;
      }
      if (c in OPENERS) {
        stack.push(c);
        this.#previous = c;
        i++;
        continue;
      }
      if (c === ")" || c === "]" || c === "}") {
        const open = stack.pop();
        if (open === "${" && c === "}") {
          i++;
          continue; // back in the template's text
        }
        if (open === undefined || OPENERS[open] !== c) {
          this.#mode = "bad"; // a closer without its opener: V8 reports it
          return;
        }
        this.#previous = c;
        i++;
        continue;
      }
      if (/[A-Za-z0-9_$]/.test(c)) {
        let j = i + 1;
        while (j < text.length && /[A-Za-z0-9_$]/.test(text[j]!)) j++;
        this.#previous = text.slice(i, j);
        i = j;
        continue;
      }
      this.#previous = c;
      i++;
    }
  }

  /** A `/` starts a regular expression unless it follows an operand. */
  #startsRegex(): boolean {
    const previous = this.#previous;
    if (previous === "") return true;
    if (previous === ")" || previous === "]" || previous === "a") return false;
    if (/^[A-Za-z0-9_$]/.test(previous)) return KEYWORDS_BEFORE_EXPRESSION.has(previous);
    return true;
  }
}
