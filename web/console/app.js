// @ts-check
// The console's entry: signs in, opens one Switchboard client for the
// tab, routes by the URL's hash to a view, and shows the connection's
// state in the header.
//
// Every address is relative to where the console was loaded from, so
// that it works behind a proxy under a path prefix: this module is
// BASE/console/app.js, the client BASE/sdk/switchboard.js, the server's
// rpc route BASE/rpc.

// The server serves the client at /sdk/, next to /console/; its types
// are the package's own, in web/client/dist.
// @ts-ignore: resolved by the browser, not by the type checker
import * as sdk from "../sdk/switchboard.js";
import { h, replace, heading } from "./dom.js";
import { storedToken, storeToken, forgetToken, checkToken, refusal } from "./token.js";
import { mountSignIn } from "./signin.js";
import { mountOverview } from "./overview.js";
import { mountChannels } from "./channels.js";
import { mountChannel } from "./channel.js";
import { mountMethods } from "./methods.js";
import { mountSession } from "./session.js";

/** @typedef {import("../client/dist/switchboard.js").Switchboard} Switchboard */

/**
 * What every view is given.
 * @typedef {object} Context
 * @property {Switchboard} sb the tab's client, connected with the token
 * @property {string} base the console's URL, ending in /: the server, or the proxy's prefix
 * @property {() => string} token the token signed in with
 * @property {(text: string) => void} announce says text to screen readers, politely
 * @property {(hash: string) => void} navigate goes to a view
 */

/** @type {typeof import("../client/dist/switchboard.js")} */
const client = sdk;

const base = new URL(".", location.href).href;
const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const nav = /** @type {HTMLElement} */ (document.getElementById("nav"));
const conn = /** @type {HTMLElement} */ (document.getElementById("conn"));
const signOutButton = /** @type {HTMLButtonElement} */ (document.getElementById("sign-out"));
const announcer = /** @type {HTMLElement} */ (document.getElementById("announcer"));

/** @type {Context | null} */
let ctx = null;
/** @type {(() => void) | void} the current view's cleanup */
let unmount;
let lastCheck = 0;

/** @param {string} text */
function announce(text) {
  // Emptied first, so that the same words said twice are said again.
  replace(announcer);
  setTimeout(() => replace(announcer, text), 50);
}

/**
 * The connection's state in the header.
 * @param {"connecting" | "connected" | "reconnecting" | "offline"} state
 * @param {string} text
 */
function showState(state, text) {
  conn.dataset.state = state;
  replace(conn, h("span", { class: "dot", "aria-hidden": "true" }), text);
}

/**
 * Opens the tab's client with the token in sessionStorage.
 * @returns {Context}
 */
function connect() {
  const sb = new client.Switchboard({ url: base, token: () => storedToken() });
  let everConnected = false;
  sb.on("connecting", ({ attempt }) => {
    showState(everConnected ? "reconnecting" : "connecting", everConnected ? `Reconnecting (attempt ${attempt})` : "Connecting");
  });
  sb.on("connected", () => {
    everConnected = true;
    showState("connected", "Connected");
  });
  sb.on("disconnected", ({ code, reason }) => {
    if (code === 4001) return signOut("Your token expired: sign in again");
    showState("reconnecting", `Reconnecting: the connection closed (${code}${reason ? " " + reason : ""})`);
    recheck();
  });
  sb.on("failed", () => showState("offline", "Not connected"));
  showState("connecting", "Connecting");
  return {
    sb, base, announce,
    token: () => storedToken(),
    navigate: (hash) => { location.hash = hash; },
  };
}

// A WebSocket whose upgrade was refused (a token expired while the
// server was away, or a server with a new secret) looks like any dropped
// connection. Asking over HTTP tells them apart; at most every 5 s.
async function recheck() {
  if (Date.now() - lastCheck < 5000) return;
  lastCheck = Date.now();
  const token = storedToken();
  const r = await checkToken(base, token);
  if (!r.ok && r.refused && ctx && storedToken() === token) signOut(refusal(r.message));
}

/**
 * Signs in with token, which the server accepted.
 * @param {string} token
 */
function signIn(token) {
  storeToken(token);
  ctx = connect();
  nav.hidden = false;
  signOutButton.hidden = false;
  conn.hidden = false;
  route();
}

/**
 * Closes the client, forgets the token and shows the sign-in view.
 * @param {string} [message] why
 */
function signOut(message) {
  ctx?.sb.close();
  ctx = null;
  forgetToken();
  nav.hidden = true;
  signOutButton.hidden = true;
  conn.hidden = true;
  showSignIn(message);
}

/** @param {string} [message] */
function showSignIn(message) {
  unmount?.();
  document.title = "Sign in · Switchboard";
  unmount = mountSignIn(main, { base, message, onSignedIn: (token) => signIn(token) });
  focusHeading();
}

/**
 * The views, by the hash's first segment.
 * @type {Record<string, { title: string, mount: (ctx: Context, main: HTMLElement, arg: string) => (() => void) | void }>}
 */
const views = {
  "": { title: "Overview", mount: mountOverview },
  "channels": { title: "Channels", mount: (c, m, arg) => (arg ? mountChannel(c, m, arg) : mountChannels(c, m)) },
  "methods": { title: "Methods", mount: mountMethods },
  "session": { title: "Session", mount: mountSession },
};

/** Shows the view the hash names: #/, #/channels, #/channels/NAME, #/methods, #/session. */
function route() {
  if (!ctx) return showSignIn();
  const path = location.hash.replace(/^#\/?/, "");
  const slash = path.indexOf("/");
  const top = slash < 0 ? path : path.slice(0, slash);
  let arg = slash < 0 ? "" : path.slice(slash + 1);
  try {
    arg = decodeURIComponent(arg);
  } catch {
    arg = "\u0000"; // not a valid encoding: no such view
  }
  const view = views[top];
  unmount?.();
  unmount = undefined;
  for (const a of nav.querySelectorAll("a")) {
    const target = a.getAttribute("href")?.replace(/^#\/?/, "") ?? "";
    if (target === top) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!view || arg.includes("\u0000") || (arg && top !== "channels")) {
    document.title = "Not found · Switchboard";
    replace(main, h("section", { class: "view" },
      heading("Not found"),
      h("p", null, "There is no such view. ", h("a", { href: "#/" }, "Go to the overview"), ".")));
  } else {
    document.title = `${arg || view.title} · Switchboard`;
    unmount = view.mount(ctx, main, arg);
  }
  focusHeading();
}

function focusHeading() {
  /** @type {HTMLElement | null} */ (main.querySelector("h1"))?.focus();
}

signOutButton.addEventListener("click", () => signOut("You signed out."));
window.addEventListener("hashchange", () => route());

// A token kept from earlier in this tab (a reload) is checked again first.
const kept = storedToken();
if (kept) {
  replace(main, h("p", { class: "hint" }, "Signing in…"));
  checkToken(base, kept).then((r) => {
    if (r.ok) signIn(kept);
    else {
      forgetToken();
      showSignIn(r.refused ? refusal(r.message) : `Cannot sign in: ${r.message}`);
    }
  });
} else {
  showSignIn();
}
