// @ts-check
// The sign-in view: one field, "Access token", checked with the server
// before the console opens its connection with it.

import { h, heading, replace, uid } from "./dom.js";
import { checkToken, refusal } from "./token.js";

/**
 * @typedef {object} SignInOptions
 * @property {string} base the console's URL, ending in /
 * @property {string} [message] why the reader is here: a refusal, an expiry, a sign-out
 * @property {(token: string, whoami: import("../client/dist/switchboard.js").WhoamiResult) => void} onSignedIn
 */

/**
 * Renders the sign-in form into main.
 * @param {HTMLElement} main
 * @param {SignInOptions} options
 * @returns {() => void} what ends the view
 */
export function mountSignIn(main, { base, message, onSignedIn }) {
  const inputId = uid("token");
  const helpId = uid("token-help");
  const statusId = uid("signin-status");
  const input = h("input", {
    type: "password", id: inputId, name: "token", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": `${helpId} ${statusId}`,
  });
  const button = h("button", { type: "submit" }, "Sign in");
  const status = h("p", { id: statusId, role: "alert", class: "error", hidden: !message }, message ?? "");
  let ended = false;

  /** @param {string} text */
  const refuse = (text) => {
    replace(status, text);
    status.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  };

  const form = h("form", {
    class: "signin", novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        const token = input.value.trim();
        if (!token) return refuse("Enter an access token");
        button.disabled = true;
        replace(button, "Signing in…");
        const r = await checkToken(base, token);
        if (ended) return;
        button.disabled = false;
        replace(button, "Sign in");
        if (r.ok) return onSignedIn(token, r.whoami);
        refuse(r.refused ? refusal(r.message) : `Cannot sign in: ${r.message}`);
      },
    },
  },
    h("div", { class: "field" },
      h("label", { htmlFor: inputId }, "Access token"),
      input,
      h("p", { id: helpId, class: "hint" },
        "A token from ", h("code", null, "switchboard token create"), ", or the admin token that ",
        h("code", null, "switchboard serve"), " prints when it starts. It is kept in this tab only, until you sign out or close it."),
    ),
    status,
    h("div", { class: "actions" }, button),
  );

  replace(main, h("section", { class: "view signin-view", "aria-labelledby": "signin-title" },
    Object.assign(heading("Sign in"), { id: "signin-title" }),
    h("p", null, "Sign in to watch channels, publish, and call the server's methods."),
    form,
  ));
  return () => { ended = true; };
}
