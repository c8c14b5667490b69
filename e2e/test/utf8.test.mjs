// Data that is not UTF-8 must never reach a text frame: Node's ws and
// browsers drop a connection that carries one (1007 or 1006). A publisher
// who sends such bytes gets -32602, over HTTP and over a socket, and the
// subscribers stay connected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startServer } from "../../sdk/test/server.mjs";
import { launchBrowser } from "./browser.mjs";

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server.stop();
});

// A publish whose data holds the raw byte 0xFF, which JSON.stringify
// cannot produce: it is built from bytes.
function badPublish(id, channel) {
  return Buffer.concat([
    Buffer.from(`{"jsonrpc":"2.0","id":${id},"method":"channelPublish","params":{"channel":"${channel}","data":{"text":"a`),
    Buffer.from([0xff]),
    Buffer.from(`b"}}}`),
  ]);
}

async function post(body) {
  const res = await fetch(server.rpcURL, {
    method: "POST",
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
    body,
  });
  assert.equal(res.status, 200);
  return res.json();
}

function assertInvalidData(reply, how) {
  assert.equal(reply.error?.code, -32602, `${how}: ${JSON.stringify(reply)}`);
  assert.match(reply.error.message, /"data" is not valid UTF-8/, how);
}

// socket opens a ws client that collects what it receives.
async function socket() {
  const ws = new WebSocket(`${server.base.replace("http", "ws")}/rpc`, {
    headers: { authorization: `Bearer ${server.token}` },
  });
  const got = [];
  const waiters = [];
  ws.closed = null;
  ws.on("message", (data) => {
    got.push(JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  ws.on("close", (code) => {
    ws.closed = code;
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  // next resolves with the first message that match accepts.
  ws.next = async (match) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const i = got.findIndex(match);
      if (i >= 0) return got.splice(i, 1)[0];
      assert.equal(ws.closed, null, `the connection closed with ${ws.closed}`);
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`no such message; got ${JSON.stringify(got)}`);
      await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, left).unref(); });
    }
  };
  ws.call = async (id, method, params) => {
    ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    return ws.next((m) => m.id === id);
  };
  return ws;
}

test("Node ws: a publish that is not UTF-8 is refused and subscribers stay connected", async () => {
  const channel = "chat.ws";
  const sub = await socket();
  assert.equal((await sub.call(1, "channelSubscribe", { channel })).result.offset, 0);

  assertInvalidData(await post(badPublish(1, channel)), "over HTTP");

  const pub = await socket();
  pub.send(badPublish(2, channel), { binary: false });
  assertInvalidData(await pub.next((m) => m.id === 2), "over a WebSocket");

  const ok = await pub.call(3, "channelPublish", { channel, data: { text: "fine" } });
  assert.equal(ok.result.offset, 1, "only the valid publication was stored");
  const note = await sub.next((m) => m.method === "channelPublication");
  assert.deepEqual([note.params.offset, note.params.data], [1, { text: "fine" }]);

  const history = await sub.call(2, "channelHistory", { channel });
  assert.deepEqual(history.result.publications.map((p) => p.offset), [1]);
  assert.equal(sub.closed, null);
  sub.close();
  pub.close();
});

test("Chromium: a subscribed page is not disconnected by a publish that is not UTF-8", async (t) => {
  const channel = "chat.browser";
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${server.base}/healthz`);
  await page.evaluate(async ({ token, channel }) => {
    const ws = new WebSocket(`ws://${location.host}/rpc?access_token=${token}`);
    window.received = [];
    window.closeCode = null;
    ws.onmessage = (e) => window.received.push(JSON.parse(e.data));
    ws.onclose = (e) => { window.closeCode = e.code; };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "channelSubscribe", params: { channel } }));
    window.ws = ws;
  }, { token: server.token, channel });
  await page.waitForFunction(() => window.received.some((m) => m.id === 1));

  assertInvalidData(await post(badPublish(1, channel)), "over HTTP");
  const ok = await post(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "channelPublish", params: { channel, data: { text: "fine" } } }));
  assert.equal(ok.result.offset, 1);

  await page.waitForFunction(() => window.received.some((m) => m.method === "channelPublication") || window.closeCode !== null);
  const state = await page.evaluate(() => ({ closeCode: window.closeCode, readyState: window.ws.readyState, received: window.received }));
  assert.equal(state.closeCode, null, `the page's socket closed with ${state.closeCode}`);
  assert.equal(state.readyState, 1);
  const pubs = state.received.filter((m) => m.method === "channelPublication");
  assert.deepEqual(pubs.map((m) => [m.params.offset, m.params.data.text]), [[1, "fine"]]);
});
