// A dashboard served from another origin calls POST /rpc with its token
// in Authorization: Chromium sends the preflight, and lets the page read
// the reply only when that origin is in --allowed-origins.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { startServer } from "../../sdk/test/server.mjs";
import { launchBrowser } from "./browser.mjs";

let server, pages, browser;

// A page server of its own, on another port: another origin. It serves
// one empty page; the test's scripts run in it.
async function pageServer(host) {
  const s = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>dashboard</title>");
  });
  await new Promise((resolve) => s.listen(0, host, resolve));
  return s;
}

before(async () => {
  pages = await pageServer("127.0.0.1");
  const origin = `http://127.0.0.1:${pages.address().port}`;
  server = await startServer("--allowed-origins", origin);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  pages?.close();
});

// callFrom runs fetch in a page of origin and returns what it could see.
async function callFrom(origin, token) {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate(async ({ url, token }) => {
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "sessionWhoami" }),
        });
        return { status: res.status, body: await res.json(), requestId: res.headers.get("x-request-id") };
      } catch (err) {
        return { failed: String(err) };
      }
    }, { url: server.rpcURL, token });
  } finally {
    await page.close();
  }
}

test("Chromium: an allowed origin calls POST /rpc with a token and reads refusals", async () => {
  const origin = `http://127.0.0.1:${pages.address().port}`;
  const ok = await callFrom(origin, server.token);
  assert.equal(ok.status, 200, JSON.stringify(ok));
  assert.equal(ok.body.result.transport, "http");
  assert.ok(ok.requestId, "X-Request-Id is exposed to the page");

  const refused = await callFrom(origin, "not-a-token");
  assert.equal(refused.status, 401, JSON.stringify(refused));
  assert.equal(refused.body.error.code, -32001);
  assert.equal(refused.body.id, 1);
});

test("Chromium: another origin cannot read the reply", async () => {
  // localhost is another origin than 127.0.0.1, though the same page server.
  const other = `http://localhost:${pages.address().port}`;
  const got = await callFrom(other, server.token);
  assert.ok(got.failed, `the page read ${JSON.stringify(got)}`);
  assert.match(got.failed, /TypeError/);
});
