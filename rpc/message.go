package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// request is one parsed call. A request whose id is absent is a
// notification: it runs, but it is never answered.
type request struct {
	method string
	params json.RawMessage // nil when the member is absent
	id     json.RawMessage // the id exactly as sent; nil for a notification
}

func (r *request) notification() bool { return r.id == nil }

// item is one element of an incoming message: a call to run, or the error
// response already decided for an element that is not a valid request.
type item struct {
	req   request
	reply []byte // non-nil when the element was rejected while parsing
}

var nullID = json.RawMessage("null")

// parseMessage splits one incoming WebSocket frame or HTTP body into the
// calls it holds. batch reports whether the reply must be an array. The
// decisions follow the JSON-RPC 2.0 specification: a frame that is not
// JSON at all gets one -32700 error; an empty array or one that is longer
// than maxBatch gets one -32600 error (not an array of them); each invalid
// element of a batch gets its own -32600.
func parseMessage(data []byte, maxBatch int) (items []item, batch bool) {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '[' {
		return []item{parseRequest(data)}, false
	}
	if !json.Valid(data) {
		var v any
		return []item{rejected(nullID, parseError(json.Unmarshal(data, &v)))}, false
	}
	// Validated once for the whole batch: its elements are not again.
	elems := elements(data)
	switch {
	case len(elems) == 0:
		return []item{rejected(nullID, Errorf(CodeInvalidRequest, "Invalid request: empty batch"))}, false
	case len(elems) > maxBatch:
		return []item{rejected(nullID, Errorf(CodeInvalidRequest,
			"Invalid request: batch of %d calls exceeds the limit of %d", len(elems), maxBatch))}, false
	}
	items = make([]item, len(elems))
	for i, e := range elems {
		items[i] = parseValid(e)
	}
	return items, true
}

// parseRequest decodes one request object. Its members are matched by
// exact name, not through a struct, because encoding/json matches struct
// fields case-insensitively, and {"Method": …} is not a request. As in a
// map, a repeated member's last value counts. What is kept is copied, so
// data may be reused.
func parseRequest(data []byte) item {
	if !json.Valid(data) {
		var v any
		return rejected(nullID, parseError(json.Unmarshal(data, &v)))
	}
	return parseValid(data)
}

// parseValid is parseRequest of data known to be valid JSON.
func parseValid(data []byte) item {
	var id, version, raw, params json.RawMessage // nil when absent
	isObject, err := eachMember(data, func(key string, value []byte) error {
		switch key {
		case "jsonrpc":
			version = value
		case "id":
			id = value
		case "method":
			raw = value
		case "params":
			params = value
		}
		return nil
	})
	if err != nil || !isObject {
		return rejected(nullID, invalidRequest("a request must be a JSON object"))
	}
	// JSON text is UTF-8 (RFC 8259 §8.1), and whatever is echoed goes back
	// out in a text frame. Bytes that are not are refused here, unless
	// they lie within params, where decoding names the param at fault.
	if at := invalidUTF8Outside(data, params); at >= 0 {
		return rejected(nullID, Errorf(CodeParseError, "Parse error: invalid UTF-8 at byte %d", at))
	}

	// Read the id first so that every later rejection can echo it.
	if id != nil && !validID(id) {
		return rejected(nullID, invalidRequest(`"id" must be a string, a number or null`))
	}
	replyID := id
	if id == nil {
		replyID = nullID
	}

	if version == nil {
		return rejected(replyID, invalidRequest(`"jsonrpc" is missing; it must be "2.0"`))
	} else if s, err := unquote(version); err != nil || s != "2.0" {
		return rejected(replyID, invalidRequest(`"jsonrpc" must be "2.0"`))
	}

	if raw == nil {
		return rejected(replyID, invalidRequest(`"method" is missing`))
	}
	method, err := unquote(raw)
	if err != nil {
		return rejected(replyID, invalidRequest(`"method" must be a string`))
	}

	if len(params) > 0 && params[0] != '{' && params[0] != '[' {
		return rejected(replyID, invalidRequest(`"params" must be an object or an array`))
	}
	return item{req: request{method: method, params: bytes.Clone(params), id: bytes.Clone(id)}}
}

// invalidUTF8Outside returns the offset of the first byte of data that is
// not valid UTF-8 and is not within inner, a slice of data (or nil); -1
// when there is none.
func invalidUTF8Outside(data, inner []byte) int {
	if utf8.Valid(data) {
		return -1
	}
	// inner = data[start:start+len(inner)], so cap(inner) = cap(data)-start.
	start, end := len(data), len(data)
	if inner != nil {
		start = cap(data) - cap(inner)
		end = start + len(inner)
	}
	if at := invalidUTF8(data[:start]); at >= 0 {
		return at
	}
	if at := invalidUTF8(data[end:]); at >= 0 {
		return end + at
	}
	return -1
}

// invalidUTF8 returns the offset of the first byte of b that does not
// start a valid UTF-8 sequence, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1 // the common case, on utf8's fast path
	}
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

func rejected(id json.RawMessage, e *Error) item {
	return item{reply: appendError(nil, id, e)}
}

func invalidRequest(why string) *Error {
	return Errorf(CodeInvalidRequest, "Invalid request: %s", why)
}

func parseError(err error) *Error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return Errorf(CodeParseError, "Parse error: %v at byte %d", err, syntax.Offset)
	}
	return Errorf(CodeParseError, "Parse error: %v", err)
}

// validID reports whether raw is an id the specification allows: a
// string, a number or null. The raw bytes are echoed back unchanged, so
// -1, 1.5 and "abc" all come back exactly as sent.
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"', c == 'n':
		return true
	case c == '-' || ('0' <= c && c <= '9'):
		return true
	}
	return false
}

// unquote decodes a raw JSON value that must be a string.
func unquote(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("not a string")
	}
	// Fast path: no escapes, the common case for methods and "2.0". Invalid
	// UTF-8 takes the slow path, which reads it as U+FFFD as encoding/json
	// does everywhere else.
	if body := raw[1 : len(raw)-1]; bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// appendResult appends a success response to dst.
func appendResult(dst []byte, id, result json.RawMessage) []byte {
	dst = appendResultHead(dst, id)
	dst = append(dst, result...)
	return append(dst, '}')
}

// appendResultHead appends a success response up to its result, which
// the caller appends, with the closing brace.
func appendResultHead(dst []byte, id json.RawMessage) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, orNull(id)...)
	return append(dst, `,"result":`...)
}

// appendError appends an error response to dst.
func appendError(dst []byte, id json.RawMessage, e *Error) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, orNull(id)...)
	dst = append(dst, `,"error":`...)
	dst = append(dst, encodeError(e)...)
	return append(dst, '}')
}

func orNull(id json.RawMessage) json.RawMessage {
	if id == nil {
		return nullID
	}
	return id
}

// appendBatch joins responses into one JSON array.
func appendBatch(dst []byte, replies [][]byte) []byte {
	n := 1 + len(replies) // brackets and commas
	for _, r := range replies {
		n += len(r)
	}
	dst = slices.Grow(dst, n) // one copy of what may be megabytes
	dst = append(dst, '[')
	for i, r := range replies {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, r...)
	}
	return append(dst, ']')
}

// Notification is a server-to-client message, encoded once so that it can
// be sent to any number of connections without encoding it again.
type Notification struct {
	method string
	frame  []byte
}

// NewNotification encodes a notification of method with params.
func NewNotification(method string, params any) (Notification, error) {
	m, _ := json.Marshal(method) // a string always encodes
	head := make([]byte, 0, 256)
	head = append(head, `{"jsonrpc":"2.0","method":`...)
	head = append(head, m...)
	head = append(head, `,"params":`...)
	frame, err := appendJSON(head, params)
	if err != nil {
		return Notification{}, fmt.Errorf("encode %s notification: %w", method, err)
	}
	return Notification{method: method, frame: append(frame, '}')}, nil
}

// Method is the notification's method name.
func (n Notification) Method() string { return n.method }

// Size is the length of the notification's frame, in bytes.
func (n Notification) Size() int { return len(n.frame) }
