// The README's "SDKs from openrpc.json" steps, run as written against a
// live server: generate a client from the served /openrpc.json with the
// generator from npm, build it, and run the example program with it. Only
// the address changes, from the README's 127.0.0.1:8080 to the test
// server's. It needs the npm registry, as a user does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer } from "./server.mjs";
import { readmeBlock } from "./readme.mjs";



let server, dir;

before(async () => {
  server = await startServer();
  dir = mkdtempSync(path.join(tmpdir(), "switchboard-readme-sdk-"));
});

after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("README: generate, build and use a TypeScript client", { timeout: 240_000 }, () => {
  const generate = readmeBlock("readme-sdk-generate").replaceAll("http://127.0.0.1:8080", server.base);
  assert.notEqual(generate, readmeBlock("readme-sdk-generate"), "the generate block names no server address to replace");
  execFileSync("bash", ["-euo", "pipefail", "-c", generate], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });

  const clientDir = path.join(dir, "client", "typescript");
  const program = readmeBlock("readme-sdk-use").replace("port: 8080", `port: ${server.port}`);
  assert.notEqual(program, readmeBlock("readme-sdk-use"), "the example program names no port to replace");
  writeFileSync(path.join(clientDir, "subscribe.js"), program);
  const out = execFileSync("node", ["subscribe.js"], {
    cwd: clientDir,
    env: { ...process.env, SWITCHBOARD_TOKEN: server.token },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.deepEqual(out.trim().split("\n"), ["subscribed at 0", 'received 1 {"text":"hello"}', "newest 1"]);
});
