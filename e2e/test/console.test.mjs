// The web console (web/console) in Chromium, served by the real binary:
// signing in, the overview, a channel's live publications from the CLI,
// XSS payloads shown as text, the methods view and its shell commands, a
// channel view through a SIGKILL restart, paging back and follow-scroll,
// refused and expiring tokens, the security headers, a proxy's path
// prefix, a phone's width and the keyboard. Every test also fails on a
// Content-Security-Policy violation, an uncaught error or a dialog.
//
// Screenshots of each view go to e2e/screenshots/ (not committed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot, startServer } from "../../sdk/test/server.mjs";
import { launchBrowser } from "./browser.mjs";

const binary = process.env.SWITCHBOARD_BIN || path.join(repoRoot, "bin", "switchboard");
const shots = path.join(repoRoot, "e2e", "screenshots");
const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

let server, browser, binDir;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  mkdirSync(shots, { recursive: true });
  // The "switchboard call" command the console writes runs `switchboard`
  // from PATH: this directory holds it under that name.
  binDir = mkdtempSync(path.join(tmpdir(), "switchboard-bin-"));
  symlinkSync(path.resolve(binary), path.join(binDir, "switchboard"));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (binDir) rmSync(binDir, { recursive: true, force: true });
});

// rpc calls method over HTTP POST from Node, and returns the whole reply.
async function rpcReply(method, params, token = server.token) {
  const res = await fetch(server.rpcURL, {
    method: "POST",
    headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, ...(params && { params }) }),
  });
  return res.json();
}

async function rpc(method, params, token) {
  const reply = await rpcReply(method, params, token);
  if (reply.error) throw new Error(`${method}: ${JSON.stringify(reply.error)}`);
  return reply.result;
}

// run runs a command, resolving with its exit code, output, and the
// moment Node saw it exit.
function run(file, args, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (b) => { stdout += b; });
    p.stderr.on("data", (b) => { stderr += b; });
    p.once("error", reject);
    p.once("exit", (code) => resolve({ code, stdout, stderr, exitedAt: Date.now() }));
  });
}

// openConsole opens the console (the server's root unless told
// otherwise) in a new page of 1200x800, light theme, that records CSP
// violations, page errors, dialogs and requests; closed when the test
// ends.
async function openConsole(t, { url = server.base + "/", width = 1200, height = 800 } = {}) {
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  t.after(() => page.close());
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: "light" });
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(err.message));
  page.dialogs = [];
  page.on("dialog", (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.requests = []; // every address the page fetched or opened a socket to
  page.on("request", (r) => page.requests.push(r.url()));
  page.on("websocket", (ws) => page.requests.push(ws.url()));
  page.violations = [];
  await page.exposeFunction("reportViolation", (v) => { page.violations.push(v); });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.reportViolation({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber });
    });
  });
  await page.goto(url);
  return page;
}

// clean asserts what every test ends with: no CSP violation, no uncaught
// error, no dialog.
function clean(page) {
  assert.deepEqual(page.violations, [], "Content-Security-Policy violations");
  assert.deepEqual(page.errors, [], "errors in the page");
  assert.deepEqual(page.dialogs, [], "dialogs");
}

async function signIn(page, token = server.token) {
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function signedIn(t, options) {
  const page = await openConsole(t, options);
  await signIn(page);
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  return page;
}

// openChannel goes to a channel's view and waits until its subscription
// has begun.
async function openChannel(page, name) {
  await page.evaluate((hash) => { location.hash = hash; }, `#/channels/${encodeURIComponent(name)}`);
  await page.locator(".events").getByText(/Subscribed since offset/).waitFor();
}

const liveOffsets = (page) => page.$$eval(".live .pub", (els) => els.map((el) => Number(el.dataset.offset)));

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

test("sign in with the admin token: the overview shows the server's version and node id, and a reload stays signed in", async (t) => {
  const page = await openConsole(t);
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
  await shot(page, "signin");
  await signIn(page);
  const info = await rpc("serverInfo");
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  await page.waitForFunction((v) => document.querySelector(".info-version")?.textContent === v, info.version);
  assert.equal(await page.locator(".info-version").textContent(), info.version);
  assert.equal(await page.locator(".info-node").textContent(), info.nodeId);
  await page.locator("#conn").getByText("Connected").waitFor();
  // The page's own socket is one of the open connections.
  assert.ok(Number(await page.locator(".info-connections").textContent()) >= 1);
  // The rate charts fill in from the second poll on.
  await page.waitForFunction(() => document.querySelector(".chart-now")?.textContent !== "–", null, { timeout: 5000 });
  await page.waitForTimeout(2500);
  // The page's own serverInfo, once a second, is a call a second at least.
  const [callsNow, notesNow] = await page.$$eval(".chart-now", (els) => els.map((el) => Number(el.textContent)));
  assert.ok(callsNow >= 0.5, `calls/s ${callsNow}`);
  assert.ok(notesNow >= 0, `notifications/s ${notesNow}`);
  assert.ok(await page.locator(".chart-line").first().getAttribute("d"), "the calls chart has no line");
  await shot(page, "overview");
  assert.equal(await page.evaluate(() => sessionStorage.length), 1);
  assert.equal(await page.evaluate(() => localStorage.length), 0, "the token must not go to localStorage");

  await page.reload();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  await page.waitForFunction((v) => document.querySelector(".info-version")?.textContent === v, info.version);

  // The session view: what the server says of the token, and its claims.
  await page.getByRole("link", { name: "Session" }).click();
  await page.getByRole("heading", { level: 1, name: "Session" }).waitFor();
  await page.locator(".session-facts .user").getByText("admin").waitFor();
  assert.match(await page.locator(".session-facts .admin").textContent(), /^yes/);
  assert.match(await page.locator(".expiry .countdown").textContent(), /^\(in 23h 5\dm \d+s\)$/);
  const claims = JSON.parse(await page.locator(".token-claims").textContent());
  assert.equal(claims.sub, "admin");
  assert.equal(claims.admin, true);
  assert.deepEqual(JSON.parse(await page.locator(".token-header").textContent()), { alg: "HS256", typ: "JWT" });
  const signature = server.token.split(".")[2];
  assert.ok(!(await page.locator("body").textContent()).includes(signature), "the token's signature is shown");
  await shot(page, "session");
  clean(page);
});

test("a publication made with switchboard publish appears in the channel view within a second, with offset and publisher", async (t) => {
  const channel = "cli.watch";
  for (const text of ["deploy started", "tests passed"]) await rpc("channelPublish", { channel, data: { text } });
  const bot = await server.createToken("ci-bot", "--publish", "cli.>", "--subscribe", "cli.>", "--ttl", "1h");
  const page = await signedIn(t);

  // Through the channels view, as a reader would get there.
  await page.getByRole("link", { name: "Channels" }).click();
  await page.getByRole("heading", { level: 1, name: "Channels" }).waitFor();
  const row = page.getByRole("row", { name: new RegExp(`^${channel.replace(".", "\\.")}\\b`) });
  await row.waitFor();
  assert.deepEqual(await row.getByRole("cell").allTextContents(), [channel, "0", "2"]);
  await shot(page, "channels");
  await page.getByRole("link", { name: channel }).click();
  await page.locator(".events").getByText(/Subscribed since offset 2/).waitFor();
  assert.deepEqual(await page.$$eval(".history .pub", (els) => els.map((el) => el.dataset.offset)), ["1", "2"]);

  // Another subscriber comes and goes: presence follows.
  const watcher = spawn(binary, ["subscribe", channel, "--url", server.base, "--token", bot], { stdio: "ignore" });
  t.after(() => watcher.kill());
  const member = page.locator(".members .member", { hasText: "ci-bot" });
  await member.waitFor();

  await page.evaluate(() => {
    window.arrived = {};
    new MutationObserver(() => {
      for (const el of document.querySelectorAll(".live .pub")) window.arrived[el.dataset.offset] ??= Date.now();
    }).observe(document.querySelector(".live"), { childList: true });
  });
  const cli = await run(binary, ["publish", channel, JSON.stringify({ text: "released v1.4.2", by: "pipeline" }), "--url", server.base, "--token", bot]);
  assert.equal(cli.code, 0, cli.stderr);
  const published = JSON.parse(cli.stdout);
  assert.equal(published.offset, 3);
  const arrivedAt = await page.waitForFunction((o) => window.arrived[o], String(published.offset), { timeout: 5000 }).then((h) => h.jsonValue());
  const ms = arrivedAt - cli.exitedAt;
  t.diagnostic(`the publication appeared ${ms} ms after switchboard publish exited`);
  assert.ok(ms < 1000, `the publication appeared ${ms} ms after switchboard publish exited`);

  const pub = page.locator(`.live .pub[data-offset="${published.offset}"]`);
  assert.equal(await pub.locator(".pub-offset").textContent(), "#3");
  assert.equal(await pub.locator(".pub-publisher").textContent(), "ci-bot");
  assert.deepEqual(JSON.parse(await pub.locator(".pub-data").textContent()), { text: "released v1.4.2", by: "pipeline" });
  await page.waitForTimeout(300);
  await shot(page, "channel");

  watcher.kill();
  await member.waitFor({ state: "detached" });
  clean(page);
});

test("XSS payloads in data and in the publisher's name show as text, and nothing runs", async (t) => {
  const channel = "xss.room";
  const payload = "<img src=x onerror=alert(1)>";
  const script = "</pre><script>alert(2)</script>";
  const evil = await server.createToken("<img src=x onerror=alert(3)>", "--publish", "xss.>", "--subscribe", "xss.>", "--ttl", "1h");
  await rpc("channelPublish", { channel, data: { html: payload } }, evil); // in the history
  const page = await signedIn(t);
  await openChannel(page, channel);
  await rpc("channelPublish", { channel, data: { html: payload, more: script } }, evil); // live
  await page.locator(".live .pub").first().waitFor();

  // The publish box sends one too, typed into its textarea.
  await page.getByLabel("Data (JSON)").fill(JSON.stringify({ html: "<svg onload=alert(4)>" }));
  await page.getByRole("button", { name: "Publish" }).click();
  await page.getByText("Published at offset 3.").waitFor();
  await page.waitForFunction(() => document.querySelectorAll(".live .pub").length === 2);

  const data = await page.$$eval(".pub-data", (els) => els.map((el) => JSON.parse(el.textContent)));
  assert.deepEqual(data, [{ html: payload }, { html: payload, more: script }, { html: "<svg onload=alert(4)>" }]);
  const publishers = await page.$$eval(".pub-publisher", (els) => els.map((el) => el.textContent));
  assert.deepEqual(publishers, ["<img src=x onerror=alert(3)>", "<img src=x onerror=alert(3)>", "admin"]);
  assert.ok((await page.locator(".feed").textContent()).includes(payload));

  assert.equal(await page.locator("img").count(), 0, "an <img> element was made");
  assert.equal(await page.locator("main svg, main script").count(), 0, "an <svg> or <script> element was made");
  // A bad JSON in the publish box is refused before sending, and said.
  await page.getByLabel("Data (JSON)").fill("{not json");
  await page.getByRole("button", { name: "Publish" }).click();
  assert.equal(await page.getByLabel("Data (JSON)").getAttribute("aria-invalid"), "true");
  await page.getByText(/^This is not JSON/).waitFor();
  assert.equal((await rpc("channelHistory", { channel })).offset, 3, "the bad JSON was sent");
  await page.waitForTimeout(300); // an onerror handler would have run by now
  clean(page);
});

test("the methods view calls channelHistory from its form, and its curl and switchboard call commands give the same result", async (t) => {
  const channel = "meth.a";
  for (const n of [1, 2, 3]) await rpc("channelPublish", { channel, data: { n, quote: "it's" } });
  const page = await signedIn(t);
  await page.getByRole("link", { name: "Methods" }).click();
  const form = page.getByRole("region", { name: "channelHistory" });
  await form.waitFor();
  assert.match(await form.textContent(), /Reads a page of a channel's history/);
  await form.getByLabel("channel").fill(channel);
  await form.getByLabel("limit").fill("2");
  await form.getByRole("button", { name: "Call", exact: true }).click();
  const resultText = await form.locator(".result-json").textContent();
  const result = JSON.parse(resultText);
  assert.deepEqual(result.publications.map((p) => [p.offset, p.data.n, p.publisher]), [[1, 1, "admin"], [2, 2, "admin"]]);
  assert.equal(result.offset, 3);
  await shot(page, "methods");

  const env = { SWITCHBOARD_TOKEN: server.token, PATH: `${binDir}:${process.env.PATH}` };
  await form.getByRole("button", { name: "Copy as curl" }).click();
  const curl = await form.getByLabel("curl command").inputValue();
  assert.match(curl, /^curl -s /);
  assert.ok(!curl.includes(server.token), "the command holds the token");
  const viaCurl = await run("sh", ["-c", curl], env);
  assert.equal(viaCurl.code, 0, viaCurl.stderr);
  assert.deepEqual(JSON.parse(viaCurl.stdout).result, result);

  await form.getByRole("button", { name: "Copy as switchboard call" }).click();
  const call = await form.getByLabel("switchboard command").inputValue();
  assert.equal(call, `switchboard call --url ${server.base}/ channelHistory '{"channel":"meth.a","limit":2}'`);
  const viaCLI = await run("sh", ["-c", call], env);
  assert.equal(viaCLI.code, 0, viaCLI.stderr);
  assert.deepEqual(JSON.parse(viaCLI.stdout), result);

  // A value the server refuses: its error, code and message.
  await form.getByLabel("limit").fill("5000");
  await form.getByRole("button", { name: "Call", exact: true }).click();
  await form.locator(".error-code").getByText("-32602").waitFor();
  assert.match(await form.locator(".error-message").textContent(), /limit/);
  // One the form refuses before calling: since must be JSON.
  await form.getByLabel("since").fill("{offset: 1}");
  await form.getByRole("button", { name: "Call", exact: true }).click();
  assert.equal(await form.getByLabel("since").getAttribute("aria-invalid"), "true");

  // A single quote in a param survives the shell quoting.
  const publish = page.getByRole("region", { name: "channelPublish" });
  await publish.getByLabel("channel").fill(channel);
  await publish.getByLabel("data").fill(JSON.stringify({ quote: "it's 'quoted'" }));
  await publish.getByRole("button", { name: "Copy as switchboard call" }).click();
  const published = await run("sh", ["-c", await publish.getByLabel("switchboard command").inputValue()], env);
  assert.equal(published.code, 0, published.stderr);
  assert.equal(JSON.parse(published.stdout).offset, 4);
  const h = await rpc("channelHistory", { channel, newestFirst: true, limit: 1 });
  assert.deepEqual(h.publications[0].data, { quote: "it's 'quoted'" });
  clean(page);
});

test("the channel view goes on through a SIGKILL restart with no gap, and says it recovered", async (t) => {
  const channel = "restart.c";
  const page = await signedIn(t);
  await openChannel(page, channel);
  for (let i = 1; i <= 3; i++) await rpc("channelPublish", { channel, data: { i } });
  await page.waitForFunction(() => document.querySelectorAll(".live .pub").length === 3);

  // Offline, the page cannot reconnect until 4..6 are published, so that
  // they can only come by recovery.
  await page.context().setOffline(true);
  t.after(() => page.context().setOffline(false));
  await server.restart("SIGKILL");
  await page.locator("#conn").getByText(/^Reconnecting/).waitFor();
  for (let i = 4; i <= 6; i++) await rpc("channelPublish", { channel, data: { i } });
  await page.context().setOffline(false);

  await page.locator(".events").getByText("Reconnected and subscribed again: recovered 3 publications; nothing lost.").waitFor({ timeout: 15_000 });
  await page.waitForFunction(() => document.querySelectorAll(".live .pub").length >= 6);
  // One more, live, after the recovery: still no repeat.
  await rpc("channelPublish", { channel, data: { i: 7 } });
  await page.waitForFunction(() => document.querySelectorAll(".live .pub").length >= 7);
  await page.waitForTimeout(200);
  assert.deepEqual(await liveOffsets(page), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(await page.$$eval(".live .pub-data", (els) => els.map((el) => JSON.parse(el.textContent).i)), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(await page.locator(".feed-mark").count(), 0, "a loss was marked");
  await page.locator("#conn").getByText("Connected").waitFor();
  // Presence was read again on the new connection: this console, once.
  await page.locator(".members .member .badge").waitFor();
  assert.equal(await page.locator(".members .member").count(), 1);
  clean(page);
});

test("the history pages back with Load older, and the list follows the newest unless the reader scrolls up", async (t) => {
  const channel = "scroll.a";
  for (let i = 1; i <= 60; i++) await rpc("channelPublish", { channel, data: { i } });
  const page = await signedIn(t);
  await openChannel(page, channel);
  const history = () => page.$$eval(".history .pub", (els) => els.map((el) => Number(el.dataset.offset)));
  assert.deepEqual(await history(), Array.from({ length: 50 }, (_, i) => i + 11));
  await page.getByRole("button", { name: "Load older" }).click();
  await page.getByText("The start of the channel.").waitFor();
  assert.deepEqual(await history(), Array.from({ length: 60 }, (_, i) => i + 1));
  assert.equal(await page.getByRole("button", { name: "Load older" }).isVisible(), false);

  const feed = page.locator(".feed");
  const atBottom = () => feed.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight <= 24);
  // Clicking "Load older" scrolled the button into view, so the list
  // stopped following; back at the bottom, it says it follows again
  // (the scroll event comes a frame later, so wait for what it shows).
  await feed.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await page.getByText("Following the newest publications.").waitFor();
  await rpc("channelPublish", { channel, data: { i: 61 } });
  await page.locator('.live .pub[data-offset="61"]').waitFor();
  assert.equal(await atBottom(), true, "the list did not follow the newest");

  // Scrolled up, the reader stays where they are.
  await feed.evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event("scroll")); });
  await page.getByRole("button", { name: "Jump to newest" }).waitFor();
  await rpc("channelPublish", { channel, data: { i: 62 } });
  await page.locator('.live .pub[data-offset="62"]').waitFor();
  assert.equal(await feed.evaluate((el) => el.scrollTop), 0);
  await page.getByText("1 new publication below").waitFor();

  // Back at the bottom, it follows again.
  await page.getByRole("button", { name: "Jump to newest" }).click();
  assert.equal(await atBottom(), true);
  await rpc("channelPublish", { channel, data: { i: 63 } });
  await page.locator('.live .pub[data-offset="63"]').waitFor();
  assert.equal(await atBottom(), true, "the list did not follow again");
  assert.deepEqual(await liveOffsets(page), [61, 62, 63]);
  clean(page);
});

test("a refused token stays on sign-in and says so; an expiring one returns there when the server closes with 4001", async (t) => {
  const page = await openConsole(t);
  const field = page.getByLabel("Access token");

  await signIn(page, "not-a-token");
  await page.getByText("The server refused this token: token malformed").waitFor();
  assert.equal(await field.getAttribute("aria-invalid"), "true");

  const other = await run(binary, ["token", "create", "--token-secret", "another-secret-entirely-0123456789", "--sub", "x"]);
  assert.equal(other.code, 0, other.stderr);
  await signIn(page, other.stdout.trim());
  await page.getByText("The server refused this token: token signature invalid").waitFor();
  await field.waitFor();
  assert.equal(await page.locator("#nav").isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await shot(page, "signin-refused");

  const brief = await server.createToken("brief", "--subscribe", "brief.>", "--ttl", "2s");
  await signIn(page, brief);
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  await page.locator("#conn").getByText("Connected").waitFor();
  await page.getByText("Your token expired: sign in again").waitFor({ timeout: 10_000 });
  await field.waitFor();
  assert.equal(await page.locator("#nav").isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "the expired token is still kept");
  clean(page);
});

test("/ and the console's files carry the Content-Security-Policy and nosniff", async () => {
  for (const p of ["/", "/console/app.js", "/console/console.css", "/console/dom.js"]) {
    const res = await fetch(server.base + p);
    assert.equal(res.status, 200, p);
    assert.equal(res.headers.get("content-security-policy"), wantCSP, p);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", p);
  }
  const html = await (await fetch(server.base + "/")).text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, "an inline script");
  assert.doesNotMatch(html, /\sstyle=/i, "an inline style");
});

// prefixProxy forwards /realtime/* to the server with the prefix
// stripped, HTTP and WebSocket upgrades alike, keeping the Host header
// as reverse proxies commonly do.
async function prefixProxy(prefix) {
  const strip = (url) => (url.startsWith(prefix) ? "/" + url.slice(prefix.length) : null);
  const proxy = http.createServer((req, res) => {
    const target = strip(req.url);
    if (target === null) {
      res.writeHead(404).end("not under the prefix");
      return;
    }
    const up = http.request({ host: server.host, port: server.port, method: req.method, path: target, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  proxy.on("upgrade", (req, socket, head) => {
    const target = strip(req.url);
    if (target === null) return socket.destroy();
    const up = net.connect(server.port, server.host, () => {
      let lines = `${req.method} ${target} HTTP/${req.httpVersion}\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(lines + "\r\n");
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return { base: `http://127.0.0.1:${proxy.address().port}`, close: () => { proxy.closeAllConnections(); proxy.close(); } };
}

test("behind a proxy under /realtime/, the console calls and subscribes through the prefix", async (t) => {
  const proxy = await prefixProxy("/realtime/");
  t.after(() => proxy.close());
  const page = await openConsole(t, { url: `${proxy.base}/realtime/` });
  await signIn(page);
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  const info = await rpc("serverInfo");
  await page.waitForFunction((v) => document.querySelector(".info-version")?.textContent === v, info.version);

  await openChannel(page, "prefix.a");
  await rpc("channelPublish", { channel: "prefix.a", data: { via: "proxy" } });
  await page.locator('.live .pub[data-offset="1"]').waitFor();
  assert.deepEqual(JSON.parse(await page.locator(".live .pub-data").textContent()), { via: "proxy" });
  // Every address the page used, without the token the socket's carries.
  const used = page.requests.filter((u) => !u.startsWith("data:")).map((u) => {
    const url = new URL(u);
    return `${url.protocol}//${url.host}${url.pathname}`;
  });
  const host = new URL(proxy.base).host;
  assert.deepEqual(used.filter((u) => !u.replace(/^(http|ws):/, "").startsWith(`//${host}/realtime/`)), [], "requests outside the prefix");
  for (const want of [`http://${host}/realtime/console/app.js`, `http://${host}/realtime/sdk/switchboard.js`, `http://${host}/realtime/rpc`, `ws://${host}/realtime/rpc`]) {
    assert.ok(used.includes(want), `no request to ${want}: ${used.join(" ")}`);
  }
  clean(page);
});

test("at 375px wide no view scrolls sideways, and the keyboard alone signs in and moves between views", async (t) => {
  const channel = "narrow.a";
  await rpc("channelPublish", { channel, data: { long: "x".repeat(400), nested: { deeper: { deepest: ["a", "b", { k: "y".repeat(120) }] } } } });
  const page = await openConsole(t, { width: 375, height: 800 });
  await page.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();

  // From the view's heading, Tab reaches the field; Enter submits.
  let tabs = 0;
  while (!(await page.evaluate(() => document.activeElement?.id && document.querySelector(`label[for="${document.activeElement.id}"]`)?.textContent === "Access token"))) {
    assert.ok(++tabs <= 5, "Tab did not reach the Access token field");
    await page.keyboard.press("Tab");
  }
  await page.keyboard.type(server.token);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();

  // The nav by keyboard: Tab from the top of the page to Channels, Enter,
  // and the focus lands on the new view's heading.
  await page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.blur());
  for (tabs = 0; !(await page.evaluate(() => document.activeElement?.textContent === "Channels")); tabs++) {
    assert.ok(tabs <= 5, "Tab did not reach the Channels link");
    await page.keyboard.press("Tab");
  }
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { level: 1, name: "Channels" }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.tagName + " " + document.activeElement?.textContent), "H1 Channels");

  const widths = {};
  for (const hash of ["#/", "#/channels", `#/channels/${channel}`, "#/methods", "#/session"]) {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.waitForTimeout(hash.startsWith("#/channels/") ? 0 : 500);
    if (hash.startsWith("#/channels/")) {
      await page.locator(".history .pub").waitFor();
      await shot(page, "channel-375");
    }
    widths[hash] = await page.evaluate(() => document.documentElement.scrollWidth);
  }
  for (const [hash, w] of Object.entries(widths)) assert.ok(w <= 375, `${hash} is ${w}px wide`);
  clean(page);
});
