// openrpc.json as OpenRPC's own tools read it: @open-rpc/schema-utils-js
// validates it against the meta-schema and resolves its references, and
// @open-rpc/test-coverage calls every example over HTTP.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { parseOpenRPCDocument } from "@open-rpc/schema-utils-js";
import { startServer } from "./server.mjs";
import { document, documentPath, needsSocket, schemaErrors } from "./document.mjs";

const require = createRequire(import.meta.url);
const coverage = require("@open-rpc/test-coverage").default;
const ExamplesRule = require("@open-rpc/test-coverage/build/rules/examples-rule").default;

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server.stop();
});

test("parseOpenRPCDocument accepts the committed file and the served one", async () => {
  const parsed = await parseOpenRPCDocument(documentPath);
  assert.deepEqual(parsed.methods.map((m) => m.name), document.methods.map((m) => m.name));

  // What a user generating an SDK from a running server reads.
  const served = await parseOpenRPCDocument(`${server.base}/openrpc.json`);
  assert.deepEqual(served, parsed);
});

test("parseOpenRPCDocument refuses a broken document", async () => {
  // So that the test above could fail: the same document with a param
  // that lost its name, and one whose schema is not a schema.
  const nameless = structuredClone(document);
  delete nameless.methods[0].params[0].name;
  await assert.rejects(parseOpenRPCDocument(nameless), (err) => /"missingProperty": "name"/.test(err.message));
  const badSchema = structuredClone(document);
  badSchema.methods[0].params[0].schema = { type: 7 };
  await assert.rejects(parseOpenRPCDocument(badSchema), (err) => /params\[0\]\.schema/.test(err.message));
});

// SchemaExamplesRule is test-coverage's ExamplesRule, which calls each
// example's params and wants the example's result back or, failing that,
// a result that follows the method's result schema. Its schema check uses
// Ajv 7 in strict mode without ajv-formats, which throws on format
// "date-time" and so fails every result that holds a time. This rule
// keeps the calls and the equality check and repeats only the schema
// check, with formats known.
class SchemaExamplesRule extends ExamplesRule {
  validateCall(call) {
    super.validateCall(call);
    if (!call.valid && call.error === undefined && call.result !== undefined) {
      const why = schemaErrors(call.resultSchema, call.result);
      call.valid = why === null;
      call.reason = why === null ? undefined : `${JSON.stringify(call.result)} does not follow the result schema: ${why}`;
    }
    return call;
  }
}

const quiet = { onBegin() {}, onTestBegin() {}, onTestEnd() {}, onEnd() {} };

test("test-coverage: every example, called over HTTP, gets a result that follows its schema", async () => {
  // test-coverage takes its endpoint from the document's servers; the
  // committed document names none, since it cannot know where it will be
  // served, so the running server's is added here.
  const doc = await parseOpenRPCDocument(`${server.base}/openrpc.json`);
  doc.servers = [{ name: "test", url: server.rpcURL }];
  const skip = doc.methods.filter(needsSocket).map((m) => m.name);
  assert.deepEqual(skip.sort(), ["channelSubscribe", "channelUnsubscribe", "sessionRefresh"]);

  // Its HTTP transport sends no token; this one is the same with one.
  let id = 0;
  const transport = async (url, method, params) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${server.token}` },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
    });
    return res.json();
  };

  const calls = await coverage({
    openrpcDocument: doc,
    transport,
    reporters: [quiet],
    rules: [new SchemaExamplesRule({ skip })],
    skip,
    only: [],
  });

  const examples = doc.methods.filter((m) => !skip.includes(m.name)).flatMap((m) => m.examples.map((x) => `${m.name} ${x.name}`));
  assert.deepEqual(calls.map((c) => `${c.methodName} ${c.title.split(" ").pop()}`), examples);
  for (const c of calls) {
    assert.ok(c.valid, `${c.methodName} ${JSON.stringify(c.params)}: ${c.reason || JSON.stringify(c.error || c.requestError)}`);
  }
});
