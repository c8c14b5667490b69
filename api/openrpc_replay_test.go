package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// docEntry is a method or notification of openrpc.json, as far as these
// tests read it.
type docEntry struct {
	Name   string `json:"name"`
	Params []struct {
		Name     string         `json:"name"`
		Required bool           `json:"required"`
		Schema   map[string]any `json:"schema"`
	} `json:"params"`
	Result struct {
		Schema map[string]any `json:"schema"`
	} `json:"result"`
	Examples []struct {
		Name   string `json:"name"`
		Params []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		} `json:"params"`
	} `json:"examples"`
}

func readDoc(t *testing.T) (methods, notifications []docEntry) {
	t.Helper()
	b, err := os.ReadFile("../openrpc.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Methods       []docEntry `json:"methods"`
		Notifications []docEntry `json:"x-notifications"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openrpc.json: %v", err)
	}
	return doc.Methods, doc.Notifications
}

// validateJSON checks raw against schema, with formats asserted.
func validateJSON(t *testing.T, what string, schema map[string]any, raw json.RawMessage) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s is not JSON: %w", what, err)
	}
	// The validator reads numbers as json.Number; so must the schema.
	sb, _ := json.Marshal(schema)
	s, err := jsonschema.UnmarshalJSON(bytes.NewReader(sb))
	if err != nil {
		t.Fatal(err)
	}
	return compileSchema(t, what, s.(map[string]any)).Validate(v)
}

// TestOpenRPCExamplesReplay calls every example of openrpc.json against a
// live server, with params by position (as OpenRPC tools and generated
// SDKs send them) and by name, and checks that each call succeeds with a
// result that follows the method's result schema.
func TestOpenRPCExamplesReplay(t *testing.T) {
	methods, _ := readDoc(t)
	ta := servertest.Start(t, server.Config{})
	admin := ta.Token("alice", service.Permissions{Admin: true}, time.Hour)

	// Some examples describe a connection in a state: these calls put a
	// fresh connection in it first.
	before := map[string][]struct {
		method string
		params map[string]any
	}{
		"channelUnsubscribe": {{"channelSubscribe", map[string]any{"channel": "chat.lobby"}}},
	}
	// Some example values cannot work anywhere but in the docs: a token
	// is signed by one server's secret. These stand in for them.
	live := map[string]map[string]json.RawMessage{
		"sessionRefresh": {"token": json.RawMessage(mustJSON(admin))},
	}

	replayed := 0
	for _, m := range methods {
		if len(m.Examples) == 0 {
			t.Errorf("%s has no example", m.Name)
		}
		for _, x := range m.Examples {
			positional := make([]json.RawMessage, len(x.Params))
			named := make(map[string]json.RawMessage, len(x.Params))
			for i, p := range x.Params {
				v := p.Value
				if lv, ok := live[m.Name][p.Name]; ok {
					v = lv
				}
				positional[i] = v
				named[p.Name] = v
			}
			for form, params := range map[string]any{"by position": positional, "by name": named} {
				t.Run(fmt.Sprintf("%s/%s/%s", m.Name, x.Name, form), func(t *testing.T) {
					c := ta.HubClient(admin)
					defer c.Disconnect()
					for _, b := range before[m.Name] {
						if r := c.Call(b.method, b.params); r.Error != nil {
							t.Fatalf("%s %v, to prepare: %d %s", b.method, b.params, r.Error.Code, r.Error.Message)
						}
					}
					r := c.Call(m.Name, params)
					if r.Error != nil {
						t.Fatalf("%s %s: error %d %s", m.Name, mustJSON(params), r.Error.Code, r.Error.Message)
					}
					if err := validateJSON(t, m.Name+" result", m.Result.Schema, r.Result); err != nil {
						t.Errorf("%s %s: result %s does not follow the result schema:\n%v", m.Name, mustJSON(params), r.Result, err)
					}
				})
				replayed++
			}
		}
	}
	if replayed < 2*len(methods) {
		t.Errorf("replayed %d calls for %d methods", replayed, len(methods))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestOpenRPCNotifications makes the server send every notification that
// x-notifications describes, and checks each against its description:
// the params it lists, required ones present, nothing else.
func TestOpenRPCNotifications(t *testing.T) {
	_, notes := readDoc(t)
	ta := servertest.Start(t, server.Config{})
	admin := ta.Token("alice", service.Permissions{Admin: true}, time.Hour)

	watcher := ta.HubClient(admin)
	watcher.Subscribe(map[string]any{"channel": "doc.notes", "joinLeave": true})
	other := ta.HubClient(ta.Token("bob", service.Permissions{Admin: true}, time.Hour))
	other.Subscribe(map[string]any{"channel": "doc.notes"})                  // channelJoin
	other.Publish("doc.notes", map[string]any{"text": "hi"})                 // channelPublication
	other.Call("channelUnsubscribe", map[string]any{"channel": "doc.notes"}) // channelLeave
	other.Call("channelRemove", map[string]any{"channel": "doc.notes"})      // channelUnsubscribed

	// sessionExpiring: halfway through a token's life when it is shorter
	// than the notice.
	expiring := ta.HubClient(ta.Token("carol", service.Permissions{}, 2*time.Second))

	byName := map[string]docEntry{}
	for _, n := range notes {
		byName[n.Name] = n
	}
	var seen []string
	for i := range 5 {
		var n servertest.Notification
		if i < 4 {
			n = watcher.Next()
		} else {
			n = expiring.Next()
		}
		seen = append(seen, n.Method)
		d, ok := byName[n.Method]
		if !ok {
			t.Errorf("the server sent %s, which x-notifications does not describe", n.Method)
			continue
		}
		schema := map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{}, "required": []any{}}
		for _, p := range d.Params {
			schema["properties"].(map[string]any)[p.Name] = p.Schema
			if p.Required {
				schema["required"] = append(schema["required"].([]any), p.Name)
			}
		}
		if err := validateJSON(t, n.Method+" params", schema, n.Params); err != nil {
			t.Errorf("%s %s does not follow x-notifications:\n%v", n.Method, n.Params, err)
		}
	}
	want := []string{"channelJoin", "channelPublication", "channelLeave", "channelUnsubscribed", "sessionExpiring"}
	if !slices.Equal(seen, want) {
		t.Errorf("notifications %v, want %v", seen, want)
	}
	for name := range byName {
		if !slices.Contains(seen, name) {
			t.Errorf("x-notifications describes %s, which this test did not see", name)
		}
	}
}
