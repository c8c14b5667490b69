// @ts-check
// The publish box of a channel's view: JSON in a textarea, checked with
// JSON.parse before it is sent, the error said next to the field.

import { h, replace, alertBox, uid } from "./dom.js";

/** @typedef {import("./app.js").Context} Context */

/**
 * @param {Context} ctx
 * @param {string} channel
 */
export function publishBox(ctx, channel) {
  const dataId = uid("data");
  const errorId = uid("data-error");
  const hintId = uid("data-hint");
  const headingId = uid("publish");
  const data = h("textarea", {
    id: dataId, name: "data", rows: 5, spellcheck: "false", placeholder: '{"text": "hello"}',
    "aria-describedby": `${hintId} ${errorId}`,
  });
  const fieldError = h("p", { id: errorId, class: "field-error", hidden: true });
  const errors = alertBox();
  const done = h("p", { class: "status", role: "status" });
  const button = h("button", { type: "submit" }, "Publish");

  /** @param {string} text */
  function invalid(text) {
    data.setAttribute("aria-invalid", "true");
    replace(fieldError, text);
    fieldError.hidden = false;
    data.focus();
  }

  function valid() {
    data.removeAttribute("aria-invalid");
    replace(fieldError);
    fieldError.hidden = true;
  }

  data.addEventListener("input", () => { if (data.hasAttribute("aria-invalid")) valid(); });

  const form = h("form", {
    class: "publish", novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        errors.clear();
        replace(done);
        const text = data.value.trim();
        if (!text) return invalid("Enter the data to publish, as JSON.");
        let value;
        try {
          value = JSON.parse(text);
        } catch (err) {
          return invalid(`This is not JSON: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (value === null) return invalid("null cannot be published: any other JSON value can.");
        valid();
        button.disabled = true;
        try {
          const r = await ctx.sb.channelPublish({ channel, data: value });
          replace(done, r.duplicate ? `Already published, at offset ${r.offset}.` : `Published at offset ${r.offset}.`);
        } catch (err) {
          errors.show(err, "channelPublish failed");
        } finally {
          button.disabled = false;
        }
      },
    },
  },
    h("div", { class: "field" },
      h("label", { htmlFor: dataId }, "Data (JSON)"),
      data,
      h("p", { id: hintId, class: "hint" }, "Any JSON value but null: an object, an array, a string in quotes, a number, true or false."),
      fieldError,
    ),
    errors.el,
    h("div", { class: "actions" }, button, done),
  );

  const el = h("section", { class: "panel", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Publish"),
    form,
  );
  return { el };
}
