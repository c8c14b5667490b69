package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The OpenRPC meta-schema, and the JSON Schema meta-schema it refers to
// (https://meta.json-schema.tools), are kept in testdata so that the test
// needs no network. See testdata/README.md for their versions and how to
// refresh them:
//
//	openrpc-meta-schema.json      @open-rpc/meta-schema 1.14.9 (npm)
//	json-schema-meta-schema.json  @json-schema-tools/meta-schema 1.8.0 (npm)
const (
	openrpcMetaSchemaURL    = "https://meta.open-rpc.org/"
	jsonSchemaMetaSchemaURL = "https://meta.json-schema.tools/"
)

// loadJSON reads a JSON file the way the validator wants it (numbers as
// json.Number).
func loadJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// loadMetaSchema reads a meta-schema from testdata. Both name themselves
// as their own "$schema" (https://meta.json-schema.tools/), which no
// validator knows; they are written in draft-07, so "$schema" is dropped
// and draft-07 used instead.
func loadMetaSchema(t *testing.T, name string) any {
	t.Helper()
	v := loadJSON(t, "testdata/"+name)
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is not a JSON object", name)
	}
	delete(m, "$schema")
	return m
}

// TestOpenRPCMetaSchema validates the committed openrpc.json against the
// OpenRPC meta-schema.
func TestOpenRPCMetaSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	// openrpc-meta-schema.json refers to it both with and without the
	// trailing slash of its $id.
	for _, u := range []string{jsonSchemaMetaSchemaURL, strings.TrimSuffix(jsonSchemaMetaSchemaURL, "/")} {
		if err := c.AddResource(u, loadMetaSchema(t, "json-schema-meta-schema.json")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddResource(openrpcMetaSchemaURL, loadMetaSchema(t, "openrpc-meta-schema.json")); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(openrpcMetaSchemaURL)
	if err != nil {
		t.Fatalf("compile the OpenRPC meta-schema: %v", err)
	}
	if err := sch.Validate(loadJSON(t, "../openrpc.json")); err != nil {
		t.Fatalf("openrpc.json does not follow the OpenRPC meta-schema:\n%v", err)
	}

	// The validator must be able to fail: a document that breaks the
	// meta-schema in a few ways is refused.
	for name, bad := range map[string]string{
		"no methods":       `{"openrpc":"1.3.2","info":{"title":"x","version":"1"}}`,
		"unknown version":  `{"openrpc":"9.9.9","info":{"title":"x","version":"1"},"methods":[]}`,
		"method no result": `{"openrpc":"1.3.2","info":{"title":"x","version":"1"},"methods":[{"name":"m","params":[],"bogus":1}]}`,
		"bad schema":       `{"openrpc":"1.3.2","info":{"title":"x","version":"1"},"methods":[{"name":"m","params":[{"name":"p","schema":{"type":7}}],"result":{"name":"r","schema":{}}}]}`,
		// Why ErrorCode.Name is not encoded: error objects allow no
		// other members.
		"named error": `{"openrpc":"1.3.2","info":{"title":"x","version":"1"},"methods":[],"components":{"errors":{"E":{"code":1,"message":"m","name":"E"}}}}`,
	} {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		if err != nil {
			t.Fatal(err)
		}
		if sch.Validate(v) == nil {
			t.Errorf("meta-schema accepted a document with %s", name)
		}
	}
}

// TestOpenRPCCompleteness checks what the meta-schema leaves optional but
// SDK generators and readers of the document need: summaries, titled
// schemas, errors and examples for every method, and that the examples
// follow the method's own schemas.
func TestOpenRPCCompleteness(t *testing.T) {
	doc, ok := loadJSON(t, "../openrpc.json").(map[string]any)
	if !ok {
		t.Fatal("openrpc.json is not an object")
	}
	methods, ok := doc["methods"].([]any)
	if !ok || len(methods) == 0 {
		t.Fatal("openrpc.json has no methods")
	}
	seen := map[string]bool{}
	for i, mv := range methods {
		m, _ := mv.(map[string]any)
		name, _ := m["name"].(string)
		if name == "" {
			t.Errorf("method %d has no name", i)
			continue
		}
		if seen[name] {
			t.Errorf("method %s is listed twice", name)
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) { checkMethodDoc(t, m) })
	}
	for _, want := range []string{"serverPing", "serverInfo", "sessionWhoami", "channelPublish", "channelSubscribe"} {
		if !seen[want] {
			t.Errorf("openrpc.json does not list %s", want)
		}
	}
	// OpenRPC defines rpc.discover, and the server answers it (see
	// TestDiscover), but it is not listed: a dotted name makes
	// @open-rpc/generator write TypeScript that does not compile.
	if seen["rpc.discover"] {
		t.Error("openrpc.json lists rpc.discover")
	}

	// Notifications are described in x-notifications, which is always
	// there so that tools and readers know where to look.
	raw, ok := doc["x-notifications"]
	if !ok {
		t.Fatal("openrpc.json has no x-notifications array")
	}
	notes, ok := raw.([]any)
	if !ok {
		t.Fatalf("x-notifications is %T, want an array", raw)
	}
	for i, nv := range notes {
		n, _ := nv.(map[string]any)
		if s, _ := n["name"].(string); s == "" {
			t.Errorf("x-notifications[%d] has no name", i)
		}
		if _, ok := n["params"].([]any); !ok {
			t.Errorf("x-notifications[%d] has no params array", i)
		}
	}

	checkErrorComponents(t, doc, methods)
	checkTitles(t, doc)
}

// checkErrorComponents checks components.errors, where SDK generators
// find a name for each code: every code a method lists is there, under
// an identifier, with the same message.
func checkErrorComponents(t *testing.T, doc map[string]any, methods []any) {
	components, _ := doc["components"].(map[string]any)
	named, ok := components["errors"].(map[string]any)
	if !ok || len(named) == 0 {
		t.Fatal("openrpc.json has no components.errors")
	}
	byCode := map[string]string{} // code → name
	for name, ev := range named {
		e, _ := ev.(map[string]any)
		code := fmt.Sprint(e["code"])
		if !isIdentifier(name) {
			t.Errorf("components.errors name %q is not an identifier: SDKs name a constant after it", name)
		}
		if prev, ok := byCode[code]; ok {
			t.Errorf("code %s is named both %s and %s", code, prev, name)
		}
		byCode[code] = name
	}
	for _, mv := range methods {
		m, _ := mv.(map[string]any)
		errs, _ := m["errors"].([]any)
		for _, ev := range errs {
			e, _ := ev.(map[string]any)
			code := fmt.Sprint(e["code"])
			name, ok := byCode[code]
			if !ok {
				t.Errorf("%v: error %s has no name in components.errors", m["name"], code)
				continue
			}
			if c, _ := named[name].(map[string]any); c["message"] != e["message"] {
				t.Errorf("%v: error %s says %q, components.errors[%s] %q", m["name"], code, e["message"], name, c["message"])
			}
		}
	}
}

// checkTitles checks that every schema in the document has a title, and
// that schemas sharing a title have the same shape. Generators name types
// after titles: an untitled schema gets an invented name
// (string_doaGddGA), and two shapes under one title become one type.
func checkTitles(t *testing.T, doc map[string]any) {
	shapes := map[string]string{} // title → shape
	where := map[string]string{}  // title → where it was first seen
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		title, _ := s["title"].(string)
		if title == "" {
			t.Errorf("%s: schema has no title", path)
		} else {
			shape := schemaShape(s)
			if prev, ok := shapes[title]; ok && prev != shape {
				t.Errorf("title %s names two shapes: %s at %s and %s at %s", title, prev, where[title], shape, path)
			} else if !ok {
				shapes[title], where[title] = shape, path
			}
		}
		props, _ := s["properties"].(map[string]any)
		for name, ps := range props {
			if m, ok := ps.(map[string]any); ok {
				walk(path+"."+name, m)
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(path+"[]", items)
		}
	}
	for _, list := range []string{"methods", "x-notifications"} {
		entries, _ := doc[list].([]any)
		for _, ev := range entries {
			e, _ := ev.(map[string]any)
			name, _ := e["name"].(string)
			params, _ := e["params"].([]any)
			for _, pv := range params {
				p, _ := pv.(map[string]any)
				if s, ok := p["schema"].(map[string]any); ok {
					walk(fmt.Sprintf("%s(%v)", name, p["name"]), s)
				}
			}
			if r, ok := e["result"].(map[string]any); ok {
				if s, ok := r["schema"].(map[string]any); ok {
					walk(name+" result", s)
				}
			}
		}
	}
}

// schemaShape is s as JSON without its descriptions, which may differ
// between uses of one type.
func schemaShape(s any) string {
	var strip func(v any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(v))
			for k, e := range v {
				if k != "description" {
					out[k] = strip(e)
				}
			}
			return out
		case []any:
			out := make([]any, len(v))
			for i, e := range v {
				out[i] = strip(e)
			}
			return out
		}
		return v
	}
	b, _ := json.Marshal(strip(s))
	return string(b)
}

// jsArrayMembers are the properties of a JavaScript array. The generated
// TypeScript client checks params with @open-rpc/schema-utils-js, which,
// for a method taking params either way, looks an omitted positional
// param up by name on the params array: a param named reverse finds
// Array.prototype.reverse and fails validation.
var jsArrayMembers = strings.Fields(`length constructor at concat copyWithin entries every fill filter find
	findIndex findLast findLastIndex flat flatMap forEach includes indexOf join keys lastIndexOf map pop push
	reduce reduceRight reverse shift slice some sort splice toLocaleString toReversed toSorted toSpliced
	toString unshift values with hasOwnProperty isPrototypeOf propertyIsEnumerable valueOf __proto__`)

// isIdentifier reports whether s is a letter followed by letters and
// digits, which every SDK language can use as a member name.
func isIdentifier(s string) bool {
	for i, c := range s {
		if !unicode.IsLetter(c) && (i == 0 || !unicode.IsDigit(c)) || c > unicode.MaxASCII {
			return false
		}
	}
	return s != ""
}

func checkMethodDoc(t *testing.T, m map[string]any) {
	if s, _ := m["summary"].(string); s == "" {
		t.Error("no summary")
	}
	if name, _ := m["name"].(string); !isIdentifier(name) {
		t.Errorf("method name %q is not an identifier: generated SDKs name a member after it", name)
	}

	result, _ := m["result"].(map[string]any)
	resultSchema, _ := result["schema"].(map[string]any)
	if resultSchema == nil {
		t.Fatal("no result schema")
	}
	if s, _ := resultSchema["title"].(string); s == "" {
		t.Error("result schema has no title")
	}

	params, ok := m["params"].([]any)
	if !ok {
		t.Fatal("no params array")
	}
	paramSchemas := map[string]map[string]any{}
	var paramOrder []string
	required := map[string]bool{}
	for i, pv := range params {
		p, _ := pv.(map[string]any)
		pname, _ := p["name"].(string)
		ps, _ := p["schema"].(map[string]any)
		if pname == "" || ps == nil {
			t.Errorf("param %d: name %q, schema %v", i, pname, ps)
			continue
		}
		paramSchemas[pname] = ps
		paramOrder = append(paramOrder, pname)
		// @open-rpc/typings makes a TypeScript parameter optional only
		// for an explicit "required": false.
		r, ok := p["required"].(bool)
		if !ok {
			t.Errorf("param %s: required is not set to true or false", pname)
		}
		if r {
			required[pname] = true
		}
		if slices.Contains(jsArrayMembers, pname) {
			t.Errorf("param %s is named like a JavaScript array member: generated clients validate it as Array.prototype.%s", pname, pname)
		}
	}

	errs, _ := m["errors"].([]any)
	if len(errs) == 0 {
		t.Error("no errors listed")
	}
	codes := map[string]bool{}
	for _, ev := range errs {
		e, _ := ev.(map[string]any)
		code := fmt.Sprint(e["code"])
		if codes[code] {
			t.Errorf("error %s listed twice", code)
		}
		codes[code] = true
		if s, _ := e["message"].(string); s == "" {
			t.Errorf("error %s has no message", code)
		}
	}

	examples, _ := m["examples"].([]any)
	if len(examples) == 0 {
		t.Fatal("no examples")
	}
	resultValidator := compileSchema(t, "result", resultSchema)
	for i, xv := range examples {
		x, _ := xv.(map[string]any)
		xname, _ := x["name"].(string)
		if xname == "" {
			t.Errorf("example %d has no name", i)
		}
		xparams, ok := x["params"].([]any)
		if !ok {
			t.Errorf("example %q has no params array", xname)
		}
		given := map[string]bool{}
		for i, xpv := range xparams {
			xp, _ := xpv.(map[string]any)
			pname, _ := xp["name"].(string)
			// Tools send example params by position, ignoring names, so
			// an example gives the method's first params, in order.
			if i >= len(paramOrder) || paramOrder[i] != pname {
				t.Errorf("example %q: param %d is %q; by position it would be %v", xname, i, pname, paramOrder)
			}
			ps, ok := paramSchemas[pname]
			if !ok {
				t.Errorf("example %q: param %q is not one of the method's", xname, pname)
				continue
			}
			given[pname] = true
			if err := compileSchema(t, "param "+pname, ps).Validate(xp["value"]); err != nil {
				t.Errorf("example %q: param %s does not follow its schema: %v", xname, pname, err)
			}
		}
		for pname := range required {
			if !given[pname] {
				t.Errorf("example %q lacks the required param %s", xname, pname)
			}
		}
		xresult, _ := x["result"].(map[string]any)
		if xresult == nil {
			t.Errorf("example %q has no result", xname)
			continue
		}
		if err := resultValidator.Validate(xresult["value"]); err != nil {
			t.Errorf("example %q: result does not follow the result schema: %v", xname, err)
		}
	}
}

// compileSchema compiles one schema of the document on its own.
func compileSchema(t *testing.T, what string, schema map[string]any) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	const loc = "mem:///schema.json"
	if err := c.AddResource(loc, schema); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		t.Fatalf("%s schema does not compile: %v", what, err)
	}
	return s
}
