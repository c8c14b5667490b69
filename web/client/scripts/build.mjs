// Builds the client into dist/: switchboard.js, one minified ES module with
// no imports (esbuild), and switchboard.d.ts, its types in one file
// (dts-bundle-generator). The server embeds both and serves them at
// /sdk/switchboard.js and /sdk/switchboard.d.ts, so they are committed.
//
//   node scripts/build.mjs           write dist/
//   node scripts/build.mjs --check   fail if dist/ is not what the sources build
//
// Either way it prints the module's size, minified and gzipped.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const entry = path.join(root, "src", "switchboard.ts");
const check = process.argv.includes("--check");
const budget = 8 * 1024;

const js = (await build({
  entryPoints: [entry],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "none",
  write: false,
  logLevel: "warning",
})).outputFiles[0].text;

const tmp = mkdtempSync(path.join(tmpdir(), "switchboard-dts-"));
let dts;
try {
  const out = path.join(tmp, "switchboard.d.ts");
  execFileSync(process.execPath, [
    path.join(root, "node_modules", "dts-bundle-generator", "dist", "bin", "dts-bundle-generator.js"),
    "--silent", "--no-banner", "--export-referenced-types=false", "--project", path.join(root, "tsconfig.json"), "-o", out, entry,
  ], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  dts = readFileSync(out, "utf8");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const files = { "switchboard.js": js, "switchboard.d.ts": dts };
const gz = gzipSync(js, { level: 9 }).length;
console.log(`dist/switchboard.js: ${js.length} bytes minified, ${gz} gzipped (budget ${budget})`);

let failed = false;
if (gz > budget) {
  console.error(`dist/switchboard.js is over its budget of ${budget} bytes gzipped`);
  failed = true;
}
if (/\beval\s*\(|\bnew\s+Function\s*\(|\bFunction\s*\(/.test(js)) {
  console.error("dist/switchboard.js uses eval or new Function, which a strict Content-Security-Policy forbids");
  failed = true;
}
for (const [name, text] of Object.entries(files)) {
  const file = path.join(root, "dist", name);
  if (check) {
    let have = "";
    try { have = readFileSync(file, "utf8"); } catch { /* missing is stale */ }
    if (have !== text) {
      console.error(`web/client/dist/${name} is stale: run \`make client\` and commit the result`);
      failed = true;
    }
  } else {
    writeFileSync(file, text);
  }
}
process.exit(failed ? 1 : 0);
