// @ts-check
// Every method of the server's contract (rpc.discover), each with its
// summary, description and a form made from its params' schemas. A call
// goes over the console's own WebSocket; "Copy as curl" and "Copy as
// switchboard call" give the same call for a shell.

import { h, heading, replace, alertBox, uid } from "./dom.js";
import { pretty } from "./format.js";
import { paramField, readParams } from "./params.js";
import { curlCommand, cliCommand } from "./commands.js";

/** @typedef {import("./app.js").Context} Context */
/** @typedef {import("./params.js").Param} Param */

/**
 * An OpenRPC method, as much of it as the view shows.
 * @typedef {{ name: string, summary?: string, description?: string, params?: Param[], examples?: { params?: { name: string, value: unknown }[] }[] }} Method
 */

/**
 * @param {Context} ctx
 * @param {HTMLElement} main
 */
export function mountMethods(ctx, main) {
  const errors = alertBox();
  const index = h("ul", { class: "method-index" });
  const list = h("div", { class: "methods" });
  const status = h("p", { class: "hint", role: "status" }, "Reading the server's contract…");
  replace(main, h("section", { class: "view methods-view" },
    heading("Methods"),
    h("p", null, "Every method the server describes in ", h("code", null, "rpc.discover"),
      ". Calls go over this console's WebSocket connection, with its token."),
    errors.el,
    status,
    h("nav", { "aria-label": "Methods on this page" }, index),
    list,
  ));

  let ended = false;
  (async () => {
    try {
      const doc = /** @type {{ info?: { title?: string, version?: string }, methods?: Method[] }} */ (await ctx.sb.call("rpc.discover"));
      if (ended) return;
      const methods = Array.isArray(doc?.methods) ? doc.methods : [];
      replace(status, `${methods.length} methods${doc.info?.version ? `, contract version ${doc.info.version}` : ""}.`);
      for (const m of methods) {
        const section = methodSection(ctx, m);
        list.append(section);
        index.append(h("li", null, h("button", {
          type: "button", class: "link",
          on: { click: () => { section.scrollIntoView({ block: "start" }); /** @type {HTMLElement | null} */ (section.querySelector("h2"))?.focus(); } },
        }, m.name)));
      }
    } catch (err) {
      if (ended) return;
      replace(status);
      errors.show(err, "rpc.discover failed");
    }
  })();
  return () => { ended = true; };
}

/**
 * One method's section: what it does, its form, and what a call gave.
 * @param {Context} ctx
 * @param {Method} m
 */
function methodSection(ctx, m) {
  const headingId = uid(`method-${m.name}`);
  const example = m.examples?.[0]?.params ?? [];
  const params = m.params ?? [];
  const fields = params.map((p) => paramField(p, example.find((e) => e.name === p.name)?.value));
  const result = h("div", { class: "call-result", "aria-live": "polite" });
  const copyOut = h("div", { class: "copy-out" });
  const callButton = h("button", { type: "submit" }, "Call");

  /** @returns {Record<string, unknown> | null} */
  function readOrSay() {
    try {
      return readParams(fields);
    } catch {
      replace(result, h("p", { role: "alert", class: "error" }, "Fix the params marked above first."));
      return null;
    }
  }

  async function call() {
    const p = readOrSay();
    if (!p) return;
    callButton.disabled = true;
    replace(result, h("p", { class: "hint" }, "Calling…"));
    const t0 = performance.now();
    try {
      const r = await ctx.sb.call(m.name, p);
      const ms = Math.round(performance.now() - t0);
      replace(result,
        h("h3", null, "Result ", h("span", { class: "hint" }, `in ${ms} ms`)),
        h("pre", { class: "json result-json" }, pretty(r)));
    } catch (err) {
      replace(result, errorView(err));
    } finally {
      callButton.disabled = false;
    }
  }

  /**
   * @param {string} what the command's name, for its label
   * @param {(base: string, method: string, params: Record<string, unknown>) => string} make
   */
  async function copy(what, make) {
    const p = readOrSay();
    if (!p) return;
    const text = make(ctx.base, m.name, p);
    const id = uid("copy");
    const field = h("textarea", { id, class: "command", readOnly: true, rows: 3, spellcheck: "false" });
    field.value = text;
    const said = h("p", { class: "status", role: "status" });
    replace(copyOut, h("div", { class: "field" }, h("label", { htmlFor: id }, what), field, said));
    field.select();
    try {
      if (!navigator.clipboard) throw new Error("this page cannot use the clipboard (it needs HTTPS or localhost)");
      await navigator.clipboard.writeText(text);
      replace(said, "Copied to the clipboard. It reads the token from $SWITCHBOARD_TOKEN.");
    } catch (err) {
      replace(said, `Not copied (${err instanceof Error ? err.message : String(err)}): select the text above and copy it.`);
    }
  }

  return h("section", { class: "method panel", "aria-labelledby": headingId, dataset: { method: m.name } },
    h("h2", { id: headingId, tabindex: "-1" }, h("code", null, m.name)),
    m.summary ? h("p", { class: "summary" }, m.summary) : null,
    m.description ? h("p", { class: "description" }, m.description) : null,
    h("form", {
      class: "method-form", novalidate: true,
      on: { submit: (e) => { e.preventDefault(); call(); } },
    },
      fields.length ? h("fieldset", null, h("legend", null, "Params"), fields.map((f) => f.el)) : h("p", { class: "hint" }, "No params."),
      h("div", { class: "actions" },
        callButton,
        h("button", { type: "button", class: "secondary", on: { click: () => copy("curl command", curlCommand) } }, "Copy as curl"),
        h("button", { type: "button", class: "secondary", on: { click: () => copy("switchboard command", cliCommand) } }, "Copy as switchboard call"),
      ),
    ),
    copyOut,
    result,
  );
}

/**
 * A call's error: code, message and data for a JSON-RPC error, the
 * message for anything else.
 * @param {unknown} err
 */
function errorView(err) {
  const e = /** @type {{ name?: string, code?: unknown, message?: string, data?: unknown }} */ (err ?? {});
  if (e.name === "SwitchboardError" && typeof e.code === "number") {
    return h("div", { role: "alert", class: "error call-error" },
      h("h3", null, "Error"),
      h("dl", { class: "facts" },
        h("div", null, h("dt", null, "Code"), h("dd", { class: "error-code" }, String(e.code))),
        h("div", null, h("dt", null, "Message"), h("dd", { class: "error-message" }, e.message ?? "")),
        e.data === undefined ? null : h("div", null, h("dt", null, "Data"), h("dd", null, h("pre", { class: "json" }, pretty(e.data)))),
      ));
  }
  return h("div", { role: "alert", class: "error call-error" },
    h("h3", null, "Error"),
    h("p", null, `${e.name ?? "Error"}: ${e.message ?? String(err)}`));
}
