// Typed calls by name, the untyped form, errors with their codes, URL
// forms, timeouts and cancellation, against the real binary.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Switchboard, SwitchboardError, ErrorCode, TimeoutError, ClosedError, ConnectionError, socketURL } from "../dist/switchboard.js";
import { startProxy } from "./proxy.mjs";
import { client, startServer, until } from "./support.mjs";

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

test("typed methods take their params by name and return their results", async () => {
  const sb = client(server.base, server.token);
  try {
    const ping = await sb.serverPing();
    assert.ok(!Number.isNaN(Date.parse(ping.time)), `time ${ping.time}`);
    const me = await sb.sessionWhoami();
    assert.equal(me.user, "admin");
    assert.equal(me.transport, "websocket");
    const pub = await sb.channelPublish({ channel: "calls.typed", data: { text: "hi" } });
    assert.equal(pub.channel, "calls.typed");
    assert.equal(pub.offset, 1);
    assert.equal(pub.duplicate, false);
    const again = await sb.channelPublish({ channel: "calls.typed", data: { text: "hi" }, idempotencyKey: "k1" });
    const dup = await sb.channelPublish({ channel: "calls.typed", data: { text: "other" }, idempotencyKey: "k1" });
    assert.equal(dup.duplicate, true);
    assert.equal(dup.offset, again.offset);
    const page = await sb.channelHistory({ channel: "calls.typed", limit: 10 });
    assert.deepEqual(page.publications.map((p) => p.data), [{ text: "hi" }, { text: "hi" }]);
    assert.equal(page.epoch, pub.epoch);
    const untyped = await sb.call("channelList", { prefix: "calls." });
    assert.deepEqual(untyped.channels.map((c) => c.channel), ["calls.typed"]);
  } finally {
    sb.close();
  }
});

test("a server error rejects with a SwitchboardError carrying code, message and data", async () => {
  const token = await server.createToken("reader", "--subscribe", "calls.>");
  const sb = client(server.base, token);
  try {
    await assert.rejects(sb.channelPublish({ channel: "calls.x", data: 1 }), (err) => {
      assert.ok(err instanceof SwitchboardError);
      assert.equal(err.code, ErrorCode.Forbidden);
      assert.match(err.message, /publish/);
      return true;
    });
    await assert.rejects(sb.call("noSuchMethod", {}), (err) => err instanceof SwitchboardError && err.code === ErrorCode.MethodNotFound);
    await assert.rejects(sb.call("channelHistory", { channel: "calls.x", limit: "ten" }),
      (err) => err instanceof SwitchboardError && err.code === ErrorCode.InvalidParams && /limit/.test(err.message));
    // The connection is still good.
    assert.equal((await sb.sessionWhoami()).user, "reader");
  } finally {
    sb.close();
  }
});

test("the error codes are the contract's", async () => {
  const doc = await (await fetch(`${server.base}/openrpc.json`)).json();
  const named = Object.fromEntries(Object.entries(doc.components.errors).map(([name, e]) => [name, e.code]));
  assert.deepEqual({ ...ErrorCode }, named);
});

test("the URL takes the CLI's forms", () => {
  const { host, port } = server;
  for (const [given, want] of [
    [`http://${host}:${port}`, `ws://${host}:${port}/rpc`],
    [`ws://${host}:${port}/rpc`, `ws://${host}:${port}/rpc`],
    [`https://example.com/`, `wss://example.com/rpc`],
    [`wss://example.com/switchboard`, `wss://example.com/switchboard/rpc`],
    [`${host}:${port}`, `ws://${host}:${port}/rpc`],
  ]) assert.equal(socketURL(given), want, given);
  assert.throws(() => socketURL("ftp://example.com"), /scheme/);
  assert.throws(() => socketURL(), /url is required outside a browser/);
});

test("each URL form reaches the server", async () => {
  for (const url of [server.base, `${server.host}:${server.port}`, `ws://${server.host}:${server.port}/rpc`, `${server.base}/rpc/`]) {
    const sb = client(url, server.token);
    try {
      assert.equal((await sb.sessionWhoami()).user, "admin", url);
    } finally {
      sb.close();
    }
  }
});

test("a call waits for the connection, and is bounded by its timeout", async () => {
  // Nothing listens on the proxy's port once it is closed: connecting fails
  // again and again, and the call times out.
  const sb = client("127.0.0.1:1", server.token);
  try {
    const t0 = Date.now();
    await assert.rejects(sb.serverPing(undefined, { timeoutMs: 300 }), TimeoutError);
    assert.ok(Date.now() - t0 >= 290, "rejected before its timeout");
    assert.notEqual(sb.state, "connected");
  } finally {
    sb.close();
  }
});

test("an AbortSignal cancels a call", async () => {
  const sb = client("127.0.0.1:1", server.token);
  try {
    const ctl = new AbortController();
    const call = sb.serverInfo(undefined, { signal: ctl.signal });
    ctl.abort(new Error("not wanted"));
    await assert.rejects(call, /not wanted/);
    await assert.rejects(sb.serverInfo(undefined, { signal: AbortSignal.abort() }), { name: "AbortError" });
  } finally {
    sb.close();
  }
});

test("close rejects what waits and refuses what comes after", async () => {
  const sb = client("127.0.0.1:1", server.token);
  const waiting = sb.serverPing();
  sb.close();
  await assert.rejects(waiting, ClosedError);
  await assert.rejects(sb.serverPing(), ClosedError);
  assert.throws(() => sb.subscribe("calls.x"), ClosedError);
});

test("the token function is called for each connection attempt", async () => {
  let calls = 0;
  const sb = new Switchboard({ url: server.base, WebSocket, token: async () => { calls++; return server.token; } });
  try {
    await sb.serverPing();
    assert.equal(calls, 1);
  } finally {
    sb.close();
  }
});

test("the client says how its connection goes, gives up after maxAttempts, and starts again on a call", async () => {
  const proxy = await startProxy(server.port);
  proxy.pause();
  const sb = client(proxy.url, server.token, { reconnect: { minDelayMs: 10, maxDelayMs: 40, maxAttempts: 3 } });
  const seen = [];
  for (const type of ["connecting", "connected", "disconnected", "failed"]) sb.on(type, (e) => seen.push(`${type} ${JSON.stringify(e)}`));
  try {
    const sub = sb.subscribe("lifecycle.a");
    const call = sb.serverPing();
    const failed = new Promise((resolve) => sb.on("failed", resolve));
    await assert.rejects(call, ConnectionError);
    assert.deepEqual(await failed, { attempts: 3 });
    await assert.rejects(sub.ready, ConnectionError);
    await assert.rejects(sub.next(), ConnectionError);
    assert.equal(sb.state, "idle");
    assert.deepEqual(seen.filter((s) => s.startsWith("connecting")), [1, 2, 3].map((n) => `connecting {"attempt":${n}}`));
    assert.equal(seen.filter((s) => s.startsWith("disconnected")).length, 3);

    proxy.resume();
    assert.equal((await sb.sessionWhoami()).user, "admin");
    assert.equal(sb.state, "connected");
    assert.ok(seen.includes(`connected {"url":"${sb.url}"}`), seen.join("\n"));
  } finally {
    sb.close();
    await proxy.close();
  }
});

test("reconnectNow skips the backoff", async () => {
  const proxy = await startProxy(server.port);
  const sb = client(proxy.url, server.token, { reconnect: { minDelayMs: 60_000, maxDelayMs: 60_000 } });
  try {
    await sb.serverPing();
    proxy.cut();
    await until(() => sb.state === "waiting", "the client to wait out its backoff");
    const t0 = Date.now();
    sb.reconnectNow();
    await sb.serverPing();
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    sb.close();
    await proxy.close();
  }
});

test("a token function that never settles fails the attempt within timeoutMs, and the next attempt goes on", async () => {
  let calls = 0;
  const sb = client(server.base, () => (++calls === 1 ? new Promise(() => {}) : server.token), { timeoutMs: 300 });
  const closes = [];
  sb.on("disconnected", (e) => closes.push(e.reason));
  try {
    assert.equal((await sb.sessionWhoami(undefined, { timeoutMs: 5000 })).user, "admin");
    assert.deepEqual(closes, ["connecting took too long"]);
    assert.equal(calls, 2);
  } finally {
    sb.close();
  }
});
