// @ts-check
// The access token: kept in sessionStorage only (gone with the tab, never
// in localStorage or a cookie), checked over HTTP before use, and decoded
// for the Session view (header and claims; never the signature).

/** @typedef {import("../client/dist/switchboard.js").WhoamiResult} WhoamiResult */

const key = "switchboard.console.token";

/** The token signed in with, or "" when signed out. */
export function storedToken() {
  try {
    return sessionStorage.getItem(key) ?? "";
  } catch {
    return ""; // storage disabled: nothing kept
  }
}

/** @param {string} token */
export function storeToken(token) {
  sessionStorage.setItem(key, token);
}

export function forgetToken() {
  try {
    sessionStorage.removeItem(key);
  } catch {
    // storage disabled: nothing to forget
  }
}

/**
 * The answer to a token check: ok with the caller's sessionWhoami; or
 * refused by the server (HTTP 401, with its message); or not checked, the
 * server being unreachable or answering something else.
 * @typedef {{ ok: true, whoami: WhoamiResult } | { ok: false, refused: boolean, message: string }} TokenCheck
 */

/**
 * Checks token with one HTTP POST of sessionWhoami to the server's rpc
 * route. Over HTTP a refusal is a 401 the page can read; a WebSocket's
 * refused upgrade only looks like a dropped connection (1006).
 * @param {string} base the console's URL, ending in /
 * @param {string} token
 * @returns {Promise<TokenCheck>}
 */
export async function checkToken(base, token) {
  let res;
  try {
    res = await fetch(new URL("rpc", base), {
      method: "POST",
      headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "sessionWhoami" }),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    // fetch refuses header values with characters outside Latin-1 before
    // sending anything: such a string cannot be a token.
    if (err instanceof TypeError && /header|ByteString|ISO-8859-1/i.test(err.message)) {
      return { ok: false, refused: true, message: "this is not a token: it holds characters a token cannot have" };
    }
    return { ok: false, refused: false, message: `the server could not be reached (${err instanceof Error ? err.message : String(err)})` };
  }
  /** @type {any} */
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: said below by the status
  }
  const serverMessage = typeof body?.error?.message === "string" ? body.error.message : "";
  if (res.status === 401 || body?.error?.code === -32001) {
    return { ok: false, refused: true, message: serverMessage || "unauthorized" };
  }
  if (res.ok && body?.result && typeof body.result.user === "string") return { ok: true, whoami: body.result };
  return { ok: false, refused: false, message: `the server answered HTTP ${res.status}${serverMessage ? ": " + serverMessage : ""}` };
}

/**
 * A JWT's header and claims, decoded from its first two parts. The third,
 * the signature, is never decoded nor returned.
 * @param {string} token
 * @returns {{ header: Record<string, unknown>, claims: Record<string, unknown> }}
 */
export function decodeToken(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error(`a JWT has three parts separated by dots; this has ${parts.length}`);
  return { header: decodePart(parts[0] ?? "", "header"), claims: decodePart(parts[1] ?? "", "claims") };
}

/**
 * @param {string} part base64url of a JSON object
 * @param {string} what
 * @returns {Record<string, unknown>}
 */
function decodePart(part, what) {
  let value;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new Error(`the token's ${what} cannot be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error(`the token's ${what} is not a JSON object`);
  return value;
}

/**
 * The message for a refusal: the server's own words after ours.
 * @param {string} message the server's
 */
export function refusal(message) {
  return /expired/i.test(message) ? "Your token expired: sign in again" : `The server refused this token: ${message}`;
}
