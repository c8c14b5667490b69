// What the client's tests share: a client made the way a Node 20 program
// makes one, and reading a subscription with a deadline.
import WebSocket from "ws";
import { Switchboard } from "../dist/switchboard.js";

export { startServer } from "../../../sdk/test/server.mjs";
export { until } from "../../../sdk/test/until.mjs";

// client returns a Switchboard on ws's WebSocket, with fast reconnects.
export function client(url, token, options = {}) {
  return new Switchboard({ url, token, WebSocket, reconnect: { minDelayMs: 20, maxDelayMs: 200 }, ...options });
}

// take reads n publications from sub, failing after ms.
export async function take(sub, n, ms = 10_000) {
  const got = [];
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const left = deadline - Date.now();
    let timer;
    const r = await Promise.race([
      sub.next(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`took ${got.length} of ${n} publications in ${ms} ms: ${offsets(got)}`)), left); }),
    ]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`the subscription ended after ${got.length} of ${n}`);
    got.push(r.value);
  }
  return got;
}


export const offsets = (pubs) => pubs.map((p) => p.offset).join(",");
export const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i).join(",");
