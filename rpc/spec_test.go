package rpc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/rpc"
)

// The methods used by the examples of the JSON-RPC 2.0 specification
// (https://www.jsonrpc.org/specification#examples).
type subtractParams struct {
	Minuend    float64 `json:"minuend"`
	Subtrahend float64 `json:"subtrahend"`
}

type numbers struct {
	A float64 `json:"a,omitempty"`
	B float64 `json:"b,omitempty"`
	C float64 `json:"c,omitempty"`
	D float64 `json:"d,omitempty"`
	E float64 `json:"e,omitempty"`
}

func registerSpecMethods(reg *rpc.Registry) {
	rpc.Register(reg, rpc.Method{Name: "subtract"}, func(_ context.Context, _ *rpc.Session, p subtractParams) (float64, error) {
		return p.Minuend - p.Subtrahend, nil
	})
	sum := func(_ context.Context, _ *rpc.Session, p numbers) (float64, error) {
		return p.A + p.B + p.C + p.D + p.E, nil
	}
	rpc.Register(reg, rpc.Method{Name: "sum"}, sum)
	rpc.Register(reg, rpc.Method{Name: "notify_sum"}, sum)
	rpc.Register(reg, rpc.Method{Name: "update"}, sum)
	rpc.Register(reg, rpc.Method{Name: "notify_hello"}, sum)
	rpc.Register(reg, rpc.Method{Name: "get_data"}, func(context.Context, *rpc.Session, struct{}) ([]any, error) {
		return []any{"hello", 5}, nil
	})
}

// want is one expected response: an id and either a result or an error code.
type want struct {
	id     string // raw JSON
	result string // raw JSON, when code is 0
	code   int
}

type specCase struct {
	name    string
	request string
	batch   bool   // the reply must be an array
	replies []want // nil: no reply at all
}

var specCases = []specCase{
	{"positional params", `{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`,
		false, []want{{id: `1`, result: `19`}}},
	{"positional params reversed", `{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}`,
		false, []want{{id: `2`, result: `-19`}}},
	{"named params", `{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`,
		false, []want{{id: `3`, result: `19`}}},
	{"named params reordered", `{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}`,
		false, []want{{id: `4`, result: `19`}}},
	{"notification", `{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`, false, nil},
	{"notification of unknown method", `{"jsonrpc": "2.0", "method": "foobar"}`, false, nil},
	{"unknown method", `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
		false, []want{{id: `"1"`, code: -32601}}},
	{"invalid JSON", `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
		false, []want{{id: `null`, code: -32700}}},
	{"invalid request object", `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
		false, []want{{id: `null`, code: -32600}}},
	{"batch, invalid JSON", `[
		{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
		{"jsonrpc": "2.0", "method"
	]`, false, []want{{id: `null`, code: -32700}}},
	{"empty batch", `[]`, false, []want{{id: `null`, code: -32600}}},
	{"invalid batch of one", `[1]`, true, []want{{id: `null`, code: -32600}}},
	{"invalid batch", `[1,2,3]`, true, []want{{id: `null`, code: -32600}, {id: `null`, code: -32600}, {id: `null`, code: -32600}}},
	{"mixed batch", `[
		{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
		{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
		{"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
		{"foo": "boo"},
		{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
		{"jsonrpc": "2.0", "method": "get_data", "id": "9"}
	]`, true, []want{
		{id: `"1"`, result: `7`},
		{id: `"2"`, result: `19`},
		{id: `null`, code: -32600},
		{id: `"5"`, code: -32601},
		{id: `"9"`, result: `["hello",5]`},
	}},
	{"batch of notifications", `[
		{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
		{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
	]`, false, nil},

	// Beyond the specification's own examples.
	{"negative id echoed", `{"jsonrpc":"2.0","method":"get_data","id":-1}`, false, []want{{id: `-1`, result: `["hello",5]`}}},
	{"fractional id echoed", `{"jsonrpc":"2.0","method":"get_data","id":1.5}`, false, []want{{id: `1.5`, result: `["hello",5]`}}},
	{"large id echoed", `{"jsonrpc":"2.0","method":"get_data","id":123456789012345678901234567890}`, false,
		[]want{{id: `123456789012345678901234567890`, result: `["hello",5]`}}},
	{"null id is a request", `{"jsonrpc":"2.0","method":"get_data","id":null}`, false, []want{{id: `null`, result: `["hello",5]`}}},
	{"string id echoed", `{"jsonrpc":"2.0","method":"get_data","id":"a\"b"}`, false, []want{{id: `"a\"b"`, result: `["hello",5]`}}},
	{"params as a string", `{"jsonrpc":"2.0","method":"subtract","params":"bar","id":7}`, false, []want{{id: `7`, code: -32600}}},
	{"params null", `{"jsonrpc":"2.0","method":"subtract","params":null,"id":7}`, false, []want{{id: `7`, code: -32600}}},
	{"jsonrpc missing", `{"method":"get_data","id":7}`, false, []want{{id: `7`, code: -32600}}},
	{"jsonrpc wrong", `{"jsonrpc":"1.0","method":"get_data","id":7}`, false, []want{{id: `7`, code: -32600}}},
	{"jsonrpc not a string", `{"jsonrpc":2.0,"method":"get_data","id":7}`, false, []want{{id: `7`, code: -32600}}},
	{"member names are case-sensitive", `{"jsonrpc":"2.0","Method":"get_data","id":7}`, false, []want{{id: `7`, code: -32600}}},
	{"id of the wrong type", `{"jsonrpc":"2.0","method":"get_data","id":{"a":1}}`, false, []want{{id: `null`, code: -32600}}},
	{"not an object", `"hello"`, false, []want{{id: `null`, code: -32600}}},
	{"empty message", ``, false, []want{{id: `null`, code: -32700}}},
	{"missing param", `{"jsonrpc":"2.0","method":"subtract","params":{"minuend":1},"id":8}`, false, []want{{id: `8`, code: -32602}}},
	{"unknown param", `{"jsonrpc":"2.0","method":"subtract","params":{"minuend":1,"subtrahend":2,"x":3},"id":8}`, false, []want{{id: `8`, code: -32602}}},
	{"param of the wrong type", `{"jsonrpc":"2.0","method":"subtract","params":{"minuend":"1","subtrahend":2},"id":8}`, false, []want{{id: `8`, code: -32602}}},
	{"too many positional params", `{"jsonrpc":"2.0","method":"subtract","params":[1,2,3],"id":8}`, false, []want{{id: `8`, code: -32602}}},

	// JSON is UTF-8, and whatever the server echoes goes out in text
	// frames: bytes that are not UTF-8 are refused, and the connection
	// goes on. (Within params, see TestParamErrorsNameTheParam.)
	{"invalid UTF-8 in a string id", "{\"jsonrpc\":\"2.0\",\"method\":\"get_data\",\"id\":\"a\xffb\"}",
		false, []want{{id: `null`, code: -32700}}},
	{"invalid UTF-8 in the method", "{\"jsonrpc\":\"2.0\",\"method\":\"get_\xe2\x82data\",\"id\":8}",
		false, []want{{id: `null`, code: -32700}}},
	{"invalid UTF-8 in another member", "{\"jsonrpc\":\"2.0\",\"method\":\"get_data\",\"id\":8,\"x\":\"\xc0\xaf\"}",
		false, []want{{id: `null`, code: -32700}}},
	{"invalid UTF-8 in one call of a batch", "[{\"jsonrpc\":\"2.0\",\"method\":\"get_data\",\"id\":\"\xff\"}," +
		"{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":[3,\"\xed\xa0\x80\"],\"id\":2}," +
		"{\"jsonrpc\":\"2.0\",\"method\":\"get_data\",\"id\":3}]",
		true, []want{{id: `null`, code: -32700}, {id: `2`, code: -32602}, {id: `3`, result: `["hello",5]`}}},
}

func TestSpecOverWebSocket(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, nil)
	c := ts.dial()
	for _, tc := range specCases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.request)
			if tc.replies == nil {
				// Nothing must come back: the next reply is the marker's.
				reply := c.call(`{"jsonrpc":"2.0","method":"get_data","id":"marker"}`)
				checkReply(t, reply, false, []want{{id: `"marker"`, result: `["hello",5]`}})
				return
			}
			checkReply(t, c.recv(5*time.Second), tc.batch, tc.replies)
		})
	}
}

func TestSpecOverHTTP(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, nil)
	for _, tc := range specCases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ts.post(tc.request)
			if tc.replies == nil {
				if status != http.StatusNoContent || body != "" {
					t.Fatalf("got %d %q, want 204 and no body", status, body)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("status %d, body %s", status, body)
			}
			checkReply(t, body, tc.batch, tc.replies)
		})
	}
}

// checkReply compares a reply with the expected responses. Batch replies
// may list their responses in any order.
func checkReply(t testing.TB, reply string, batch bool, wants []want) {
	t.Helper()
	if !utf8.ValidString(reply) {
		t.Fatalf("reply %q is not valid UTF-8", reply)
	}
	var got []response
	trimmed := strings.TrimSpace(reply)
	if batch != strings.HasPrefix(trimmed, "[") {
		t.Fatalf("reply %s: want batch=%v", reply, batch)
	}
	if batch {
		if err := json.Unmarshal([]byte(reply), &got); err != nil {
			t.Fatalf("reply %s: %v", reply, err)
		}
	} else {
		var r response
		if err := json.Unmarshal([]byte(reply), &r); err != nil {
			t.Fatalf("reply %s: %v", reply, err)
		}
		got = []response{r}
	}
	render := func(id, result string, code int) string {
		if code != 0 {
			return id + " error " + itoa(code)
		}
		return id + " result " + compact(result)
	}
	var g, w []string
	for _, r := range got {
		if r.JSONRPC != "2.0" {
			t.Fatalf("reply %s: jsonrpc member is %q", reply, r.JSONRPC)
		}
		if (r.Error == nil) == (r.Result == nil) {
			t.Fatalf("reply %s: want exactly one of result and error", reply)
		}
		if r.Error != nil {
			if r.Error.Message == "" {
				t.Fatalf("reply %s: error without a message", reply)
			}
			g = append(g, render(string(r.ID), "", r.Error.Code))
		} else {
			g = append(g, render(string(r.ID), string(r.Result), 0))
		}
	}
	for _, x := range wants {
		w = append(w, render(x.id, x.result, x.code))
	}
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("reply %s\n got: %q\nwant: %q", reply, g, w)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
