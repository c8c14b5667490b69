// Writes src/contract.ts, the client's typed layer, from the repository's
// openrpc.json: a type for each titled object schema, params and result
// types for each method, payload types for each x-notifications entry,
// the error codes of components.errors as named constants, and a base
// class with one method per JSON-RPC method.
//
//   node scripts/generate.mjs           write src/contract.ts
//   node scripts/generate.mjs --check   fail if src/contract.ts is stale
//
// It understands the JSON Schema keywords the server's documents use and
// refuses any other, so that a new keyword is a decision, not a silent
// `unknown`.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const docPath = path.resolve(here, "..", "..", "..", "openrpc.json");
const outPath = path.resolve(here, "..", "src", "contract.ts");

const known = new Set(["title", "description", "type", "properties", "required", "items", "format", "minimum", "maximum", "enum", "additionalProperties"]);

// Named object types, by title, with the source of each so that two
// different shapes under one title are caught.
const named = new Map();

const pascal = (s) => s[0].toUpperCase() + s.slice(1);
const isIdentifier = (s) => /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s);

function comment(text, indent = "") {
  if (!text) return "";
  const lines = text.replace(/\*\//g, "*\\/").split("\n");
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} *${l ? " " + l : ""}`).join("\n")}\n${indent} */\n`;
}

function typeOf(schema, where) {
  for (const k of Object.keys(schema)) {
    if (!known.has(k)) throw new Error(`${where}: schema keyword ${JSON.stringify(k)} is not handled by the generator`);
  }
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  switch (schema.type) {
    case undefined:
      return "unknown"; // any JSON value
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "array": {
      const item = typeOf(schema.items ?? {}, `${where}[]`);
      return /^[\w.]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
    }
    case "object":
      return objectType(schema, where);
    default:
      throw new Error(`${where}: type ${JSON.stringify(schema.type)} is not handled by the generator`);
  }
}

function objectType(schema, where) {
  const required = new Set(schema.required ?? []);
  const members = Object.entries(schema.properties ?? {}).map(([name, prop]) =>
    member(name, prop, required.has(name), `${where}.${name}`));
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
    members.push(`  [key: string]: ${typeOf(schema.additionalProperties, `${where}[*]`)};\n`);
  }
  const body = `{\n${members.join("")}}`;
  if (!schema.title) return body;
  const prev = named.get(schema.title);
  if (prev && prev.body !== body) {
    throw new Error(`${where}: two different object schemas are titled ${schema.title} (the other at ${prev.where})`);
  }
  if (!prev) named.set(schema.title, { body, where, description: schema.description });
  return schema.title;
}

function member(name, schema, required, where) {
  const key = isIdentifier(name) ? name : JSON.stringify(name);
  return `${comment(schema.description, "  ")}  ${key}${required ? "" : "?"}: ${typeOf(schema, where)};\n`;
}

// paramsType is the one object a method's params are given as, by name.
function paramsType(name, params, where) {
  const members = params.map((p) =>
    member(p.name, { ...p.schema, description: p.description ?? p.schema.description }, p.required === true, `${where}.${p.name}`));
  return `export interface ${name} {\n${members.join("")}}\n`;
}

export function generate(doc) {
  named.clear();
  const out = [];
  const methods = [...doc.methods].sort((a, b) => a.name.localeCompare(b.name));
  const notifications = [...(doc["x-notifications"] ?? [])].sort((a, b) => a.name.localeCompare(b.name));

  const paramDecls = [];
  const rows = [];
  const calls = [];
  for (const m of methods) {
    if (!isIdentifier(m.name)) throw new Error(`method ${m.name}: not an identifier`);
    const P = `${pascal(m.name)}Params`;
    paramDecls.push(comment(`Params of {@link SwitchboardMethods.${m.name}}, by name.`) + paramsType(P, m.params, m.name));
    const R = typeOf(m.result.schema, `${m.name} result`);
    rows.push(`  ${m.name}: { params: ${P}; result: ${R} };\n`);
    const optional = !m.params.some((p) => p.required === true);
    const doc = [m.summary, m.description].filter(Boolean).join("\n\n");
    calls.push(comment(doc, "  ") +
      `  ${m.name}(params${optional ? "?" : ""}: ${P}, options?: CallOptions): Promise<${R}> {\n` +
      `    return this.call("${m.name}", params${optional ? " ?? {}" : ""}, options);\n  }\n`);
  }

  const payloads = [];
  const nrows = [];
  for (const n of notifications) {
    const T = pascal(n.name);
    payloads.push(comment([n.summary, n.description].filter(Boolean).join("\n\n")) + paramsType(T, n.params, n.name));
    nrows.push(`  ${n.name}: ${T};\n`);
  }

  const errors = doc.components?.errors ?? {};
  if (Object.keys(errors).length === 0) throw new Error("openrpc.json has no components.errors to name the error codes after");
  const codes = Object.entries(errors).sort((a, b) => b[1].code - a[1].code || a[0].localeCompare(b[0]));

  out.push(`// Generated by scripts/generate.mjs from openrpc.json (${doc.info.title} ${doc.info.version}); do not edit.\n`);
  out.push(`// Run \`make client\` after changing the contract.\n\n`);
  for (const [title, { body, description }] of [...named].sort((a, b) => a[0].localeCompare(b[0]))) {
    out.push(comment(description) + `export interface ${title} ${body}\n\n`);
  }
  out.push(paramDecls.join("\n") + "\n");
  out.push(payloads.join("\n") + "\n");
  out.push(comment("Each method's params and result, by method name: the types behind {@link SwitchboardMethods.call}."));
  out.push(`export interface MethodMap {\n${rows.join("")}}\n\n`);
  out.push(comment("Each notification's params, by notification name."));
  out.push(`export interface NotificationMap {\n${nrows.join("")}}\n\n`);
  out.push(comment("The JSON-RPC error codes the server answers with, by name (components.errors in openrpc.json)."));
  out.push(`export const ErrorCode = {\n${codes.map(([name, e]) => comment(e.message, "  ") + `  ${name}: ${e.code},\n`).join("")}} as const;\n\n`);
  out.push(comment("One of the values of {@link ErrorCode}."));
  out.push(`export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];\n\n`);
  out.push(comment("Options of one call."));
  out.push(`export interface CallOptions {\n` +
    `  /** Cancels the call: it rejects with the signal's reason, and a reply that comes later is dropped. */\n  signal?: AbortSignal;\n` +
    `  /** How long to wait for the reply, including any wait for a connection; the client's \`timeoutMs\` by default. */\n  timeoutMs?: number;\n}\n\n`);
  out.push(comment("One typed method per JSON-RPC method of the contract, each taking its params by name as one object."));
  out.push(`export abstract class SwitchboardMethods {\n` +
    comment("Calls method with params and resolves with its result; rejects with a SwitchboardError for a server error.", "  ") +
    `  abstract call<M extends keyof MethodMap>(method: M, params: MethodMap[M]["params"], options?: CallOptions): Promise<MethodMap[M]["result"]>;\n` +
    `  abstract call(method: string, params?: object | unknown[], options?: CallOptions): Promise<unknown>;\n\n` +
    calls.join("\n") + `}\n`);
  return out.join("");
}

const doc = JSON.parse(readFileSync(docPath, "utf8"));
const text = generate(doc);
if (process.argv.includes("--check")) {
  let have = "";
  try { have = readFileSync(outPath, "utf8"); } catch { /* missing is stale */ }
  if (have !== text) {
    console.error("web/client/src/contract.ts is stale: openrpc.json changed. Run `make client` and commit the result.");
    process.exit(1);
  }
} else {
  writeFileSync(outPath, text);
}
