package rpc

import (
	"encoding"
	"encoding/json"
	"reflect"
	"time"
)

// Schema is the subset of JSON Schema that describes Switchboard's params
// and results. Field order is fixed so that openrpc.json is stable.
type Schema struct {
	Title                string             `json:"title,omitempty"`
	Description          string             `json:"description,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Minimum              *int               `json:"minimum,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	stringType      = reflect.TypeFor[string]()
	textMarshalType = reflect.TypeFor[encoding.TextMarshaler]()
)

// Schemaer is implemented by types that describe their own JSON schema,
// such as raw JSON documents whose shape Go's types do not show.
type Schemaer interface {
	JSONSchema() *Schema
}

var schemaerType = reflect.TypeFor[Schemaer]()

// schemaOf describes t. Struct types get their Go name as title, which is
// what SDK generators name the generated type after.
func schemaOf(t reflect.Type) *Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Implements(schemaerType):
		return reflect.Zero(t).Interface().(Schemaer).JSONSchema()
	case t == timeType:
		return &Schema{Type: "string", Format: "date-time"}
	case t == rawMessageType, t.Kind() == reflect.Interface:
		return &Schema{Description: "Any JSON value."}
	case t.Implements(textMarshalType):
		return &Schema{Type: "string"}
	}
	switch t.Kind() {
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &Schema{Type: "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		zero := 0
		return &Schema{Type: "integer", Minimum: &zero}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number"}
	case reflect.Slice, reflect.Array:
		return &Schema{Type: "array", Items: schemaOf(t.Elem())}
	case reflect.Map:
		return &Schema{Type: "object", AdditionalProperties: schemaOf(t.Elem())}
	case reflect.Struct:
		return structSchema(t)
	}
	panic("rpc: no JSON schema for " + t.String())
}

func structSchema(t reflect.Type) *Schema {
	s := &Schema{Title: t.Name(), Type: "object", Properties: map[string]*Schema{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, omitempty, ok := jsonName(f)
		if !ok {
			continue
		}
		fs := fieldSchema(f)
		fs.Description = f.Tag.Get("doc")
		s.Properties[name] = fs
		if !omitempty {
			s.Required = append(s.Required, name)
		}
	}
	return s
}

// fieldSchema describes a struct field's type, titled: untitled schemas
// make SDK generators invent names (string_doaGddGA). The schema takes the
// field's title tag, or its Go name; the items of a slice of unnamed types
// take its itemTitle tag, or its title and "Item".
func fieldSchema(f reflect.StructField) *Schema {
	s := schemaOf(f.Type)
	if s.Title == "" {
		s.Title = f.Tag.Get("title")
		if s.Title == "" {
			s.Title = f.Name
		}
	}
	if s.Items != nil && s.Items.Title == "" {
		s.Items.Title = f.Tag.Get("itemTitle")
		if s.Items.Title == "" {
			s.Items.Title = s.Title + "Item"
		}
	}
	return s
}
