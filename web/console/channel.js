// @ts-check
// One channel: its history (newest page first, paging back by offset)
// above its live publications, a publish box, presence kept up to date by
// join and leave, and a log of what the client did on each reconnect.
//
// The subscription starts since the newest publication the history read,
// so the server recovers whatever was published in between: nothing falls
// between history and live, and nothing is in both.

import { h, heading, replace, alertBox, uid, describeError } from "./dom.js";
import { count, dateTime, now } from "./format.js";
import { createFeed } from "./feed.js";
import { publishBox } from "./publish.js";

/** @typedef {import("./app.js").Context} Context */
/** @typedef {import("../client/dist/switchboard.js").Member} Member */
/** @typedef {import("../client/dist/switchboard.js").Position} Position */
/** @typedef {import("../client/dist/switchboard.js").LostError} LostError */

const pageSize = 50;

/**
 * @param {Context} ctx
 * @param {HTMLElement} main
 * @param {string} name the channel
 */
export function mountChannel(ctx, main, name) {
  const sb = ctx.sb;
  const errors = alertBox();
  const presenceErrors = alertBox();
  const feed = createFeed({ onLoadOlder: () => loadOlder() });
  const events = h("ol", { class: "events" });
  const presenceList = h("ul", { class: "members" });
  const presenceCount = h("span", { class: "presence-count" });
  const eventsId = uid("events");
  const presenceId = uid("presence");

  replace(main, h("section", { class: "view channel-view" },
    h("p", { class: "crumbs" }, h("a", { href: "#/channels" }, "Channels"), " / "),
    heading(h("span", { class: "visually-hidden" }, "Channel "), h("span", { class: "channel-name" }, name)),
    errors.el,
    h("div", { class: "channel-grid" },
      h("section", { class: "panel feed-panel", "aria-label": "Publications" }, feed.el),
      h("div", { class: "side" },
        publishBox(ctx, name).el,
        h("section", { class: "panel", "aria-labelledby": presenceId },
          h("h2", { id: presenceId }, "Presence ", presenceCount),
          presenceErrors.el,
          presenceList,
        ),
        h("section", { class: "panel", "aria-labelledby": eventsId },
          h("h2", { id: eventsId }, "Connection"),
          events,
        ),
      ),
    ),
  ));

  let ended = false;
  /** @type {import("../client/dist/switchboard.js").Subscription | null} */
  let sub = null;
  /** @type {Position | null} the oldest publication shown, for "Load older" */
  let oldest = null;
  let epoch = "";
  let subscribes = 0; // "subscribed" events so far
  let reconnected = false; // a disconnect since the last subscribe
  let liveCount = 0;
  let announced = 0; // liveCount when last announced
  let announceTimer = 0;

  /**
   * A line in the connection log, newest last, the last 20 kept.
   * @param {string} text
   * @param {string} [kind]
   */
  function event(text, kind = "") {
    events.append(h("li", { class: `event ${kind}` }, h("time", null, now()), " ", text));
    while (events.childElementCount > 20) events.firstElementChild?.remove();
  }

  const offs = [
    sb.on("disconnected", () => {
      if (subscribes > 0) reconnected = true;
    }),
  ];

  // Presence: the members by connection id. Joins and leaves that come
  // while channelPresence is on its way are applied after its answer.
  /** @type {Map<string, Member>} */
  const members = new Map();
  /** @type {(() => void)[] | null} */
  let pendingPresence = null;
  let me = "";

  async function loadPresence() {
    pendingPresence = [];
    try {
      const [p, who] = await Promise.all([sb.channelPresence({ channel: name }), sb.sessionWhoami()]);
      if (ended) return;
      presenceErrors.clear();
      me = who.connectionId;
      members.clear();
      for (const m of p.members) members.set(m.connectionId, m);
      for (const apply of pendingPresence ?? []) apply();
    } catch (err) {
      if (!ended) presenceErrors.show(err, "channelPresence failed");
    } finally {
      pendingPresence = null;
      renderPresence();
    }
  }

  /** @param {() => void} apply */
  function presenceEvent(apply) {
    if (pendingPresence) pendingPresence.push(apply);
    else {
      apply();
      renderPresence();
    }
  }

  function renderPresence() {
    replace(presenceCount, `(${members.size})`);
    replace(presenceList, members.size === 0
      ? h("li", { class: "hint" }, "No one is subscribed.")
      : [...members.values()].map((m) => h("li", { class: "member" },
        h("span", { class: "member-user" }, m.user || "(anonymous)"),
        m.connectionId === me ? h("span", { class: "badge" }, "this console") : null,
        h("span", { class: "member-conn" }, h("code", null, m.connectionId)),
        h("span", { class: "member-since hint" }, "since ", dateTime(m.since)),
      )));
  }

  // Announces new live publications to screen readers, at most every
  // 10 seconds, as a count.
  function announceLater() {
    if (announceTimer) return;
    announceTimer = window.setTimeout(() => {
      announceTimer = 0;
      if (ended || liveCount === announced) return;
      ctx.announce(`${count(liveCount - announced, "new publication")} on ${name}`);
      announced = liveCount;
    }, 10_000);
  }

  async function start() {
    let page;
    try {
      page = await sb.channelHistory({ channel: name, newestFirst: true, limit: pageSize });
    } catch (err) {
      if (ended) return;
      errors.show(err, "channelHistory failed");
      event(`Not subscribed: ${describeError(err)}`, "bad");
      return;
    }
    if (ended) return;
    epoch = page.epoch;
    const pubs = page.publications; // newest first
    feed.prependHistory([...pubs].reverse());
    const last = pubs[pubs.length - 1];
    oldest = last ? { offset: last.offset, epoch } : null;
    olderState(pubs.length);
    const first = pubs[0];
    const since = { offset: first ? first.offset : page.offset, epoch };

    const s = sb.subscribe(name, { since, joinLeave: true });
    sub = s;
    s.on("subscribed", (e) => {
      subscribes++;
      const lost = e.lost ? "; some were no longer kept (below)" : "; nothing lost";
      if (subscribes === 1) {
        event(`Subscribed since offset ${since.offset}: recovered ${count(e.recovered, "publication")} published after the history was read${lost}.`);
      } else if (reconnected) {
        event(`Reconnected and subscribed again: recovered ${count(e.recovered, "publication")}${lost}.`, e.lost ? "bad" : "good");
        loadPresence();
      } else {
        event(`Subscribed again to catch up: recovered ${count(e.recovered, "publication")}${lost}.`);
      }
      reconnected = false;
    });
    s.on("lost", (e) => {
      const text = lostText(e);
      event(text, "bad");
      feed.mark(text);
    });
    s.on("join", (m) => presenceEvent(() => members.set(m.connectionId, m)));
    s.on("leave", (m) => presenceEvent(() => members.delete(m.connectionId)));
    s.on("unsubscribed", (e) => {
      const text = e.reason === "removed" ? "The channel was removed: its history is gone. Subscribing again." : `The server ended the subscription (${e.reason}). Subscribing again.`;
      event(text, "bad");
      feed.mark(text);
    });
    s.ready.then(() => { if (!ended) loadPresence(); }, () => {});

    try {
      for await (const p of s) {
        if (ended) break;
        feed.appendLive(p);
        liveCount++;
        announceLater();
      }
    } catch (err) {
      if (ended) return;
      errors.show(err, "The subscription ended");
      event(`Subscription ended: ${describeError(err)}`, "bad");
    }
  }

  /** @param {number} got how many the last page brought */
  function olderState(got) {
    if (!oldest) feed.setOlder(false, got === 0 && epoch ? "No history." : "");
    else if (oldest.offset <= 1) feed.setOlder(false, "The start of the channel.");
    else feed.setOlder(true, "");
  }

  async function loadOlder() {
    if (!oldest) return;
    feed.loadingOlder();
    try {
      const page = await sb.channelHistory({ channel: name, newestFirst: true, limit: pageSize, since: oldest });
      if (ended) return;
      errors.clear();
      const pubs = page.publications;
      feed.prependHistory([...pubs].reverse());
      const last = pubs[pubs.length - 1];
      if (last) {
        oldest = { offset: last.offset, epoch: page.epoch };
        olderState(pubs.length);
      } else {
        feed.setOlder(false, `Nothing older than offset ${oldest.offset} is kept.`);
      }
    } catch (err) {
      if (ended) return;
      errors.show(err, "Loading older publications failed");
      feed.setOlder(true, "");
    }
  }

  renderPresence();
  start();
  return () => {
    ended = true;
    clearTimeout(announceTimer);
    for (const off of offs) off();
    sub?.unsubscribe();
  };
}

/**
 * What a loss says: which offsets, or that the epoch was replaced.
 * @param {LostError} e
 */
function lostText(e) {
  const last = e.last;
  if (last !== undefined) {
    return last === e.first
      ? `Lost publication ${e.first}: the history no longer held it.`
      : `Lost publications ${e.first}..${last}: the history no longer held them.`;
  }
  return `Lost publications after ${e.after.offset}: the channel's history was replaced (epoch ${e.after.epoch} became ${e.resumed.epoch}).`;
}
