package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// OpenRPCVersion is the version of the OpenRPC specification the document
// follows: the newest that today's OpenRPC tooling accepts.
const OpenRPCVersion = "1.3.2"

// Info is the document's info object.
type Info struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version"`
}

// Document is an OpenRPC document. Server-to-client notifications have no
// place in OpenRPC yet, so they are described in the extension field
// x-notifications, each as a method-like object with params and no result.
type Document struct {
	OpenRPC       string            `json:"openrpc"`
	Info          Info              `json:"info"`
	Methods       []MethodDoc       `json:"methods"`
	Notifications []NotificationDoc `json:"x-notifications"`
	Components    Components        `json:"components"`
}

// Components is an OpenRPC components object. Only errors are used: every
// code by name, so that SDK generators can export named constants, which
// the methods' anonymous "errors" lists cannot give them.
type Components struct {
	Errors map[string]ErrorCode `json:"errors"`
}

// MethodDoc is an OpenRPC method object.
type MethodDoc struct {
	Name           string           `json:"name"`
	Summary        string           `json:"summary,omitempty"`
	Description    string           `json:"description,omitempty"`
	ParamStructure string           `json:"paramStructure"`
	Params         []ContentDoc     `json:"params"`
	Result         ContentDoc       `json:"result"`
	Errors         []ErrorCode      `json:"errors,omitempty"`
	Examples       []ExamplePairing `json:"examples,omitempty"`
}

// NotificationDoc describes a notification the server sends.
type NotificationDoc struct {
	Name        string           `json:"name"`
	Summary     string           `json:"summary,omitempty"`
	Description string           `json:"description,omitempty"`
	Params      []ContentDoc     `json:"params"`
	Examples    []ExamplePairing `json:"examples,omitempty"`
}

// ContentDoc is an OpenRPC content descriptor.
type ContentDoc struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Required is always set on params, false included: OpenRPC's default
	// is false, but @open-rpc/typings makes a TypeScript parameter
	// optional only when it reads an explicit false.
	Required *bool   `json:"required,omitempty"`
	Schema   *Schema `json:"schema"`
}

// ExamplePairing is an OpenRPC example pairing object.
type ExamplePairing struct {
	Name   string       `json:"name"`
	Params []ExampleDoc `json:"params"`
	Result *ExampleDoc  `json:"result,omitempty"`
}

// ExampleDoc is an OpenRPC example object.
type ExampleDoc struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Document describes every method and notification in r.
//
// Methods named rpc.* are left out: JSON-RPC reserves the prefix for the
// protocol's own extensions, and OpenRPC defines rpc.discover itself.
// Every other name must be an identifier (letters and digits, starting
// with a letter), because SDK generators use the names as member names:
// @open-rpc/generator writes "public channel.publish" for a dotted name,
// which is not TypeScript (open-rpc/generator#619).
func (r *Registry) Document(info Info) (*Document, error) {
	// x-notifications is there even when empty, so that tools and readers
	// find where notifications are described.
	doc := &Document{OpenRPC: OpenRPCVersion, Info: info, Methods: []MethodDoc{}, Notifications: []NotificationDoc{},
		Components: Components{Errors: make(map[string]ErrorCode, len(Codes))}}
	for _, c := range Codes {
		doc.Components.Errors[c.Name] = c
	}
	for _, m := range r.sortedMethods() {
		if strings.HasPrefix(m.Name, "rpc.") {
			continue
		}
		if !isIdentifier(m.Name) {
			return nil, fmt.Errorf("method %q: an SDK cannot name a member after it; use letters and digits", m.Name)
		}
		md, err := methodDoc(m)
		if err != nil {
			return nil, err
		}
		doc.Methods = append(doc.Methods, md)
	}
	for _, n := range r.sortedNotifications() {
		if !isIdentifier(n.name) {
			return nil, fmt.Errorf("notification %q: name it like a method, with letters and digits", n.name)
		}
		nd := NotificationDoc{Name: n.name, Summary: n.summary, Description: n.description,
			Params: paramDocs(n.params)}
		for i, e := range n.examples {
			params, err := exampleParams(n.params, e)
			if err != nil {
				return nil, fmt.Errorf("notification %s example %d: %w", n.name, i, err)
			}
			nd.Examples = append(nd.Examples, ExamplePairing{Name: fmt.Sprintf("%s example", n.name), Params: params})
		}
		doc.Notifications = append(doc.Notifications, nd)
	}
	return doc, nil
}

func methodDoc(m *method) (MethodDoc, error) {
	md := MethodDoc{
		Name:           m.Name,
		Summary:        m.Summary,
		Description:    m.Description,
		ParamStructure: "either",
		Params:         paramDocs(m.params),
		Result:         ContentDoc{Name: resultName(m), Schema: schemaOf(m.result)},
	}
	for _, code := range append(commonErrors, m.Errors...) {
		md.Errors = append(md.Errors, describeCode(code))
	}
	if m.NeedsSocket {
		md.Errors = append(md.Errors, describeCode(CodeSocketRequired))
	}
	for _, e := range m.Examples {
		params, err := exampleParams(m.params, e.Params)
		if err != nil {
			return MethodDoc{}, fmt.Errorf("method %s example %q: %w", m.Name, e.Name, err)
		}
		md.Examples = append(md.Examples, ExamplePairing{
			Name:   e.Name,
			Params: params,
			Result: &ExampleDoc{Name: resultName(m), Value: e.Result},
		})
	}
	return md, nil
}

// commonErrors are the codes any method may answer with.
var commonErrors = []int{CodeInvalidParams, CodeInternalError, CodeUnavailable}

func resultName(m *method) string {
	if t := m.result; t.Name() != "" {
		return lowerFirst(t.Name())
	}
	return "result"
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}

func paramDocs(spec *paramSpec) []ContentDoc {
	docs := make([]ContentDoc, 0, len(spec.fields))
	for _, f := range spec.fields {
		docs = append(docs, ContentDoc{Name: f.name, Description: f.doc, Required: &f.required, Schema: fieldSchema(spec.typ.Field(f.index))})
	}
	return docs
}

// exampleParams turns a params value into OpenRPC example params, one per
// field that the value sets, in declaration order.
func exampleParams(spec *paramSpec, v any) ([]ExampleDoc, error) {
	if v == nil {
		return []ExampleDoc{}, nil
	}
	if reflect.TypeOf(v) != spec.typ {
		return nil, fmt.Errorf("example params are %T, want %s", v, spec.typ)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var named map[string]json.RawMessage
	if err := json.Unmarshal(b, &named); err != nil {
		return nil, err
	}
	out := []ExampleDoc{}
	for _, f := range spec.fields {
		if raw, ok := named[f.name]; ok {
			out = append(out, ExampleDoc{Name: f.name, Value: raw})
		}
	}
	return out, nil
}

// isIdentifier reports whether name is an ASCII letter followed by
// letters and digits: a valid member name in every language SDKs are
// generated for.
func isIdentifier(name string) bool {
	for i, c := range name {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return name != ""
}

func describeCode(code int) ErrorCode {
	for _, c := range Codes {
		if c.Code == code {
			return c
		}
	}
	panic(fmt.Sprintf("rpc: undocumented error code %d", code))
}

// OpenrpcDocument is what rpc.discover returns: the OpenRPC document as
// encoded JSON.
type OpenrpcDocument []byte

// MarshalJSON implements json.Marshaler.
func (d OpenrpcDocument) MarshalJSON() ([]byte, error) { return d, nil }

// JSONSchema implements Schemaer.
func (OpenrpcDocument) JSONSchema() *Schema {
	return &Schema{Title: "OpenrpcDocument", Type: "object",
		Description: "An OpenRPC document, as described by https://spec.open-rpc.org."}
}

// RegisterDiscover adds rpc.discover, which returns the document describing
// r, generated once on first use from everything registered by then.
func RegisterDiscover(r *Registry, info Info) func() ([]byte, error) {
	doc := sync.OnceValues(func() ([]byte, error) {
		d, err := r.Document(info)
		if err != nil {
			return nil, err
		}
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	})
	Register(r, Method{
		Name:        "rpc.discover",
		Inline:      true,
		Summary:     "Returns this server's OpenRPC document",
		Description: "The same document as GET /openrpc.json and the openrpc.json file in the repository.",
		Examples:    []Example{{Name: "discover", Params: struct{}{}, Result: map[string]any{"openrpc": OpenRPCVersion}}},
	}, func(context.Context, *Session, struct{}) (OpenrpcDocument, error) {
		b, err := doc()
		return OpenrpcDocument(b), err
	})
	return doc
}
