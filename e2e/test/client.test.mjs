// The TypeScript client in Chromium, loaded from the server's
// /sdk/switchboard.js as a dashboard on the server's origin loads it:
// typed calls and errors, a subscription through SIGKILL restarts, token
// expiry, shared subscriptions, close(), reconnecting when back online or
// visible, the README's browser blocks run
// as written, and a page whose Content-Security-Policy forbids eval.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Switchboard } from "../../web/client/dist/switchboard.js";
import { startServer } from "../../sdk/test/server.mjs";
import { readmeBlock } from "../../sdk/test/readme.mjs";
import { until } from "../../sdk/test/until.mjs";
import { launchBrowser } from "./browser.mjs";


let server, browser, admin;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  // Node's side: publishes and reads presence, on ws's WebSocket.
  admin = new Switchboard({ url: server.base, token: server.token, WebSocket, reconnect: { minDelayMs: 20, maxDelayMs: 200 } });
});

after(async () => {
  admin?.close();
  await browser?.close();
  await server?.stop();
});

// openPage opens a page of the server's origin (its /healthz unless told
// otherwise, after the routes are set up), closed when the test ends.
async function openPage(t, { path = "/healthz", routes = {} } = {}) {
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  t.after(() => page.close());
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(err));
  page.consoleErrors = [];
  page.on("console", (msg) => { if (msg.type() === "error") page.consoleErrors.push(msg.text()); });
  for (const [p, handler] of Object.entries(routes)) await page.route(server.base + p, handler);
  // A document that page.route fulfils has no IP address, so Chromium's
  // Local Network Access checks take it for a public one and block its
  // WebSocket to 127.0.0.1 (ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS).
  // Served by the server itself it would be loopback, like its server:
  // the permission puts it back there.
  if (routes[path]) await page.context().grantPermissions(["local-network-access"], { origin: server.base });
  await page.goto(server.base + path);
  return page;
}


const members = async (channel) => (await admin.channelPresence({ channel })).members;

async function publish(channel, n, make = (i) => ({ i })) {
  let last;
  for (let i = 0; i < n; i++) last = await admin.channelPublish({ channel, data: make(i) });
  return last;
}


// The page's collection of a subscription, started in the page: each
// publication's offset and data go to window.got.
function collect(channel) {
  const sub = window.sb.subscribe(channel);
  window.sub = sub;
  window.got = [];
  (async () => { for await (const p of sub) window.got.push({ offset: p.offset, data: p.data }); })()
    .catch((err) => { window.got.push({ error: String(err) }); });
  return sub.ready;
}

test("typed calls by name from the page's own server, and a Forbidden SwitchboardError", async (t) => {
  const reader = await server.createToken("reader", "--subscribe", "calls.>", "--ttl", "1h");
  const page = await openPage(t);
  const r = await page.evaluate(async ({ token, reader }) => {
    const { Switchboard, SwitchboardError, ErrorCode } = await import("/sdk/switchboard.js");
    const sb = new Switchboard({ token });
    const limited = new Switchboard({ token: reader });
    try {
      const ping = await sb.serverPing();
      const published = await sb.channelPublish({ channel: "calls.a", data: { text: "from the page" } });
      const me = await sb.sessionWhoami();
      const them = await limited.sessionWhoami();
      let refused;
      try {
        await limited.channelPublish({ channel: "calls.a", data: { text: "refused" } });
      } catch (err) {
        refused = { isSwitchboardError: err instanceof SwitchboardError, forbidden: err.code === ErrorCode.Forbidden, code: err.code, name: err.name, message: err.message };
      }
      return { url: sb.url, ping, published, me, them, refused };
    } finally {
      sb.close();
      limited.close();
    }
  }, { token: server.token, reader });

  assert.equal(r.url, `ws://${server.host}:${server.port}/rpc`);
  assert.ok(Math.abs(Date.parse(r.ping.time) - Date.now()) < 60_000, `ping time ${r.ping.time}`);
  assert.equal(r.published.channel, "calls.a");
  assert.equal(r.published.offset, 1);
  assert.equal(r.me.user, "admin");
  assert.equal(r.me.transport, "websocket");
  assert.equal(r.me.permissions.admin, true);
  assert.equal(r.them.user, "reader");
  assert.deepEqual(r.them.permissions.publish, []);
  assert.ok(r.refused, "the reader's publish was not refused");
  assert.equal(r.refused.isSwitchboardError, true, JSON.stringify(r.refused));
  assert.equal(r.refused.forbidden, true, JSON.stringify(r.refused));
  assert.equal(r.refused.code, -32003);
  assert.equal(r.refused.name, "SwitchboardError");
  const h = await admin.channelHistory({ channel: "calls.a" });
  assert.deepEqual(h.publications.map((p) => [p.offset, p.publisher, p.data]), [[1, "admin", { text: "from the page" }]]);
});

test("a subscription in the page goes on through two SIGKILL restarts, 1..N once each, in order", async (t) => {
  const page = await openPage(t);
  await page.evaluate(async (token) => {
    const { Switchboard } = await import("/sdk/switchboard.js");
    window.sb = new Switchboard({ token });
    window.disconnects = [];
    window.sb.on("disconnected", (e) => window.disconnects.push(e.code));
  }, server.token);
  await page.evaluate(collect, "restart.b");

  // Each round is published while the page may still be reconnecting
  // (Node's client reconnects first), and taken before the next kill.
  for (const round of [0, 1, 2]) {
    if (round > 0) await server.restart("SIGKILL");
    await publish("restart.b", 5, (i) => ({ i, round })); // waits for Node's reconnect
    await page.waitForFunction((n) => window.got.length >= n, 5 * (round + 1), { timeout: 20_000 });
  }
  // One more after the page has taken the first 15: nothing may come twice before it.
  const last = await publish("restart.b", 1, () => ({ i: 5, round: 2 }));
  await page.waitForFunction((n) => window.got.some((p) => p.offset === n || p.error), last.offset);

  const r = await page.evaluate(() => ({ got: window.got, position: window.sub.position, disconnects: window.disconnects, state: window.sb.state }));
  await page.evaluate(() => window.sb.close());
  assert.deepEqual(r.got.map((p) => p.offset), Array.from({ length: 16 }, (_, i) => i + 1));
  assert.deepEqual(r.got.map((p) => `${p.data.round}.${p.data.i}`),
    [0, 1, 2].flatMap((round) => [0, 1, 2, 3, 4].map((i) => `${round}.${i}`)).concat("2.5"));
  assert.deepEqual(r.position, { offset: 16, epoch: last.epoch });
  assert.ok(r.disconnects.length >= 2, `the page saw disconnects ${r.disconnects}`);
  assert.equal(r.state, "connected");
  assert.deepEqual(page.errors, []);
});

test("an expiring token: the page fetches a fresh one and refreshes it, on one connection, and its subscription goes on", async (t) => {
  let hits = 0;
  const page = await openPage(t, {
    routes: {
      "/token": async (route) => {
        hits++;
        const token = await server.createToken("expiring", "--publish", "tok.>", "--subscribe", "tok.>", "--ttl", "2s");
        await route.fulfill({ status: 200, contentType: "text/plain", body: token });
      },
    },
  });
  const first = await page.evaluate(async () => {
    const { Switchboard } = await import("/sdk/switchboard.js");
    window.sb = new Switchboard({ token: () => fetch("/token").then((r) => r.text()) });
    window.closes = [];
    window.sb.on("disconnected", (e) => window.closes.push(e.code));
    return window.sb.sessionWhoami();
  });
  await page.evaluate(collect, "tok.b");
  await publish("tok.b", 1);
  await page.waitForFunction(() => window.got.length >= 1);

  // Past the first token's expiry, and the next one's.
  await until(() => hits >= 3 && Date.now() > Date.parse(first.expiresAt) + 2000, "two refreshes", 10_000);
  await publish("tok.b", 2);
  await page.waitForFunction(() => window.got.length >= 3);
  const r = await page.evaluate(async () => ({ got: window.got, closes: window.closes, me: await window.sb.sessionWhoami() }));
  await page.evaluate(() => window.sb.close());
  assert.deepEqual(r.got.map((p) => p.offset), [1, 2, 3]);
  assert.deepEqual(r.closes, []);
  assert.equal(r.me.user, "expiring");
  assert.equal(r.me.connectionId, first.connectionId);
  assert.ok(Date.parse(r.me.expiresAt) > Date.parse(first.expiresAt) + 1000, `the token expires at ${r.me.expiresAt}`);
});

test("two subscriptions of one channel in the page share one on the server, which ends with the last", async (t) => {
  const page = await openPage(t);
  const who = await page.evaluate(async (token) => {
    const { Switchboard } = await import("/sdk/switchboard.js");
    const sb = window.sb = new Switchboard({ token });
    window.a = sb.subscribe("share.b");
    window.b = sb.subscribe("share.b");
    window.gotA = [];
    window.gotB = [];
    (async () => { for await (const p of window.a) window.gotA.push(p.offset); })();
    (async () => { for await (const p of window.b) window.gotB.push(p.offset); })();
    await Promise.all([window.a.ready, window.b.ready]);
    return sb.sessionWhoami();
  }, server.token);
  const m = await members("share.b");
  assert.deepEqual(m.map((x) => x.connectionId), [who.connectionId]);

  await publish("share.b", 1);
  await page.waitForFunction(() => window.gotA.length === 1 && window.gotB.length === 1);
  await page.evaluate(() => window.a.unsubscribe());
  await publish("share.b", 1);
  // b still receives after a has gone: the server's subscription is still there.
  await page.waitForFunction(() => window.gotB.length === 2);
  assert.equal((await members("share.b")).length, 1);
  await page.evaluate(() => window.b.unsubscribe());
  await until(async () => (await members("share.b")).length === 0, "presence to show 0 members");
  const r = await page.evaluate(async () => ({ a: window.gotA, b: window.gotB, aDone: (await window.a.next()).done, state: window.sb.state }));
  await page.evaluate(() => window.sb.close());
  assert.deepEqual(r, { a: [1], b: [1, 2], aDone: true, state: "connected" });
});

test("sb.close() in the page: state closed, calls refused, and the server's subscription ends", async (t) => {
  const page = await openPage(t);
  const who = await page.evaluate(async (token) => {
    const { Switchboard } = await import("/sdk/switchboard.js");
    window.sb = new Switchboard({ token });
    window.sub = window.sb.subscribe("close.b");
    await window.sub.ready;
    return window.sb.sessionWhoami();
  }, server.token);
  assert.deepEqual((await members("close.b")).map((x) => x.connectionId), [who.connectionId]);

  const r = await page.evaluate(async () => {
    const before = window.sb.state;
    const ended = window.sub.next();
    window.sb.close();
    const call = await window.sb.serverPing().then(() => "answered", (err) => err.name);
    return { before, after: window.sb.state, ended: (await ended).done, call };
  });
  assert.deepEqual(r, { before: "connected", after: "closed", ended: true, call: "ClosedError" });
  await until(async () => (await members("close.b")).length === 0, "presence to show 0 members");
});

test("back online, or visible again, the page reconnects at once instead of waiting out its backoff", async (t) => {
  const page = await openPage(t);
  await page.evaluate(async (token) => {
    const { Switchboard } = await import("/sdk/switchboard.js");
    Math.random = () => 0.999; // full jitter at its longest: a minute
    window.sb = new Switchboard({ token, reconnect: { minDelayMs: 60_000, maxDelayMs: 60_000 } });
    await window.sb.serverPing();
  }, server.token);
  for (const [target, type] of [["window", "online"], ["document", "visibilitychange"]]) {
    await server.restart("SIGKILL");
    await page.waitForFunction(() => window.sb.state === "waiting");
    const ms = await page.evaluate(async ([target, type]) => {
      const t0 = performance.now();
      const connected = new Promise((resolve) => window.sb.on("connected", resolve));
      (target === "window" ? window : document).dispatchEvent(new Event(type));
      await connected;
      await window.sb.serverPing();
      return performance.now() - t0;
    }, [target, type]);
    assert.ok(ms < 5000, `${type}: reconnected after ${ms} ms`);
  }
});

test("README: the browser console block runs as written in a page of the server", async (t) => {
  const code = readmeBlock("readme-browser-console");
  const src = code.replace("PASTE A TOKEN HERE", server.token);
  assert.notEqual(src, code, "the block has no PASTE A TOKEN HERE to replace");
  const page = await openPage(t);
  const logged = [];
  page.on("console", (msg) => { logged.push(Promise.all(msg.args().map((a) => a.jsonValue()))); });
  // What the console does with top-level await: run it as an async function's body.
  await page.evaluate(`(async () => {\n${src}\n})()`);
  const hello = await until(async () => (await Promise.all(logged)).find((args) => typeof args[0] === "number"), "the publication to be logged");
  assert.deepEqual(hello, [1, "admin", { text: "hello" }]);
  const h = await admin.channelHistory({ channel: "chat.lobby" });
  assert.deepEqual(h.publications.map((p) => [p.offset, p.data]), [[1, { text: "hello" }]]);
  assert.deepEqual(page.errors, []);
});

test("README: the web page block lists publications, and after a reload only the new ones", async (t) => {
  const html = readmeBlock("readme-browser-page");
  assert.match(html, /import \{ Switchboard \} from "\/sdk\/switchboard.js"/);
  const token = await server.createToken("carol", "--subscribe", "chat.>", "--ttl", "1h");
  const bob = await server.createToken("bob", "--publish", "chat.>", "--ttl", "1h");
  const pub = new Switchboard({ url: server.base, token: bob, WebSocket });
  t.after(() => pub.close());
  let tokenHits = 0;
  let gate = null; // while set, the token route waits for it
  const page = await openPage(t, {
    path: "/chat.html",
    routes: {
      "/chat.html": (route) => route.fulfill({ status: 200, contentType: "text/html", body: html }),
      "/token": async (route) => {
        tokenHits++;
        await gate;
        await route.fulfill({ status: 200, contentType: "text/plain", body: token });
      },
    },
  });
  const carolSubscribed = async () => (await members("chat.lobby")).filter((m) => m.user === "carol").length === 1;
  const items = () => page.$$eval("#log li", (lis) => lis.map((li) => li.textContent));
  const send = async (...texts) => {
    let last;
    for (const text of texts) last = await pub.channelPublish({ channel: "chat.lobby", data: { text } });
    return last;
  };

  await until(carolSubscribed, "the page to subscribe to chat.lobby");
  const third = await send("m1", "m2", "m3");
  await page.waitForFunction(() => document.querySelectorAll("#log li").length >= 3);
  assert.deepEqual(await items(), ["bob: m1", "bob: m2", "bob: m3"]);
  const saved = await page.evaluate(() => JSON.parse(localStorage.getItem("chat.lobby")));
  assert.deepEqual(saved, { offset: third.offset, epoch: third.epoch });

  // The reloaded page gets no token, so cannot subscribe, until m4 and m5
  // are published: only its saved position can bring them.
  let open;
  gate = new Promise((resolve) => { open = resolve; });
  const hitsBefore = tokenHits;
  await page.reload();
  await send("m4", "m5");
  await until(() => tokenHits > hitsBefore, "the reloaded page to ask for a token");
  assert.deepEqual(await items(), []);
  open();
  await page.waitForFunction(() => document.querySelectorAll("#log li").length >= 2);
  assert.deepEqual(await items(), ["bob: m4", "bob: m5"]);
  assert.deepEqual(page.errors, []);
});

test("a page with Content-Security-Policy script-src 'self' loads the client and calls", async (t) => {
  const csp = "script-src 'self'";
  const js = (body) => (route) => route.fulfill({ status: 200, contentType: "text/javascript", body });
  const page = await openPage(t, {
    path: "/csp.html",
    routes: {
      "/csp.html": (route) => route.fulfill({
        status: 200,
        headers: { "content-type": "text/html", "content-security-policy": csp },
        // The inline script is the control: the policy must block it, and the listener must report it.
        body: `<!doctype html><title>csp</title><script src="/listen.js"></script>
<script>window.inlineRan = true;</script>
<script type="module" src="/app.js"></script>`,
      }),
      "/listen.js": js(`window.violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.violations.push({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile }));`),
      "/app.js": js(`import { Switchboard } from "/sdk/switchboard.js";
const sb = new Switchboard({ token: ${JSON.stringify(server.token)} });
try {
  const sub = sb.subscribe("csp.a");
  await sub.ready;
  const published = await sb.channelPublish({ channel: "csp.a", data: { text: "strict" } });
  const { value } = await sub.next();
  window.result = { ping: await sb.serverPing(), published, received: value.data, me: await sb.sessionWhoami() };
} catch (err) {
  window.result = { error: String(err) };
} finally {
  sb.close();
}`),
    },
  });
  await page.waitForFunction(() => window.result);
  const r = await page.evaluate(() => ({ result: window.result, violations: window.violations, inlineRan: window.inlineRan ?? false }));
  assert.equal(r.result.error, undefined, r.result.error);
  assert.ok(Math.abs(Date.parse(r.result.ping.time) - Date.now()) < 60_000);
  assert.equal(r.result.published.offset, 1);
  assert.deepEqual(r.result.received, { text: "strict" });
  assert.equal(r.result.me.user, "admin");
  // The policy was in force: the inline script was blocked and reported ...
  assert.equal(r.inlineRan, false);
  assert.equal(r.violations.filter((v) => v.blocked === "inline").length, 1, JSON.stringify(r.violations));
  // ... and nothing else was: no eval, no other script.
  assert.deepEqual(r.violations.filter((v) => v.blocked !== "inline"), []);
  assert.equal(page.consoleErrors.length, 1, page.consoleErrors.join("\n"));
  assert.match(page.consoleErrors[0], /inline script/);
  assert.deepEqual(page.errors, []);
});
