// Measures what the client costs a Node process per publication delivered:
// N publications are published (pipelined) to a channel that two
// subscribers follow, one through the client and one through a bare ws
// socket that only JSON.parses each frame; each reports its CPU time per
// publication. Not a test: run it by hand and record the figures in
// BENCHMARKS.md.
//
//   node bench/deliver.mjs [N]   (needs bin/switchboard: make build)
import WebSocket from "ws";
import { Switchboard } from "../dist/switchboard.js";
import { startServer } from "../../../sdk/test/server.mjs";
import { fork } from "node:child_process";

const n = Number(process.argv[2] ?? 20000);

if (process.env.BENCH_ROLE) {
  // A subscriber in a process of its own, so that its CPU is its own.
  const { BENCH_ROLE: role, URL: url, TOKEN: token } = process.env;
  const ready = () => process.send("ready");
  const done = () => {
    const { user, system } = process.cpuUsage(start);
    process.send({ role, usPerPub: (user + system) / n });
  };
  let start, got = 0;
  if (role === "client") {
    const sb = new Switchboard({ url, token, WebSocket });
    const sub = sb.subscribe("bench.deliver", { bufferSize: n });
    await sub.ready;
    ready();
    for await (const p of sub) {
      if (got++ === 0) start = process.cpuUsage();
      if (p.offset === n) break;
    }
    done();
    sb.close();
  } else {
    const ws = new WebSocket(url + "?access_token=" + token);
    ws.on("open", () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "channelSubscribe", params: { channel: "bench.deliver" } })));
    ws.on("message", (data) => {
      const m = JSON.parse(data.toString());
      if (m.id === 1) return ready();
      if (got++ === 0) start = process.cpuUsage();
      if (m.params.offset === n) {
        done();
        ws.close();
      }
    });
  }
} else {
  const server = await startServer("--history-size", "0", "--send-queue", String(n + 10), "--send-queue-bytes", String(64 << 20));
  const results = [];
  const kids = ["client", "raw"].map((role) => fork(new URL(import.meta.url).pathname, [String(n)], {
    env: { ...process.env, BENCH_ROLE: role, URL: `ws://${server.host}:${server.port}/rpc`, TOKEN: server.token },
  }));
  await Promise.all(kids.map((k) => new Promise((resolve) => k.once("message", resolve))));
  const finished = Promise.all(kids.map((k) => new Promise((resolve) => k.on("message", (m) => typeof m === "object" && resolve(results.push(m))))));
  const pub = new Switchboard({ url: server.base, token: server.token, WebSocket });
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => pub.channelPublish({ channel: "bench.deliver", data: { i: i + j, text: "hello, world" } })));
  }
  await finished;
  pub.close();
  await server.stop();
  for (const r of results.sort((a, b) => a.role.localeCompare(b.role))) console.log(`${r.role}\t${r.usPerPub.toFixed(2)} µs CPU per publication`);
}
