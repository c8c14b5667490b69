// @ts-check
// The session: who the server says the token is (sessionWhoami over the
// console's socket), how long until it expires, and the token's header
// and claims, decoded here from its first two parts. The signature, the
// third part, is never shown.

import { h, heading, replace, alertBox } from "./dom.js";
import { dateTime, duration, pretty } from "./format.js";
import { decodeToken } from "./token.js";

/** @typedef {import("./app.js").Context} Context */

/**
 * @param {Context} ctx
 * @param {HTMLElement} main
 */
export function mountSession(ctx, main) {
  const errors = alertBox();
  const facts = h("dl", { class: "facts session-facts" }, h("div", null, h("dt", null, "User"), h("dd", null, "…")));
  const expiry = h("dd", { class: "expiry" }, "…");
  const countdown = h("span", { class: "countdown" });
  const tokenPart = h("div", { class: "token-parts" });

  replace(main, h("section", { class: "view session-view" },
    heading("Session"),
    errors.el,
    facts,
    h("h2", null, "The token"),
    h("p", { class: "hint" }, "Its header and claims, decoded in this page. The signature is not shown."),
    tokenPart,
  ));

  let expiresAt = NaN;
  let ended = false;

  /** @param {unknown[]} items */
  const list = (items) => items.length
    ? h("ul", { class: "patterns" }, items.map((p) => h("li", null, h("code", null, String(p)))))
    : h("span", { class: "hint" }, "none");

  (async () => {
    try {
      const me = await ctx.sb.sessionWhoami();
      if (ended) return;
      replace(facts,
        h("div", null, h("dt", null, "User"), h("dd", { class: "user" }, me.anonymous ? "(anonymous)" : me.user)),
        h("div", null, h("dt", null, "Connection id"), h("dd", null, h("code", null, me.connectionId))),
        h("div", null, h("dt", null, "Transport"), h("dd", null, me.transport)),
        h("div", null, h("dt", null, "Admin"), h("dd", { class: "admin" }, me.permissions.admin ? "yes: may do everything" : "no")),
        h("div", null, h("dt", null, "May publish to"), h("dd", null, list(me.permissions.publish))),
        h("div", null, h("dt", null, "May subscribe to"), h("dd", null, list(me.permissions.subscribe))),
        h("div", null, h("dt", null, "Expires"), expiry),
      );
      if (me.expiresAt) {
        expiresAt = Date.parse(me.expiresAt);
        replace(expiry, dateTime(me.expiresAt), " ", countdown);
        tick();
      } else {
        replace(expiry, "never");
      }
    } catch (err) {
      if (!ended) errors.show(err, "sessionWhoami failed");
    }
  })();

  try {
    const { header, claims } = decodeToken(ctx.token());
    /** @type {[string, string][]} */
    const times = [];
    for (const k of ["iat", "nbf", "exp"]) {
      const v = claims[k];
      if (typeof v === "number") times.push([k, dateTime(new Date(v * 1000).toISOString())]);
    }
    replace(tokenPart,
      h("h3", null, "Header"), h("pre", { class: "json token-header" }, pretty(header)),
      h("h3", null, "Claims"), h("pre", { class: "json token-claims" }, pretty(claims)),
      times.length ? h("dl", { class: "facts" }, times.map(([k, v]) => h("div", null, h("dt", null, h("code", null, k)), h("dd", null, v)))) : null,
    );
  } catch (err) {
    replace(tokenPart, h("p", { class: "error" }, err instanceof Error ? err.message : String(err)));
  }

  function tick() {
    if (Number.isNaN(expiresAt)) return;
    const left = (expiresAt - Date.now()) / 1000;
    replace(countdown, left > 0 ? `(in ${duration(left)})` : "(expired)");
  }

  const timer = setInterval(tick, 1000);
  return () => {
    ended = true;
    clearInterval(timer);
  };
}
