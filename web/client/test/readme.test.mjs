// The README's "From Node" block, run as written (the server's address
// put in), and programs that close the client in each state: each must
// leave Node free to exit at once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./support.mjs";
import { readmeBlock } from "../../../sdk/test/readme.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

let server, dir;
before(async () => {
  server = await startServer();
  // Inside the package, so that "@switchboard/client" resolves to it and
  // "ws" to its dependency, as in a project that installed both.
  dir = mkdtempSync(path.join(here, ".run-"));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});


// node runs source as an ES module and resolves with its output and how
// long it took to exit.
function node(name, source, env = {}) {
  const file = path.join(dir, name);
  writeFileSync(file, source);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (b) => { out += b; });
    p.stderr.on("data", (b) => { err += b; });
    const kill = setTimeout(() => p.kill("SIGKILL"), 20_000);
    p.once("error", reject);
    p.once("exit", (code, signal) => {
      clearTimeout(kill);
      resolve({ code, signal, out, err, ms: Date.now() - t0 });
    });
  });
}

test("README: the From Node block runs as written and exits at once", async () => {
  const src = readmeBlock("readme-node").replaceAll("http://127.0.0.1:8080", server.base);
  assert.notEqual(src, readmeBlock("readme-node"), "the block names no server address to replace");
  const token = await server.createToken("alice", "--publish", "chat.>", "--subscribe", "chat.>", "--ttl", "1h");
  const r = await node("subscribe.mjs", src, { SWITCHBOARD_TOKEN: token });
  assert.equal(r.code, 0, `exit ${r.code} ${r.signal}: ${r.err}`);
  assert.match(r.out, /^received 1 \{"text":"hello"\}\nonly admins remove channels\n$/);
  assert.ok(r.ms < 5000, `it took ${r.ms} ms to exit`);
});

test("close() leaves nothing running, whatever the client was doing", async () => {
  const program = (setup) => `
    import WebSocket from "ws";
    import { Switchboard } from "@switchboard/client";
    const sb = new Switchboard({ url: process.env.URL, token: process.env.TOKEN, WebSocket, reconnect: { minDelayMs: 5000 } });
    ${setup}
    const t0 = Date.now();
    sb.close();
    process.on("exit", () => console.log("closed", Date.now() - t0));
  `;
  const cases = {
    // Connected, with a subscription, a call answered and one waiting.
    connected: `const sub = sb.subscribe("close.a"); await sub.ready; await sb.serverPing(); sb.channelHistory({ channel: "close.a" }).catch(() => {});`,
    // Still connecting: the call waits for a socket that never opens.
    connecting: `sb.serverPing().catch(() => {}); await new Promise((r) => setTimeout(r, 20));`,
    // Waiting out the backoff after the server went away.
    waiting: `sb.serverPing().catch(() => {}); await new Promise((r) => sb.on("disconnected", r));`,
  };
  for (const [name, setup] of Object.entries(cases)) {
    const url = name === "connected" ? server.base : name === "connecting" ? "10.255.255.1:9" : "127.0.0.1:1";
    const r = await node(`close-${name}.mjs`, program(setup), { URL: url, TOKEN: server.token });
    assert.equal(r.code, 0, `${name}: exit ${r.code} ${r.signal}: ${r.err}`);
    const ms = Number(/closed (\d+)/.exec(r.out)?.[1]);
    assert.ok(ms < 1000, `${name}: Node exited ${ms} ms after close()`);
  }
});
