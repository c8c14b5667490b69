// The README's examples, for the tests that run them as written: each
// follows a marker comment, `<!-- NAME: who runs it -->`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "./server.mjs";

const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");

// readmeBlock returns the fenced code block after the marker named name.
export function readmeBlock(name) {
  const at = readme.indexOf(`<!-- ${name}:`);
  assert.ok(at >= 0, `README.md has no ${name} marker`);
  const m = /```\w*\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `README.md has no code block after ${name}`);
  return m[1];
}
