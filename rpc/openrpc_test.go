package rpc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/rpc"
)

type docParams struct {
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty" itemTitle:"Tag"`
	IDs  []string `json:"ids,omitempty"`
}

func docHandler(context.Context, *rpc.Session, docParams) (string, error) { return "", nil }

// TestDocumentForGenerators checks what Document does for SDK generators:
// rpc.* left out, every param's required said, slice items titled.
func TestDocumentForGenerators(t *testing.T) {
	reg := rpc.NewRegistry()
	rpc.Register(reg, rpc.Method{Name: "thingGet", Summary: "s"}, docHandler)
	rpc.RegisterDiscover(reg, rpc.Info{Title: "t", Version: "1"})
	doc, err := reg.Document(rpc.Info{Title: "t", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Methods) != 1 || doc.Methods[0].Name != "thingGet" {
		t.Fatalf("methods %+v, want thingGet alone (rpc.discover left out)", doc.Methods)
	}
	params := doc.Methods[0].Params
	want := map[string]bool{"name": true, "tags": false, "ids": false}
	for _, p := range params {
		if p.Required == nil || *p.Required != want[p.Name] {
			t.Errorf("param %s: required %v, want set to %v", p.Name, p.Required, want[p.Name])
		}
	}
	if got := params[1].Schema.Items.Title; got != "Tag" {
		t.Errorf("tags items titled %q, want the itemTitle tag's Tag", got)
	}
	if got := params[2].Schema.Items.Title; got != "IDsItem" {
		t.Errorf("ids items titled %q, want IDsItem", got)
	}
}

// TestDocumentRefusesDottedNames: a name a generated SDK cannot use as a
// member name fails the document, for methods and notifications.
func TestDocumentRefusesDottedNames(t *testing.T) {
	reg := rpc.NewRegistry()
	rpc.Register(reg, rpc.Method{Name: "thing.get", Summary: "s"}, docHandler)
	if _, err := reg.Document(rpc.Info{Title: "t", Version: "1"}); err == nil || !strings.Contains(err.Error(), "thing.get") {
		t.Errorf("method thing.get: Document error %v, want one naming it", err)
	}

	reg = rpc.NewRegistry()
	rpc.RegisterNotification[docParams](reg, "thing.changed", "s", "d")
	if _, err := reg.Document(rpc.Info{Title: "t", Version: "1"}); err == nil || !strings.Contains(err.Error(), "thing.changed") {
		t.Errorf("notification thing.changed: Document error %v, want one naming it", err)
	}
}

// TestDocumentComponentsErrors: components.errors names every code, with
// the code and message each method's errors list gives it.
func TestDocumentComponentsErrors(t *testing.T) {
	reg := rpc.NewRegistry()
	rpc.Register(reg, rpc.Method{Name: "thingGet", Summary: "s", Errors: []int{rpc.CodeNotFound}}, docHandler)
	doc, err := reg.Document(rpc.Info{Title: "t", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	errs := doc.Components.Errors
	if len(errs) != len(rpc.Codes) {
		t.Errorf("components.errors has %d entries, want one per code (%d)", len(errs), len(rpc.Codes))
	}
	for _, c := range rpc.Codes {
		if got, ok := errs[c.Name]; !ok || got != c {
			t.Errorf("components.errors[%s] = %+v, want %+v", c.Name, got, c)
		}
	}
	for _, e := range doc.Methods[0].Errors {
		if errs[e.Name] != e {
			t.Errorf("thingGet lists %+v, which components.errors does not name", e)
		}
	}
	if errs["NotFound"].Code != rpc.CodeNotFound {
		t.Errorf("components.errors[NotFound] = %+v, want code %d", errs["NotFound"], rpc.CodeNotFound)
	}
}
