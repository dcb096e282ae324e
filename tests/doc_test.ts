/**
 * The documentation holds: every exported function, class and constant of every door has an
 * `@example`, and every example (JSDoc and the README's ts blocks) type-checks.
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("../", import.meta.url).pathname;
// Every door the package publishes (deno.json exports), plus serial/, re-exported by reqrep/.
const DOORS = [
  ...new Set([...Object.values(denoJson.exports), "./serial/mod.ts"].map((p) => p.slice(2))),
];

interface DocTag {
  kind: string;
}
interface DocDeclaration {
  kind: string;
  location: { filename: string; line: number };
  jsDoc?: { tags?: DocTag[] };
  def?: { constructors?: { jsDoc?: { tags?: DocTag[] } }[] };
}
interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}

async function deno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

const hasExample = (tags: DocTag[] | undefined) => tags?.some((tag) => tag.kind === "example");

Deno.test("every exported function, class and constant has an @example", async () => {
  const doc = await deno(["doc", "--json", ...DOORS]);
  assert.equal(doc.code, 0, doc.stderr);
  const nodes = (JSON.parse(doc.stdout) as { nodes: Record<string, { symbols: DocSymbol[] }> })
    .nodes;
  const missing = new Set<string>();
  for (const { symbols } of Object.values(nodes)) {
    for (const symbol of symbols) {
      // Overloads: one documented signature is enough.
      const declarations = symbol.declarations.filter((d) =>
        ["function", "class", "variable", "enum"].includes(d.kind)
      );
      if (declarations.length === 0) continue;
      const documented = declarations.some((d) =>
        hasExample(d.jsDoc?.tags) ||
        (d.kind === "class" && d.def?.constructors?.some((c) => hasExample(c.jsDoc?.tags)))
      );
      if (!documented) {
        const { filename, line } = declarations[0]!.location;
        missing.add(`${symbol.name} (${filename.replace(`file://${ROOT}`, "")}:${line})`);
      }
    }
  }
  assert.deepEqual([...missing].sort(), []);
});

Deno.test("every @example and every README ts block type-checks", async () => {
  const jsdoc = await deno(["check", "--doc", ...DOORS]);
  assert.equal(jsdoc.code, 0, jsdoc.stderr);
  const readme = await deno(["check", "--doc-only", "README.md"]);
  assert.equal(readme.code, 0, readme.stderr);
});
