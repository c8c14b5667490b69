package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/service"
)

// JSON-RPC error codes. The first five are the specification's; the rest
// are Switchboard's application codes, stable across releases and listed
// in the README and in openrpc.json.
const (
	CodeParseError     = -32700 // the frame or body is not valid JSON
	CodeInvalidRequest = -32600 // valid JSON, but not a request object
	CodeMethodNotFound = -32601 // no such method
	CodeInvalidParams  = -32602 // params missing, of the wrong type, unknown, or breaking a rule
	CodeInternalError  = -32603 // a bug or an unexpected failure on the server

	CodeUnauthorized   = -32001 // the caller's token is missing, invalid or expired
	CodeForbidden      = -32003 // the caller's permissions do not allow the call
	CodeNotFound       = -32004 // the thing asked for does not exist
	CodeConflict       = -32009 // the call collides with the current state
	CodeSocketRequired = -32010 // the method needs a WebSocket connection, not HTTP
	CodeUnavailable    = -32013 // the server cannot serve the call now (shutting down); retry later
	CodeLimitExceeded  = -32029 // the call would go beyond a configured limit, such as subscriptions per connection
)

// Error is a JSON-RPC error object. Handlers may return one to choose the
// code themselves; other errors are mapped by ErrorFrom.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// serviceCodes maps domain error codes to JSON-RPC codes.
var serviceCodes = map[string]int{
	service.EINVALID:      CodeInvalidParams,
	service.EUNAUTHORIZED: CodeUnauthorized,
	service.EFORBIDDEN:    CodeForbidden,
	service.ENOTFOUND:     CodeNotFound,
	service.ECONFLICT:     CodeConflict,
	service.EUNAVAILABLE:  CodeUnavailable,
	service.ELIMIT:        CodeLimitExceeded,
	service.EINTERNAL:     CodeInternalError,
}

// ErrorFrom converts a handler's error into a JSON-RPC error object: an
// *Error is kept as it is, a *service.Error gets the code that matches its
// kind, and anything else becomes an internal error whose details stay in
// the server's log.
func ErrorFrom(err error) *Error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller went away or gave up; not the server's fault.
		return &Error{Code: CodeUnavailable, Message: "the call was cancelled before it finished: " + err.Error()}
	}
	code, ok := serviceCodes[service.ErrorCode(err)]
	if !ok {
		code = CodeInternalError
	}
	e := &Error{Code: code, Message: service.ErrorMessage(err)}
	var se *service.Error
	if errors.As(err, &se) && se.RetryAfter > 0 {
		e.Data = retryAfter(se.RetryAfter)
	}
	return e
}

// RetryAfter is the data of an error that time lifts: how long to wait.
type RetryAfter struct {
	RetryAfterMs int64 `json:"retryAfterMs"`
}

// retryAfter rounds d up to whole milliseconds, so that a client that
// waits as long finds the limit lifted.
func retryAfter(d time.Duration) RetryAfter {
	return RetryAfter{RetryAfterMs: int64((d + time.Millisecond - 1) / time.Millisecond)}
}

// ErrorCode describes one error code for documentation: the README table,
// each method's "errors" in openrpc.json, and by Name its components.errors.
type ErrorCode struct {
	Code int `json:"code"`
	// Name is the code's PascalCase name, which SDKs export as a constant.
	// It is the key in components.errors, not a member of the error
	// object, which OpenRPC closes to other members.
	Name    string `json:"-"`
	Message string `json:"message"`
}

// Codes lists every error code the server may answer with, for docs.
var Codes = []ErrorCode{
	{CodeParseError, "ParseError", "Parse error: the message is not valid JSON"},
	{CodeInvalidRequest, "InvalidRequest", "Invalid request: not a JSON-RPC 2.0 request object, or a batch that is empty or too long"},
	{CodeMethodNotFound, "MethodNotFound", "Method not found"},
	{CodeInvalidParams, "InvalidParams", "Invalid params: the message names the offending field"},
	{CodeInternalError, "InternalError", "Internal error: a bug on the server; it is logged with its stack"},
	{CodeUnauthorized, "Unauthorized", "Unauthorized: the token is missing, invalid or expired"},
	{CodeForbidden, "Forbidden", "Forbidden: the token's permissions do not allow this"},
	{CodeNotFound, "NotFound", "Not found"},
	{CodeConflict, "Conflict", "Conflict with the current state"},
	{CodeSocketRequired, "SocketRequired", "This method needs a WebSocket connection; it cannot be called over HTTP POST"},
	{CodeUnavailable, "Unavailable", "Unavailable: the server is shutting down or overloaded, or its Redis does not answer; retry later"},
	{CodeLimitExceeded, "LimitExceeded", "Limit exceeded: the call would go beyond a configured limit (the message names it)"},
}

// codeName gives the short label used in metrics for an error code.
func codeName(code int) string {
	switch code {
	case CodeParseError:
		return "parse_error"
	case CodeInvalidRequest:
		return "invalid_request"
	case CodeMethodNotFound:
		return "method_not_found"
	case CodeInvalidParams:
		return "invalid_params"
	case CodeInternalError:
		return "internal_error"
	case CodeUnauthorized:
		return "unauthorized"
	case CodeForbidden:
		return "forbidden"
	case CodeNotFound:
		return "not_found"
	case CodeConflict:
		return "conflict"
	case CodeSocketRequired:
		return "socket_required"
	case CodeUnavailable:
		return "unavailable"
	case CodeLimitExceeded:
		return "limit_exceeded"
	default:
		return "error"
	}
}

// encodeError renders e as JSON. It never fails: Data that cannot be
// encoded is dropped so that the client still learns the code.
func encodeError(e *Error) []byte {
	b, err := json.Marshal(e)
	if err != nil {
		b, _ = json.Marshal(&Error{Code: e.Code, Message: e.Message})
	}
	return b
}
