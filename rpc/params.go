package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// paramSpec describes a params struct: its fields in declaration order,
// which is also the order of by-position params.
type paramSpec struct {
	typ    reflect.Type
	fields []paramField
	byName map[string]int
}

type paramField struct {
	name     string // the JSON name
	index    int    // the struct field index
	required bool
	doc      string
	typ      reflect.Type
}

func newParamSpec(t reflect.Type) *paramSpec {
	if t.Kind() != reflect.Struct {
		panic("rpc: params type must be a struct, not " + t.String())
	}
	spec := &paramSpec{typ: t, byName: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, omitempty, ok := jsonName(f)
		if !ok {
			continue
		}
		spec.byName[name] = len(spec.fields)
		spec.fields = append(spec.fields, paramField{
			name:     name,
			index:    i,
			required: !omitempty,
			doc:      f.Tag.Get("doc"),
			typ:      f.Type,
		})
	}
	return spec
}

// jsonName returns a field's JSON name and whether it is optional; ok is
// false for fields that do not appear in JSON.
func jsonName(f reflect.StructField) (name string, omitempty, ok bool) {
	if !f.IsExported() {
		return "", false, false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	for _, o := range strings.Split(opts, ",") {
		if o == "omitempty" || o == "omitzero" {
			omitempty = true
		}
	}
	return name, omitempty, true
}

// decode fills dst, a settable struct value, from raw params given by
// name (an object) or by position (an array). raw is valid JSON: it was
// read from a request that parseRequest checked, and copied, so raw
// params (json.RawMessage fields) keep slices of it. Every failure is a
// CodeInvalidParams error whose message names the param at fault.
func (spec *paramSpec) decode(raw json.RawMessage, dst reflect.Value) error {
	seen := make([]bool, len(spec.fields))
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		// No params member: fine when nothing is required.
	case raw[0] == '{':
		_, err := eachMember(raw, func(name string, v []byte) error {
			i, ok := spec.byName[name]
			if !ok {
				return Errorf(CodeInvalidParams, "Invalid params: unknown param %q%s", name, spec.expected())
			}
			return spec.set(dst, i, v, seen)
		})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				err = Errorf(CodeInvalidParams, "Invalid params: %v", err)
			}
			return err
		}
	case raw[0] == '[':
		var positional []json.RawMessage
		if err := json.Unmarshal(raw, &positional); err != nil {
			return Errorf(CodeInvalidParams, "Invalid params: %v", err)
		}
		if len(positional) > len(spec.fields) {
			return Errorf(CodeInvalidParams, "Invalid params: %d params given, the method takes at most %d%s",
				len(positional), len(spec.fields), spec.expected())
		}
		for i, v := range positional {
			if err := spec.set(dst, i, v, seen); err != nil {
				return err
			}
		}
	default:
		return Errorf(CodeInvalidParams, "Invalid params: params must be an object or an array")
	}
	for i, f := range spec.fields {
		if f.required && !seen[i] {
			return Errorf(CodeInvalidParams, "Invalid params: missing required param %q", f.name)
		}
	}
	return nil
}

// set decodes v into field i. A JSON null counts as absent.
func (spec *paramSpec) set(dst reflect.Value, i int, v json.RawMessage, seen []bool) error {
	if string(v) == "null" {
		return nil
	}
	f := spec.fields[i]
	// Params travel on as publications and echoes, in text frames.
	if at := invalidUTF8(v); at >= 0 {
		return Errorf(CodeInvalidParams, "Invalid params: param %q is not valid UTF-8 (byte %d of its value)", f.name, at)
	}
	field := dst.Field(f.index)
	// The two commonest kinds skip encoding/json: v is known to be valid.
	switch {
	case f.typ == rawMessageType:
		field.SetBytes(v)
		seen[i] = true
		return nil
	case f.typ == stringType && v[0] == '"':
		if s, err := unquote(v); err == nil {
			field.SetString(s)
			seen[i] = true
			return nil
		}
	}
	if err := json.Unmarshal(v, field.Addr().Interface()); err != nil {
		return Errorf(CodeInvalidParams, "Invalid params: param %q %s", f.name, describeDecodeError(err, f.typ))
	}
	seen[i] = true
	return nil
}

// expected lists the param names for error messages.
func (spec *paramSpec) expected() string {
	if len(spec.fields) == 0 {
		return " (the method takes no params)"
	}
	names := make([]string, len(spec.fields))
	for i, f := range spec.fields {
		names[i] = f.name
	}
	return " (params: " + strings.Join(names, ", ") + ")"
}

func describeDecodeError(err error, t reflect.Type) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		where := ""
		if typeErr.Field != "" {
			where = fmt.Sprintf(" at %q", typeErr.Field)
		}
		return fmt.Sprintf("must be %s%s, not %s", jsonType(typeErr.Type), where, typeErr.Value)
	}
	return fmt.Sprintf("must be %s: %v", jsonType(t), err)
}

// jsonType names the JSON type that a Go type decodes from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "a JSON value"
	}
}
