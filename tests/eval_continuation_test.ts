/**
 * The multi-line scan that spares re-parsing: wherever it says "wait" (something is still
 * open), V8 must find the code incomplete too — never complete.
 */
import assert from "node:assert/strict";
import { Continuation } from "../eval/_continuation.ts";

/** V8's verdict on `code`: "complete", "incomplete" or "error". */
function v8(code: string): "complete" | "incomplete" | "error" {
  try {
    new Function(code);
    return "complete";
  } catch (error) {
    const message = (error as Error).message;
    return message === "Unexpected end of input" || message.startsWith("Unterminated template")
      ? "incomplete"
      : "error";
  }
}

const SNIPPETS = [
  "function f(a) {\n  if (a) {\n    return [1, 2,\n      3];\n  }\n}",
  "const re = /[(]/;\nconst s = '(';\nconst t = \"{[\";\n",
  "const o = {\n  a: `x ${ { y: 1 }.y } (`,\n  b: /\\)/.source,\n};",
  "x = 4 / 2 / (1\n+ 1)",
  "/* ( { [ */\nconst a = [\n// ) } ]\n1]",
  "const t = `line one\nline two ${[1, 2].map((v) => `${v}(`).join()}\nend`;",
  "if (true) /re(/.test('re(') && [\n1]",
  "class A {\n  m() { return /}/g; }\n}",
  "const f = (a) =>\n  a.map((x) => ({\n    x,\n  }));",
  "let s = 'it\\'s ('; let n = (\n1)",
  "label: {\n  break label;\n}",
  "const x = a\n  ? [b]\n  : (c);",
];

Deno.test("eval continuation: the scan never calls complete code open", () => {
  for (const snippet of SNIPPETS) {
    const lines = snippet.split("\n");
    const state = new Continuation();
    for (let i = 0; i < lines.length; i++) {
      state.append(lines[i]!);
      const prefix = lines.slice(0, i + 1).join("\n");
      assert.equal(state.code, prefix);
      // No eager budget: every decision is the scan's.
      const step = state.next(0, Number.MAX_SAFE_INTEGER);
      if (step === "wait") {
        assert.notEqual(v8(prefix), "complete", `scan says open, V8 says complete:\n${prefix}`);
      }
    }
    assert.equal(state.next(0, Number.MAX_SAFE_INTEGER), "parse", `whole snippet:\n${snippet}`);
  }
});

Deno.test("eval continuation: bytes counted in UTF-8, work bounded", () => {
  const state = new Continuation();
  state.append("const s = 'é€😀' + [");
  assert.equal(state.bytes, new TextEncoder().encode(state.code).length);
  assert.equal(state.next(100, 1000), "parse"); // under the eager budget
  state.append("1,");
  assert.equal(state.next(10, 1000), "wait"); // past it, and "[" is open
  state.append("1] +");
  assert.equal(state.next(10, 60), "parse"); // nothing open: parse
  state.append("1 +");
  assert.equal(state.next(10, 60), "too-much"); // the work bound
});
