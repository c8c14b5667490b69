// @ts-check
// A channel's publications as one scrolling list: the history, paged back
// with "Load older", above the live publications. It follows the newest
// while the reader is at the bottom, and stops following when they
// scroll up, until they are back at the bottom.

import { h, replace } from "./dom.js";
import { pretty, timeOfDay, count } from "./format.js";

/** @typedef {import("../client/dist/switchboard.js").Publication} Publication */

// How close to the bottom, in pixels, counts as at the bottom.
const slack = 24;
// The most live publications kept on the page; older ones are dropped
// from the top (the history still has them).
const maxLive = 1000;

/**
 * One publication: offset, publisher, time, and its data as indented JSON,
 * all as text.
 * @param {Publication} p
 */
export function publicationItem(p) {
  return h("li", { class: "pub", dataset: { offset: String(p.offset) } },
    h("p", { class: "pub-meta" },
      h("span", { class: "pub-offset" }, `#${p.offset}`),
      h("span", { class: "pub-publisher" }, p.publisher || "(anonymous)"),
      h("time", { class: "pub-time", datetime: p.time, title: p.time }, timeOfDay(p.time)),
    ),
    h("pre", { class: "json pub-data" }, pretty(p.data)),
  );
}

/**
 * @param {{ onLoadOlder: () => void }} options
 */
export function createFeed({ onLoadOlder }) {
  const older = h("button", { type: "button", class: "load-older", hidden: true, on: { click: onLoadOlder } }, "Load older");
  const olderNote = h("p", { class: "hint history-note" });
  const history = h("ol", { class: "history", "aria-label": "History" });
  const live = h("ol", { class: "live", "aria-label": "Live publications" });
  const liveEmpty = h("p", { class: "hint live-empty" }, "Waiting for publications…");
  const scroller = h("div", { class: "feed", tabindex: "0", role: "region", "aria-label": "Publications, oldest first" },
    h("div", { class: "feed-older" }, older, olderNote),
    history,
    h("h3", { class: "feed-divider" }, "Live"),
    liveEmpty,
    live,
  );
  const newer = h("button", { type: "button", class: "jump", hidden: true, on: { click: () => follow(true) } }, "Jump to newest");
  const followState = h("p", { class: "follow-state hint" }, "Following the newest publications.");
  const el = h("div", { class: "feed-box" }, scroller, h("div", { class: "feed-controls" }, followState, newer));

  let following = true;
  let unseen = 0;

  /** Whether the bottom of the list is in view. */
  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= slack;
  }

  scroller.addEventListener("scroll", () => {
    const bottom = atBottom();
    if (bottom !== following) follow(bottom, false);
  });

  /**
   * Starts (true) or stops following the newest.
   * @param {boolean} on
   * @param {boolean} [scroll] scroll to the bottom too
   */
  function follow(on, scroll = true) {
    following = on;
    if (on) {
      unseen = 0;
      if (scroll) scroller.scrollTop = scroller.scrollHeight;
    }
    newer.hidden = on;
    replace(followState, on ? "Following the newest publications." : `Scrolled up: not following${unseen ? `; ${count(unseen, "new publication")} below` : ""}.`);
  }

  /** Keeps the bottom in view if following. */
  function settle() {
    if (following) scroller.scrollTop = scroller.scrollHeight;
  }

  return {
    el,
    /**
     * Puts a page of older publications, oldest first, above the others,
     * keeping what the reader sees where it is.
     * @param {Publication[]} pubs
     */
    prependHistory(pubs) {
      const before = scroller.scrollHeight;
      history.prepend(...pubs.map(publicationItem));
      if (following && history.childElementCount === pubs.length) settle();
      else scroller.scrollTop += scroller.scrollHeight - before;
    },
    /**
     * Whether there is older history to load, and a note about it.
     * @param {boolean} more
     * @param {string} note
     */
    setOlder(more, note) {
      older.hidden = !more;
      older.disabled = false;
      replace(olderNote, note);
    },
    /** Marks "Load older" as busy. */
    loadingOlder() {
      older.disabled = true;
      replace(olderNote, "Loading…");
    },
    /** @param {Publication} p */
    appendLive(p) {
      // A reader who scrolled back to the bottom in this very frame has
      // not had their scroll event yet: they follow again.
      if (!following && atBottom()) follow(true, false);
      liveEmpty.hidden = true;
      live.append(publicationItem(p));
      while (live.childElementCount > maxLive) live.firstElementChild?.remove();
      if (!following) {
        unseen++;
        follow(false, false);
      }
      settle();
    },
    /**
     * A line in the live list that is not a publication: a loss, a
     * removed channel.
     * @param {string} text
     */
    mark(text) {
      live.append(h("li", { class: "feed-mark" }, text));
      settle();
    },
    settle,
  };
}
