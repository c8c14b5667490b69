package rpc

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// fuzzMaxBatch is small so that the fuzzer reaches the batch limit.
const fuzzMaxBatch = 4

// FuzzParseMessage checks that parseMessage never panics and that what it
// returns is self-consistent: each rejected element comes with a valid
// error response, and each accepted one is a request object that says
// what the returned request says.
func FuzzParseMessage(f *testing.F) {
	for _, seed := range []string{
		// The examples of the JSON-RPC 2.0 specification.
		`{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`,
		`{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`,
		`{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`,
		`{"jsonrpc": "2.0", "method": "foobar"}`,
		`{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
		`{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
		`{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
		`[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]`,
		`[]`,
		`[1]`,
		`[1,2,3]`,
		`[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
		  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
		  {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
		  {"foo": "boo"},
		  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
		  {"jsonrpc": "2.0", "method": "get_data", "id": "9"}]`,
		`[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]`,
		// Beyond them.
		``,
		` `,
		`null`,
		`"hello"`,
		`{"jsonrpc":"2.0","method":"a\"b\u00e9","id":-1.5e3}`,
		`{"jsonrpc":"2.0","method":"m","id":null,"params":null}`,
		`{"jsonrpc":"2.0","method":"m","id":{"a":1}}`,
		`{"jsonrpc":"2.0","Method":"m","id":1}`,
		`{"jsonrpc":"2.0","method":"m","id":1,"id":2}`,
		`[{"jsonrpc":"2.0","method":"m","id":1},{"jsonrpc":"2.0","method":"m","id":2},{},{},{}]`,
		"\t\r\n [ {\"jsonrpc\":\"2.0\",\"method\":\"m\"} ] ",
		// Invalid UTF-8: in a method name, a parse error; in params, for
		// the params' decoder to refuse.
		"{\"jsonrpc\":\"2.0\",\"method\":\"notify\xf8hello\",\"id\":1}",
		"{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[\"\xff\"],\"id\":\"\xc3\"}",
		"[{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"d\":\"\xed\xa0\x80\"},\"id\":1}]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, batch := parseMessage(data, fuzzMaxBatch)
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		startsArray := len(trimmed) > 0 && trimmed[0] == '['
		if batch && !startsArray {
			t.Fatalf("batch reply for a message that is not an array")
		}
		if !batch && len(items) != 1 {
			t.Fatalf("%d items for a single message, want 1", len(items))
		}
		if batch && (len(items) == 0 || len(items) > fuzzMaxBatch) {
			t.Fatalf("batch of %d items, limit %d", len(items), fuzzMaxBatch)
		}

		// The elements the items came from.
		elems := []json.RawMessage{data}
		if batch {
			if err := json.Unmarshal(data, &elems); err != nil {
				t.Fatalf("batch from a message that is not a JSON array: %v", err)
			}
			if len(elems) != len(items) {
				t.Fatalf("%d items from %d elements", len(items), len(elems))
			}
		}
		for i, it := range items {
			if it.reply != nil {
				checkRejection(t, it.reply)
				continue
			}
			checkAccepted(t, elems[i], it.req)
		}
	})
}

// checkRejection checks an error response decided while parsing.
func checkRejection(t *testing.T, reply []byte) {
	t.Helper()
	var r struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"` // "null" is kept, absence is nil
		Result  json.RawMessage `json:"result"`
		Error   *Error          `json:"error"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		t.Fatalf("reply %s is not valid JSON: %v", reply, err)
	}
	if !utf8.Valid(reply) {
		t.Fatalf("reply %q is not valid UTF-8", reply)
	}
	if r.JSONRPC != "2.0" || r.ID == nil || r.Result != nil || r.Error == nil || r.Error.Message == "" {
		t.Fatalf("reply %s is not a JSON-RPC 2.0 error response", reply)
	}
	if c := r.Error.Code; c != CodeParseError && c != CodeInvalidRequest {
		t.Fatalf("reply %s: code %d while parsing", reply, c)
	}
}

// checkAccepted checks that elem, the element a request came from, is a
// request object that says what req says, and that the replies it may get
// are valid JSON.
func checkAccepted(t *testing.T, elem json.RawMessage, req request) {
	t.Helper()
	if len(req.params) > 0 && req.params[0] != '{' && req.params[0] != '[' {
		t.Fatalf("params %s: neither an object nor an array", req.params)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(elem, &members); err != nil || members == nil {
		t.Fatalf("request from %s, which is not a JSON object", elem)
	}
	var version, method string
	if json.Unmarshal(members["jsonrpc"], &version) != nil || version != "2.0" {
		t.Fatalf("request from %s, whose jsonrpc is not \"2.0\"", elem)
	}
	if json.Unmarshal(members["method"], &method) != nil || method != req.method {
		t.Fatalf("request for method %q from %s", req.method, elem)
	}
	if id, ok := members["id"]; ok != !req.notification() || !bytes.Equal(id, req.id) {
		t.Fatalf("request with id %s from %s", req.id, elem)
	}
	// Only params may hold bytes that are not UTF-8: the rest is echoed.
	// (Every copy of the params goes, so that one elsewhere is no false
	// alarm.)
	if outside := bytes.ReplaceAll(elem, req.params, nil); !utf8.Valid(outside) || !utf8.Valid(req.id) {
		t.Fatalf("request accepted from %q, not UTF-8 outside its params", elem)
	}
	for _, reply := range [][]byte{
		appendResult(nil, req.id, json.RawMessage(`true`)),
		appendError(nil, req.id, Errorf(CodeMethodNotFound, "Method not found: %q", req.method)),
	} {
		if !json.Valid(reply) || !utf8.Valid(reply) {
			t.Fatalf("reply %q to %q is not valid JSON in UTF-8", reply, elem)
		}
	}
}
