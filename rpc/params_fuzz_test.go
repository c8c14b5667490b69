package rpc

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// fuzzParams has a field of each kind params come in.
type fuzzParams struct {
	Name  string          `json:"name"`
	Count int             `json:"count,omitempty"`
	Ok    bool            `json:"ok,omitempty"`
	Tags  []string        `json:"tags,omitempty"`
	Since *fuzzPosition   `json:"since,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

type fuzzPosition struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// FuzzDecodeParams checks the params decoder against encoding/json: it
// never panics, fails only with CodeInvalidParams, refuses what is not
// UTF-8, and what it accepts by name, encoding/json reads the same way
// (but for the case of names, which it matches exactly, and nulls, which
// count as absent).
func FuzzDecodeParams(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a"}`,
		`{"name":"a","count":3,"ok":true,"tags":["x","y"],"since":{"offset":4,"epoch":"e"},"data":{"k":[1,2]}}`,
		`["a",3,true,["x"],{"offset":1,"epoch":"e"},"raw"]`,
		`["a"]`,
		`[]`,
		`{}`,
		`{"name":null}`,
		`{"Name":"a"}`,
		`{"name":"a","name":"b"}`,
		`{"name":1}`,
		`{"name":"a","count":1.5}`,
		`{"name":"a","count":-9223372036854775809}`,
		`{"name":"a","colour":"red"}`,
		`["a",1,true,[],null,null,7]`,
		"{\"name\":\"a\xffb\"}",
		"[\"a\",1,true,[\"\xed\xa0\x80\"]]",
		"{\"name\":\"a\",\"data\":\"\xc0\xaf\"}",
		`{"name":"\ud800"}`,
		`{"name":"a","since":{"offset":"1"}}`,
	} {
		f.Add([]byte(seed))
	}
	spec := newParamSpec(reflect.TypeFor[fuzzParams]())
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // parseRequest passes on valid JSON only
		}
		var p fuzzParams
		err := spec.decode(raw, reflect.ValueOf(&p).Elem())
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidParams || e.Message == "" {
				t.Fatalf("params %q: error %v, want CodeInvalidParams", raw, err)
			}
			return
		}
		if !utf8.Valid(raw) {
			t.Fatalf("params %q, not UTF-8, accepted as %+v", raw, p)
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("params %q: raw data %q is not JSON", raw, p.Data)
		}
		checkAgainstEncodingJSON(t, raw, p)
	})
}

// checkAgainstEncodingJSON decodes params given by name with encoding/json
// and compares, when its case-insensitive, last-wins reading cannot
// differ from the decoder's exact one.
func checkAgainstEncodingJSON(t *testing.T, raw []byte, got fuzzParams) {
	t.Helper()
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) != nil {
		return // by position
	}
	for k := range members {
		if !isFuzzParam(k) {
			return // a case variant: encoding/json would take it
		}
	}
	var want fuzzParams
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("params %q accepted as %+v; encoding/json refuses them: %v", raw, got, err)
	}
	if string(want.Data) == "null" {
		want.Data = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("params %q: decoded %+v, encoding/json %+v", raw, got, want)
	}
}

// isFuzzParam reports whether name is exactly one of fuzzParams' names.
func isFuzzParam(name string) bool {
	switch name {
	case "name", "count", "ok", "tags", "since", "data":
		return true
	}
	return false
}
