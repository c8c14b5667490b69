package rpc

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzEachMember checks eachMember against encoding/json: for every valid
// JSON document, it finds an object exactly when encoding/json decodes
// one into a map, with the same members (the last of repeated keys) and
// the same values.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}],"d":"x\"y","e":null,"f":true,"g":-1.5e3 } `,
		`{"a":1,"a":2}`, `{"\u0061":{"x":[[]]}}`, `[1,2]`, `"s"`, `null`, `{"k":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		got := map[string]json.RawMessage{}
		isObject, err := eachMember(data, func(key string, value []byte) error {
			got[key] = value
			return nil
		})
		if err != nil {
			t.Fatalf("eachMember(%q): %v", data, err)
		}
		if wantObject := wantErr == nil && want != nil; isObject != wantObject {
			t.Fatalf("eachMember(%q) says object=%v; encoding/json says %v (%v)", data, isObject, wantObject, wantErr)
		}
		if !isObject {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("eachMember(%q) found %d members, encoding/json %d", data, len(got), len(want))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !bytes.Equal(bytes.TrimSpace(g), bytes.TrimSpace(w)) {
				t.Fatalf("eachMember(%q): member %q is %q, encoding/json says %q", data, k, g, w)
			}
		}
	})
}
