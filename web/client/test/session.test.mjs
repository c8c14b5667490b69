// The connection's token against the real binary: a token function's
// fresh tokens keep one connection (sessionExpiring, sessionRefresh),
// 4001 and a reconnect when a refresh fails, subscriptions a narrower
// token ends, and 4003, after which the client does not reconnect.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ClosedError, ConnectionError, ErrorCode, SwitchboardError } from "../dist/switchboard.js";
import { client, offsets, range, startServer, take, until } from "./support.mjs";

let server, admin;
before(async () => {
  server = await startServer();
  admin = client(server.base, server.token);
});
after(async () => {
  admin?.close();
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// within rejects if promise has not settled in ms.
function within(promise, what, ms = 8000) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} in ${ms} ms`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
// expiry is a token's exp, in ms.
const expiry = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url")).exp * 1000;

// watch records the client's connection events as strings.
function watch(sb) {
  const seen = [];
  for (const type of ["connecting", "disconnected", "failed"]) sb.on(type, (e) => seen.push(`${type} ${JSON.stringify(e)}`));
  return seen;
}

test("a token function keeps one connection through three token expiries, and the subscription misses nothing", async () => {
  const tokens = [];
  // 3 s tokens: the server's notice (1 m by default) comes halfway through each.
  const sb = client(server.base, async () => {
    const t = await server.createToken("keeper", "--subscribe", "keep.>", "--ttl", "3s");
    tokens.push(t);
    return t;
  });
  const seen = watch(sb);
  try {
    const sub = sb.subscribe("keep.a");
    await sub.ready;
    const first = await sb.sessionWhoami();
    // Publish all along, until the third token has expired too.
    let n = 0;
    const deadline = Date.now() + 20_000;
    while (!(tokens.length >= 3 && Date.now() > expiry(tokens[2]))) {
      assert.ok(Date.now() < deadline, `after 20 s, ${tokens.length} tokens`);
      await admin.channelPublish({ channel: "keep.a", data: ++n });
      await sleep(25);
    }
    const got = await take(sub, n);
    assert.equal(offsets(got), range(1, n));
    assert.deepEqual(got.map((p) => p.data), Array.from({ length: n }, (_, i) => i + 1));
    // Nothing twice: the next one yielded is the next one published.
    await admin.channelPublish({ channel: "keep.a", data: "last" });
    assert.deepEqual((await take(sub, 1)).map((p) => [p.offset, p.data]), [[n + 1, "last"]]);

    const now = await sb.sessionWhoami();
    assert.equal(now.connectionId, first.connectionId, "the connection changed");
    assert.ok(Date.parse(now.expiresAt) > expiry(tokens[2]), `the connection's token expires at ${now.expiresAt}`);
    assert.ok(tokens.length >= 4, `the token function was called ${tokens.length} times`);
    assert.deepEqual(seen, ['connecting {"attempt":1}']);
    assert.equal(sb.state, "connected");
  } finally {
    sb.close();
  }
});

for (const [what, failing] of [
  ["the token function fails at a refresh", () => Promise.reject(new Error("the identity provider is down"))],
  ["the server refuses the refreshed token", () => server.createToken("someone-else", "--subscribe", "tok.>", "--ttl", "1h")],
]) {
  test(`when ${what}, the server's 4001 and a reconnect take over, and the subscription goes on`, async () => {
    // The state the client is in at each call: connecting for a
    // connection, connected for a refresh.
    const calls = [];
    const sb = client(server.base, () => (calls.push(sb.state) === 2
      ? failing()
      : server.createToken("expiring", "--subscribe", "tok.>", "--ttl", "2s")));
    const closes = [];
    sb.on("disconnected", (e) => closes.push(e.code));
    try {
      const sub = sb.subscribe("tok.a");
      await sub.ready;
      const first = await sb.sessionWhoami();
      const p1 = await admin.channelPublish({ channel: "tok.a", data: 1 });
      assert.equal(offsets(await take(sub, 1)), `${p1.offset}`);
      await until(() => closes.includes(4001), "the server to close with 4001", 5000);
      await until(() => sb.state === "connected", "the client to reconnect");
      assert.deepEqual(calls, ["connecting", "connected", "connecting"], "the token function: connect, refresh, reconnect");
      await admin.channelPublish({ channel: "tok.a", data: 2 });
      await admin.channelPublish({ channel: "tok.a", data: 3 });
      assert.equal(offsets(await take(sub, 2)), `${p1.offset + 1},${p1.offset + 2}`);
      const now = await sb.sessionWhoami();
      assert.equal(now.user, "expiring");
      assert.notEqual(now.connectionId, first.connectionId);
    } finally {
      sb.close();
    }
  });
}

test("a refreshed token that no longer allows a channel ends its subscription; the others go on", async () => {
  let calls = 0;
  const sb = client(server.base, () => server.createToken("narrowed", "--subscribe", ++calls === 1 ? "perm.>" : "perm.kept", "--ttl", "3s"));
  const seen = watch(sb);
  try {
    const gone = sb.subscribe("perm.gone");
    const kept = sb.subscribe("perm.kept");
    await Promise.all([gone.ready, kept.ready]);
    const unsubscribed = new Promise((resolve) => gone.on("unsubscribed", resolve));
    await admin.channelPublish({ channel: "perm.gone", data: 1 });
    assert.equal(offsets(await take(gone, 1)), "1");
    assert.deepEqual(await within(unsubscribed, "channelUnsubscribed"), { channel: "perm.gone", reason: "permission" });
    await assert.rejects(gone.next(), (err) => err instanceof SwitchboardError && err.code === ErrorCode.Forbidden);
    await admin.channelPublish({ channel: "perm.kept", data: 1 });
    assert.equal(offsets(await take(kept, 1)), "1");
    assert.deepEqual((await sb.sessionWhoami()).permissions.subscribe, ["perm.kept"]);
    assert.deepEqual(seen, ['connecting {"attempt":1}']);
  } finally {
    sb.close();
  }
});

for (const [method, params, reason] of [
  ["adminDisconnect", { user: "mallory", reason: "account suspended" }, "account suspended"],
  ["adminRevoke", { user: "trudy", until: new Date(Date.now() + 3_600_000).toISOString() }, "revoked by an admin"],
]) {
  test(`4003 (${method}) ends the client with the reason, and it does not reconnect`, async () => {
    let calls = 0;
    const sb = client(server.base, () => {
      calls++;
      return server.createToken(params.user, "--subscribe", "cut.>", "--ttl", "1h");
    });
    const seen = watch(sb);
    try {
      const sub = sb.subscribe(`cut.${params.user}`);
      await sub.ready;
      const disconnected = new Promise((resolve) => sb.on("disconnected", resolve));
      assert.equal((await admin.call(method, params)).connections, 1);
      assert.deepEqual(await within(disconnected, "disconnect"), { code: 4003, reason });
      assert.equal(sb.state, "closed");
      await assert.rejects(sub.next(), (err) => err instanceof ConnectionError && err.code === 4003 && err.reason === reason);
      await assert.rejects(sb.serverPing(), ClosedError);
      assert.throws(() => sb.subscribe("cut.again"), ClosedError);
      sb.reconnectNow();
      await sleep(300);
      assert.equal(calls, 1, "the token function was called again");
      assert.deepEqual(seen, ['connecting {"attempt":1}', `disconnected {"code":4003,"reason":"${reason}"}`]);
      assert.equal((await admin.channelPresence({ channel: `cut.${params.user}` })).members.length, 0);
    } finally {
      sb.close();
    }
  });
}
