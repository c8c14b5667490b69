// Subscriptions against the real binary: each publication once, in order,
// through SIGKILL restarts, short disconnects, a trimmed history and a
// slow reader (token expiry is in session.test.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { LostError } from "../dist/switchboard.js";
import { startProxy } from "./proxy.mjs";
import { client, offsets, range, startServer, take, until } from "./support.mjs";

let server;
before(async () => { server = await startServer("--history-size", "20"); });
after(async () => { await server?.stop(); });

async function publish(sb, channel, n, tag = "") {
  let last;
  for (let i = 0; i < n; i++) last = await sb.channelPublish({ channel, data: { i, tag } });
  return last;
}

test("a subscription goes on through SIGKILL restarts and yields 1..N once each", async () => {
  const pub = client(server.base, server.token);
  const sb = client(server.base, server.token);
  const disconnects = [];
  sb.on("disconnected", (e) => disconnects.push(e.code));
  try {
    const sub = sb.subscribe("restart.a");
    await sub.ready;
    const reading = take(sub, 15, 20_000);
    await publish(pub, "restart.a", 5);
    await server.restart("SIGKILL");
    await publish(pub, "restart.a", 5); // waits for the reconnect
    await server.restart("SIGKILL");
    const last = await publish(pub, "restart.a", 5);
    const got = await reading;
    assert.equal(offsets(got), range(1, 15));
    assert.deepEqual(got.map((p) => p.data.i), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    assert.deepEqual(sub.position, { offset: 15, epoch: last.epoch });
    assert.ok(disconnects.length >= 2 && disconnects.every((c) => c === 1006), `disconnects ${disconnects}`);

    // The position is enough to go on from, in another client.
    const later = client(server.base, server.token);
    try {
      const again = later.subscribe("restart.a", { since: { offset: 12, epoch: last.epoch } });
      assert.equal(offsets(await take(again, 3)), "13,14,15");
    } finally {
      later.close();
    }
  } finally {
    sb.close();
    pub.close();
  }
});

test("after a short disconnect the subscription recovers what it missed, and says so", async () => {
  const proxy = await startProxy(server.port);
  const pub = client(server.base, server.token);
  const sb = client(proxy.url, server.token);
  try {
    const sub = sb.subscribe("recover.a");
    const events = [];
    sub.on("subscribed", (e) => events.push(e));
    await sub.ready;
    await publish(pub, "recover.a", 3);
    assert.equal(offsets(await take(sub, 3)), "1,2,3");
    proxy.pause();
    await until(() => sb.state !== "connected", "the client to see the cut");
    await publish(pub, "recover.a", 4);
    proxy.resume();
    sb.reconnectNow();
    assert.equal(offsets(await take(sub, 4)), "4,5,6,7");
    const last = events.at(-1);
    assert.equal(last.recovered, 4);
    assert.equal(last.lost, undefined);
    assert.equal(last.position.offset, 7);
    await publish(pub, "recover.a", 1);
    assert.equal(offsets(await take(sub, 1)), "8");
  } finally {
    sb.close();
    pub.close();
    await proxy.close();
  }
});

test("what the history no longer holds is a LostError, and the subscription goes on after it", async () => {
  const sb = client(server.base, server.token);
  try {
    const first = await publish(sb, "lost.a", 30); // history-size 20 keeps 11..30
    const sub = sb.subscribe("lost.a", { since: { offset: 2, epoch: first.epoch } });
    const events = [];
    sub.on("subscribed", (e) => events.push(e));
    await assert.rejects(sub.next(), (err) => {
      assert.ok(err instanceof LostError, String(err));
      assert.equal(err.channel, "lost.a");
      assert.deepEqual(err.after, { offset: 2, epoch: first.epoch });
      assert.deepEqual(err.resumed, { offset: 10, epoch: first.epoch });
      assert.equal(err.first, 3);
      assert.equal(err.last, 10);
      return true;
    });
    assert.deepEqual(sub.position, { offset: 10, epoch: first.epoch });
    assert.equal(offsets(await take(sub, 20)), range(11, 30));
    assert.equal(events[0].recovered, 20);
    assert.ok(events[0].lost instanceof LostError);

    // With a listener, the loss comes to it in stream order instead.
    const seen = [];
    const sub2 = sb.subscribe("lost.a", { since: { offset: 5, epoch: first.epoch } });
    sub2.on("lost", (e) => seen.push(`lost ${e.first}..${e.last}`));
    for (const p of await take(sub2, 20)) seen.push(p.offset);
    assert.deepEqual(seen, ["lost 6..10", ...Array.from({ length: 20 }, (_, i) => 11 + i)]);
  } finally {
    sb.close();
  }
});

test("a loss during a disconnect is reported when the subscription comes back", async () => {
  const proxy = await startProxy(server.port);
  const pub = client(server.base, server.token);
  const sb = client(proxy.url, server.token);
  try {
    const sub = sb.subscribe("lost.b");
    await sub.ready;
    await publish(pub, "lost.b", 2);
    assert.equal(offsets(await take(sub, 2)), "1,2");
    proxy.pause();
    await until(() => sb.state !== "connected", "the client to see the cut");
    await publish(pub, "lost.b", 25); // 3..27; the history keeps 8..27
    const subscribed = new Promise((resolve) => sub.on("subscribed", resolve));
    proxy.resume();
    sb.reconnectNow();
    const e = await subscribed;
    assert.equal(e.recovered, 20);
    assert.equal(`${e.lost?.first}..${e.lost?.last}`, "3..7");
    await assert.rejects(sub.next(), LostError);
    assert.equal(offsets(await take(sub, 20)), range(8, 27));
  } finally {
    sb.close();
    pub.close();
    await proxy.close();
  }
});

test("a slow reader gets everything, in order, through a small buffer", async () => {
  const sb = client(server.base, server.token);
  const pub = client(server.base, server.token);
  try {
    const sub = sb.subscribe("slow.a", { bufferSize: 4 });
    let subscribes = 0;
    sub.on("subscribed", () => subscribes++);
    await sub.ready;
    await publish(pub, "slow.a", 18); // within the history of 20
    const got = [];
    for (const p of await take(sub, 18)) {
      got.push(p);
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(offsets(got), range(1, 18));
    assert.ok(subscribes > 1, "the overflow should have made it subscribe again");
  } finally {
    sb.close();
    pub.close();
  }
});

test("subscriptions to one channel share one on the server, which ends with the last", async () => {
  const sb = client(server.base, server.token);
  const admin = client(server.base, server.token);
  try {
    const a = sb.subscribe("share.a");
    const b = sb.subscribe("share.a", { joinLeave: true });
    await Promise.all([a.ready, b.ready]);
    const members = async () => (await admin.channelPresence({ channel: "share.a" })).members.length;
    assert.equal(await members(), 1);
    await admin.channelPublish({ channel: "share.a", data: 1 });
    assert.equal(offsets(await take(a, 1)), "1");
    assert.equal(offsets(await take(b, 1)), "1");
    a[Symbol.dispose]();
    assert.equal(await members(), 1);
    await admin.channelPublish({ channel: "share.a", data: 2 });
    assert.equal(offsets(await take(b, 1)), "2");
    assert.deepEqual(await a.next(), { done: true, value: undefined });
    await b[Symbol.asyncDispose]();
    await until(async () => (await members()) === 0, "the server's subscription to end");
  } finally {
    sb.close();
    admin.close();
  }
});

test("join, leave, and unsubscribed when the channel is removed, after which it goes on in the new epoch", async () => {
  const sb = client(server.base, server.token);
  const other = client(server.base, server.token);
  try {
    const sub = sb.subscribe("events.a", { joinLeave: true });
    await sub.ready;
    const joined = new Promise((resolve) => sub.on("join", resolve));
    const left = new Promise((resolve) => sub.on("leave", resolve));
    const o = other.subscribe("events.a");
    await o.ready;
    const me = await other.sessionWhoami();
    assert.equal((await joined).connectionId, me.connectionId);
    o.unsubscribe();
    assert.equal((await left).connectionId, me.connectionId);

    const first = await other.channelPublish({ channel: "events.a", data: "old" });
    assert.equal(offsets(await take(sub, 1)), "1");
    const unsubscribed = new Promise((resolve) => sub.on("unsubscribed", resolve));
    const removed = await other.channelRemove({ channel: "events.a" });
    assert.equal((await unsubscribed).reason, "removed");
    assert.notEqual(removed.epoch, first.epoch);
    await until(async () => (await other.channelPresence({ channel: "events.a" })).members.length === 1, "the client to subscribe again");
    const next = await other.channelPublish({ channel: "events.a", data: "new" });
    await assert.rejects(sub.next(), (err) => err instanceof LostError && err.after.epoch === first.epoch && err.resumed.epoch === next.epoch);
    const [p] = await take(sub, 1);
    assert.equal(p.data, "new");
    assert.deepEqual(sub.position, { offset: 1, epoch: next.epoch });
  } finally {
    sb.close();
    other.close();
  }
});

test("a subscription the server refuses ends with its error", async () => {
  const token = await server.createToken("nobody", "--subscribe", "allowed.>");
  const sb = client(server.base, token);
  try {
    const sub = sb.subscribe("forbidden.a");
    await assert.rejects(sub.ready, { name: "SwitchboardError", code: -32003 });
    await assert.rejects(sub.next(), { code: -32003 });
    const ok = sb.subscribe("allowed.a");
    await ok.ready;
  } finally {
    sb.close();
  }
});

test("many subscriptions on one client all come back after a restart", async () => {
  const sb = client(server.base, server.token);
  const pub = client(server.base, server.token);
  try {
    const channels = Array.from({ length: 40 }, (_, i) => `many.c${i}`);
    const subs = channels.map((c) => sb.subscribe(c));
    await Promise.all(subs.map((s) => s.ready));
    await Promise.all(channels.map((c) => pub.channelPublish({ channel: c, data: 1 })));
    await server.restart("SIGKILL");
    await Promise.all(channels.map((c) => pub.channelPublish({ channel: c, data: 2 })));
    const got = await Promise.all(subs.map((s) => take(s, 2)));
    assert.deepEqual(got.map((pubs) => offsets(pubs)), channels.map(() => "1,2"));
  } finally {
    sb.close();
    pub.close();
  }
});

test("a recovery the server cuts at 1000 publications is continued, with live ones arriving meanwhile", async () => {
  const big = await startServer("--history-size", "0");
  const sb = client(big.base, big.token);
  const pub = client(big.base, big.token);
  try {
    const channel = "cut.a";
    let last;
    for (let i = 0; i < 2500; i += 250) {
      const batch = await Promise.all(Array.from({ length: 250 }, (_, j) => pub.channelPublish({ channel, data: i + j })));
      last = batch.at(-1);
    }
    const sub = sb.subscribe(channel, { since: { offset: 0, epoch: last.epoch } });
    const recoveries = [];
    sub.on("subscribed", (e) => recoveries.push(e.recovered));
    // Live publications keep coming while the rest is recovered.
    const live = (async () => {
      for (let i = 0; i < 50; i++) await pub.channelPublish({ channel, data: 2500 + i });
    })();
    const got = await take(sub, 2550, 30_000);
    await live;
    assert.equal(offsets(got), range(1, 2550));
    // Concurrent publishes take offsets in the order the server ran them:
    // each data once is what holds.
    assert.deepEqual(got.map((p) => p.data).sort((a, b) => a - b), Array.from({ length: 2550 }, (_, i) => i));
    assert.ok(recoveries.length >= 3 && recoveries[0] === 1000, `recovered ${recoveries}`);
  } finally {
    sb.close();
    pub.close();
    await big.stop();
  }
});
