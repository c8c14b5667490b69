// The TypeScript client that @open-rpc/generator makes from openrpc.json
// (`make sdk`), used against a live server the way an application would.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { startServer } from "./server.mjs";
import { document, resultErrors, notificationErrors } from "./document.mjs";

const require = createRequire(import.meta.url);
const { default: Switchboard } = require("../generated/client/typescript/build/index.js");

let server;
const clients = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const c of clients) c.rpc.close();
  await server.stop();
});

// connect makes a generated client. Browsers cannot set headers on a
// WebSocket, and the generated Options have no place for them, so the
// token goes in the access_token query parameter.
function connect(type = "websocket", token = server.token) {
  const c = new Switchboard({
    transport: { type, host: "127.0.0.1", port: server.port, path: `/rpc?access_token=${encodeURIComponent(token)}` },
  });
  clients.push(c);
  return c;
}

// notifications collects the notifications a client receives, and waits
// for them.
function notifications(client) {
  const got = [];
  let wake = () => {};
  client.onNotification((msg) => { got.push(msg); wake(); });
  return {
    got,
    async next(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (got.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`got ${got.length} notifications, want ${n}: ${JSON.stringify(got)}`);
        await new Promise((resolve) => { wake = resolve; setTimeout(resolve, left).unref(); });
      }
      return got.splice(0, n);
    },
  };
}

function assertFollowsSchema(method, result) {
  assert.equal(resultErrors(method, result), null, `${method} result ${JSON.stringify(result)}`);
}

test("calls over WebSocket return what openrpc.json describes", async () => {
  const c = connect();

  const ping = await c.serverPing();
  assertFollowsSchema("serverPing", ping);
  assert.ok(Math.abs(Date.parse(ping.time) - Date.now()) < 60_000, `ping time ${ping.time} is not now`);

  const me = await c.sessionWhoami();
  assertFollowsSchema("sessionWhoami", me);
  assert.equal(me.transport, "websocket");
  assert.equal(me.permissions.admin, true);

  const info = await c.serverInfo();
  assertFollowsSchema("serverInfo", info);
  assert.ok(info.connections >= 1, `serverInfo counts ${info.connections} connections with this one open`);

  const offsets = [];
  for (const text of ["one", "two", "three"]) {
    const r = await c.channelPublish("sdk.calls", { text });
    assertFollowsSchema("channelPublish", r);
    offsets.push(r.offset);
  }
  assert.deepEqual(offsets, [1, 2, 3]);

  // By position, as the generated client sends them: the newest two.
  const newest = await c.channelHistory("sdk.calls", 2, true);
  assertFollowsSchema("channelHistory", newest);
  assert.deepEqual(newest.publications.map((p) => [p.offset, p.data.text]), [[3, "three"], [2, "two"]]);

  // Paging on from a position, with the optional params before it given.
  const after1 = await c.channelHistory("sdk.calls", 10, false, { offset: 1, epoch: newest.epoch });
  assert.deepEqual(after1.publications.map((p) => p.offset), [2, 3]);
  // Left out, they go as null, which the server takes as absent.
  const after2 = await c.channelHistory("sdk.calls", undefined, undefined, { offset: 2, epoch: newest.epoch });
  assert.deepEqual(after2.publications.map((p) => p.offset), [3]);

  const list = await c.channelList("sdk.");
  assertFollowsSchema("channelList", list);
  assert.deepEqual(list.channels.map((ch) => [ch.channel, ch.offset]), [["sdk.calls", 3]]);

  // rpc.discover is not a member of the client (OpenRPC reserves it and
  // the document does not list it), but the client can still call it, and
  // it returns the document the client was generated from.
  const discovered = await c.rpc.request({ method: "rpc.discover", params: [] });
  assert.deepEqual(discovered, document);
  assert.deepEqual(Switchboard.openrpcDocument, document);
});

test("errors reach the caller with their JSON-RPC code", async () => {
  const c = connect();

  // The server refuses a channel name that is a string but not a name.
  await assert.rejects(c.channelPublish("no spaces allowed", 1), (err) => {
    assert.equal(err.code, -32602, err.message);
    assert.match(err.message, /channel/);
    return true;
  });

  // A token that may only read news.* is forbidden to publish to chat.
  const reader = connect("websocket", await server.createToken("reader", "--subscribe", "news.*"));
  await assert.rejects(reader.channelPublish("chat.lobby", "hi"), (err) => {
    assert.equal(err.code, -32003, err.message);
    return true;
  });

  // Unsubscribing from a channel the connection is not subscribed to.
  await assert.rejects(c.channelUnsubscribe("sdk.never"), (err) => {
    assert.equal(err.code, -32004, err.message);
    return true;
  });

  // The generated client checks params against openrpc.json before it
  // sends them: a number where the channel name goes never leaves it.
  await assert.rejects(c.channelPublish(42, "x"), (errs) => {
    assert.ok(Array.isArray(errs) && errs.length === 1, `want one validation error, got ${errs}`);
    assert.equal(errs[0].name, "ParameterValidationError");
    assert.equal(errs[0].paramIndex, 0);
    return true;
  });
  const none = await c.channelHistory("chat.lobby");
  assert.deepEqual(none.publications, [], "a refused publication was stored");

  // Over HTTP, a WebSocket-only method says so.
  const h = connect("http");
  await assert.rejects(h.channelSubscribe("sdk.http"), (err) => {
    assert.equal(err.code, -32010, err.message);
    return true;
  });
});

test("a subscription receives channelPublication notifications and recovers", async () => {
  const subscriber = connect();
  const inbox = notifications(subscriber);
  const sub = await subscriber.channelSubscribe("sdk.live");
  assertFollowsSchema("channelSubscribe", sub);
  assert.equal(sub.offset, 0);
  assert.equal(sub.recovered, false);

  // Publish from another client, over HTTP POST.
  const publisher = connect("http");
  const sent = [{ n: 1 }, "two", [3], 4];
  for (const data of sent) await publisher.channelPublish("sdk.live", data);

  const got = await inbox.next(sent.length);
  for (const msg of got) {
    assert.equal(msg.method, "channelPublication");
    assert.equal(notificationErrors("channelPublication", msg.params), null, JSON.stringify(msg.params));
    assert.equal(msg.params.channel, "sdk.live");
    assert.equal(msg.params.publisher, "admin");
  }
  assert.deepEqual(got.map((m) => m.params.offset), [1, 2, 3, 4]);
  assert.deepEqual(got.map((m) => m.params.data), sent);

  // A client that had offset 2 recovers exactly what followed.
  const late = connect();
  const lateInbox = notifications(late);
  const rec = await late.channelSubscribe("sdk.live", { offset: 2, epoch: sub.epoch });
  assertFollowsSchema("channelSubscribe", rec);
  assert.equal(rec.recovered, true);
  assert.deepEqual(rec.publications.map((p) => p.data), sent.slice(2));

  const presence = await publisher.channelPresence("sdk.live");
  assertFollowsSchema("channelPresence", presence);
  assert.equal(presence.members.length, 2);

  const un = await subscriber.channelUnsubscribe("sdk.live");
  assertFollowsSchema("channelUnsubscribe", un);
  await publisher.channelPublish("sdk.live", "after");
  // The late subscriber sees it, so it has been fanned out; the one that
  // left must not.
  const [after] = await lateInbox.next(1);
  assert.equal(after.params.offset, 5);
  assert.deepEqual(inbox.got, [], "a notification arrived after channelUnsubscribe");

  // Removal ends the subscription with channelUnsubscribed.
  const removed = await publisher.channelRemove("sdk.live");
  assertFollowsSchema("channelRemove", removed);
  const [gone] = await lateInbox.next(1);
  assert.equal(gone.method, "channelUnsubscribed");
  assert.equal(notificationErrors("channelUnsubscribed", gone.params), null, JSON.stringify(gone.params));
  assert.deepEqual(gone.params, { channel: "sdk.live", reason: "removed" });
});
