// The committed openrpc.json, and validators for the schemas in it.
import { readFileSync } from "node:fs";
import path from "node:path";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { repoRoot } from "./server.mjs";

export const documentPath = path.join(repoRoot, "openrpc.json");
export const document = JSON.parse(readFileSync(documentPath, "utf8"));

// The schemas are draft-07 and use format "date-time", which Ajv checks
// only with ajv-formats.
const ajv = new Ajv({ allErrors: true });
addFormats(ajv);

export function method(name) {
  const m = document.methods.find((m) => m.name === name);
  if (!m) throw new Error(`openrpc.json has no method ${name}`);
  return m;
}

export function notification(name) {
  const n = document["x-notifications"].find((n) => n.name === name);
  if (!n) throw new Error(`openrpc.json has no notification ${name} in x-notifications`);
  return n;
}

// resultErrors returns why value does not follow the result schema of
// method name, or null when it does.
export function resultErrors(name, value) {
  return schemaErrors(method(name).result.schema, value);
}

// notificationErrors returns why params (sent by name, as the server
// sends them) do not follow notification name's params, or null.
export function notificationErrors(name, params) {
  const n = notification(name);
  const schema = {
    type: "object",
    properties: Object.fromEntries(n.params.map((p) => [p.name, p.schema])),
    required: n.params.filter((p) => p.required).map((p) => p.name),
    additionalProperties: false,
  };
  return schemaErrors(schema, params);
}

export function schemaErrors(schema, value) {
  const validate = ajv.compile(schema);
  return validate(value) ? null : ajv.errorsText(validate.errors);
}

// needsSocket reports whether method m is documented as WebSocket-only
// (it lists the -32010 error).
export function needsSocket(m) {
  return (m.errors || []).some((e) => e.code === -32010);
}
