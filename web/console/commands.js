// @ts-check
// The same call as a shell command: with curl over HTTP POST, or with the
// switchboard binary's call command. Neither holds the token: both read
// it from $SWITCHBOARD_TOKEN.

/**
 * Quotes s for a POSIX shell: as it is when it holds only characters no
 * shell treats specially, otherwise in single quotes, each single quote
 * written as '\'' (close, escaped quote, reopen).
 * @param {string} s
 */
export function shellQuote(s) {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * @param {Record<string, unknown>} params
 */
function hasParams(params) {
  return Object.keys(params).length > 0;
}

/**
 * The call as curl: a JSON-RPC request POSTed to the server's rpc route.
 * @param {string} base the console's URL, ending in /
 * @param {string} method
 * @param {Record<string, unknown>} params by name, empty optional ones left out
 */
export function curlCommand(base, method, params) {
  const request = { jsonrpc: "2.0", id: 1, method, ...(hasParams(params) && { params }) };
  return [
    "curl -s", shellQuote(new URL("rpc", base).href),
    `-H "Authorization: Bearer $SWITCHBOARD_TOKEN"`,
    "-H 'Content-Type: application/json'",
    "-d", shellQuote(JSON.stringify(request)),
  ].join(" ");
}

/**
 * The call as `switchboard call`, which prints the result.
 * @param {string} base the console's URL, ending in /
 * @param {string} method
 * @param {Record<string, unknown>} params
 */
export function cliCommand(base, method, params) {
  const parts = ["switchboard call --url", shellQuote(base), shellQuote(method)];
  if (hasParams(params)) parts.push(shellQuote(JSON.stringify(params)));
  return parts.join(" ");
}
