package service

import (
	"errors"
	"fmt"
	"time"
)

// Error codes name the kinds of failure the domain reports. The edges map
// them to their own vocabularies (JSON-RPC error codes, HTTP statuses), so
// these strings are stable and never shown as the only explanation.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule
	EUNAUTHORIZED = "unauthorized" // the caller's identity is missing or no longer valid
	EFORBIDDEN    = "forbidden"    // the caller is known but lacks the permission
	ENOTFOUND     = "not_found"    // the thing asked for does not exist
	ECONFLICT     = "conflict"     // the request collides with the current state
	EUNAVAILABLE  = "unavailable"  // the server cannot do it now; retry later or elsewhere
	ELIMIT        = "limit"        // the request would go beyond a configured limit
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is a domain error: a code from the list above and a message meant
// for the person or program that made the call.
type Error struct {
	Code    string
	Message string
	// RetryAfter, for an ELIMIT that time lifts (a rate limit), is how
	// long to wait before the same call may succeed.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for other errors so that internal details stay in logs.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}
