// @ts-check
// The channels the token may see: channelList with a prefix filter, a
// table paged in the page (the server answers up to 1000 at once, and
// says "more" when there were others), and a field to open any channel
// by name, with history or not.

import { h, heading, replace, alertBox, uid } from "./dom.js";
import { count } from "./format.js";

/** @typedef {import("./app.js").Context} Context */
/** @typedef {import("../client/dist/switchboard.js").ChannelSummary} ChannelSummary */

const perPage = 50;

/**
 * The hash of a channel's view.
 * @param {string} name
 */
export function channelHash(name) {
  return `#/channels/${encodeURIComponent(name)}`;
}

/**
 * @param {Context} ctx
 * @param {HTMLElement} main
 */
export function mountChannels(ctx, main) {
  const errors = alertBox();
  const prefixId = uid("prefix");
  const prefix = h("input", { type: "search", id: prefixId, name: "prefix", autocomplete: "off", spellcheck: "false", placeholder: "chat." });
  const openId = uid("open");
  const openInput = h("input", { type: "text", id: openId, name: "channel", autocomplete: "off", spellcheck: "false", placeholder: "chat.lobby", required: true });
  const summary = h("p", { class: "list-summary", role: "status" });
  const moreNote = h("p", { class: "hint more-note", hidden: true });
  const tbody = h("tbody");
  const table = h("table", { class: "channels", hidden: true },
    h("caption", { class: "visually-hidden" }, "Channels"),
    h("thead", null, h("tr", null,
      h("th", { scope: "col" }, "Channel"),
      h("th", { scope: "col", class: "num" }, "Subscribers"),
      h("th", { scope: "col", class: "num" }, "Last offset"),
    )),
    tbody,
  );
  const pageLabel = h("span", { class: "page-label" });
  const prev = h("button", { type: "button", on: { click: () => show(page - 1) } }, "Previous page");
  const next = h("button", { type: "button", on: { click: () => show(page + 1) } }, "Next page");
  const pager = h("nav", { class: "pager", "aria-label": "Pages of channels", hidden: true }, prev, pageLabel, next);

  replace(main, h("section", { class: "view channels-view" },
    heading("Channels"),
    h("form", {
      class: "inline-form", role: "search",
      on: { submit: (e) => { e.preventDefault(); load(); } },
    },
      h("div", { class: "field" }, h("label", { htmlFor: prefixId }, "Name starts with"), prefix),
      h("button", { type: "submit" }, "Filter"),
    ),
    errors.el,
    summary,
    moreNote,
    h("div", { class: "table-wrap" }, table),
    pager,
    h("h2", null, "Open a channel"),
    h("form", {
      class: "inline-form",
      on: {
        submit: (e) => {
          e.preventDefault();
          const name = openInput.value.trim();
          if (name) ctx.navigate(channelHash(name));
        },
      },
    },
      h("div", { class: "field" }, h("label", { htmlFor: openId }, "Channel name"), openInput),
      h("button", { type: "submit" }, "Open"),
    ),
    h("p", { class: "hint" }, "The list shows channels with history or subscribers; open any other by name to watch it and publish to it."),
  ));

  /** @type {ChannelSummary[]} */
  let channels = [];
  let page = 0;
  let ended = false;
  let debounce = 0;
  let loading = 0; // the latest load's number: an older answer is dropped

  prefix.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = window.setTimeout(load, 300);
  });

  async function load() {
    clearTimeout(debounce);
    const mine = ++loading;
    const p = prefix.value;
    replace(summary, "Loading…");
    try {
      const r = await ctx.sb.channelList(p ? { prefix: p } : {});
      if (ended || mine !== loading) return;
      errors.clear();
      channels = r.channels;
      replace(moreNote, `The server listed the first ${channels.length} matching channels and has more: narrow the prefix to see the others.`);
      moreNote.hidden = !r.more;
      show(0);
    } catch (err) {
      if (ended || mine !== loading) return;
      replace(summary);
      errors.show(err, "channelList failed");
    }
  }

  /** @param {number} n */
  function show(n) {
    const pages = Math.max(1, Math.ceil(channels.length / perPage));
    page = Math.min(Math.max(0, n), pages - 1);
    const rows = channels.slice(page * perPage, (page + 1) * perPage);
    replace(tbody, rows.map((c) => h("tr", null,
      h("td", null, h("a", { href: channelHash(c.channel) }, c.channel)),
      h("td", { class: "num" }, String(c.subscribers)),
      h("td", { class: "num" }, String(c.offset)),
    )));
    table.hidden = channels.length === 0;
    const filter = prefix.value ? ` starting with “${prefix.value}”` : "";
    replace(summary, channels.length === 0 ? `No channels${filter}.` : `${count(channels.length, "channel")}${filter}.`);
    pager.hidden = pages <= 1;
    replace(pageLabel, `Page ${page + 1} of ${pages}`);
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  load();
  return () => {
    ended = true;
    clearTimeout(debounce);
  };
}
