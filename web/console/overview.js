// @ts-check
// The overview: what serverInfo says, polled every second while the view
// is open, with calls and notifications per second drawn from the
// difference between two polls.

import { h, heading, replace, alertBox } from "./dom.js";
import { duration, dateTime } from "./format.js";
import { sparkline } from "./chart.js";

/** @typedef {import("./app.js").Context} Context */

/** @typedef {import("../client/dist/switchboard.js").ServerInfoResult} Info */

/**
 * @param {Context} ctx
 * @param {HTMLElement} main
 */
export function mountOverview(ctx, main) {
  const errors = alertBox();
  const version = h("dd", { class: "info-version" }, "…");
  const nodeId = h("dd", { class: "info-node" }, "…");
  const started = h("dd", { class: "info-started" }, "…");
  const uptime = h("dd", { class: "info-uptime" }, "…");
  const connections = h("dd", { class: "info-connections" }, "…");
  const calls = sparkline("Calls", "calls/s");
  const notes = sparkline("Notifications", "notifications/s");
  const staleNote = h("p", { class: "hint stale", hidden: true });

  replace(main, h("section", { class: "view overview-view" },
    heading("Overview"),
    errors.el,
    h("dl", { class: "facts" },
      h("div", null, h("dt", null, "Version"), version),
      h("div", null, h("dt", null, "Node id"), nodeId),
      h("div", null, h("dt", null, "Started"), started),
      h("div", null, h("dt", null, "Uptime"), uptime),
      h("div", null, h("dt", null, "Open connections"), connections),
    ),
    staleNote,
    h("h2", null, "Traffic"),
    h("div", { class: "charts" }, calls.el, notes.el),
    h("p", { class: "hint" }, "Calls finished and notifications queued per second, from serverInfo's counters polled every second: the last minute."),
  ));

  /** @type {{ at: number, info: Info } | null} */
  let last = null;
  let startedAt = NaN; // the server's start, on this page's clock
  let lastAnswer = 0;
  let ended = false;
  let busy = false;

  async function poll() {
    if (busy) return; // a slow answer: skip a beat rather than pile up calls
    busy = true;
    try {
      const info = await ctx.sb.serverInfo({}, { timeoutMs: 5000 });
      if (ended) return;
      const at = performance.now();
      errors.clear();
      staleNote.hidden = true;
      lastAnswer = Date.now();
      replace(version, info.version);
      replace(nodeId, info.nodeId);
      replace(started, dateTime(info.startedAt));
      replace(connections, String(info.connections));
      startedAt = Date.now() - info.uptimeSeconds * 1000;
      if (last && last.info.nodeId === info.nodeId && last.info.startedAt === info.startedAt) {
        const seconds = (at - last.at) / 1000;
        calls.push(Math.max(0, info.callsTotal - last.info.callsTotal) / seconds);
        notes.push(Math.max(0, info.notificationsTotal - last.info.notificationsTotal) / seconds);
      } else if (last) {
        // A restart between the polls: the counters began again.
        calls.push(null);
        notes.push(null);
      }
      last = { at, info };
    } catch (err) {
      if (ended) return;
      errors.show(err, "serverInfo failed");
      calls.push(null);
      notes.push(null);
      last = null;
      if (lastAnswer) {
        replace(staleNote, `Last answered ${new Date(lastAnswer).toLocaleTimeString()}.`);
        staleNote.hidden = false;
      }
    } finally {
      busy = false;
      tick();
    }
  }

  // The uptime ticks on this page's clock between polls.
  function tick() {
    if (!Number.isNaN(startedAt)) replace(uptime, duration((Date.now() - startedAt) / 1000));
  }

  poll();
  const timer = setInterval(poll, 1000);
  return () => {
    ended = true;
    clearInterval(timer);
  };
}
