package client

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sourcegraph/jsonrpc2"
)

// Error is a JSON-RPC error the server answered with. The README lists
// the codes.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Code) }

// Codes the client acts on itself.
const (
	codeSocketRequired = -32010 // retry the call over a WebSocket
	codeNotFound       = -32004 // unsubscribing what is no longer subscribed
	codeUnavailable    = -32013 // the server is going away: reconnect
)

func fromRPC(err error) error {
	var e *jsonrpc2.Error
	if !errors.As(err, &e) {
		return err
	}
	out := &Error{Code: int(e.Code), Message: e.Message}
	if e.Data != nil {
		out.Data = *e.Data
	}
	return out
}

// isCode reports whether err is a JSON-RPC error with code.
func isCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// ErrUnauthorized is wrapped by a ConnectionError when the server refused
// the token: HTTP 401, or a WebSocket closed with 4001 because the token
// expired.
var ErrUnauthorized = errors.New("the server refused the token")

// ErrDisconnected is wrapped by a ConnectionError when an admin cut the
// user off: the server closed the WebSocket with 4003 (adminDisconnect,
// adminRevoke). The error goes on with the close frame, whose reason says
// why. The client does not reconnect after it: that would undo the
// admin's decision for as long as the token lasts.
var ErrDisconnected = errors.New("an admin disconnected the user")

// ErrTooLarge is wrapped by the error of a call or batch whose request
// the server refused as bigger than its --max-message-size (HTTP 413): it
// ran nothing.
var ErrTooLarge = errors.New("the request is too large for the server")

// ErrClosed is returned by calls on a closed Client, and by Next on a
// Subscription that was closed, or whose Client was.
var ErrClosed = errors.New("client closed")

// ConnectionError reports that the server could not be reached, that the
// connection failed, that the server refused the token, or that an admin
// disconnected the user.
type ConnectionError struct {
	URL string // the endpoint: http(s):// for calls, ws(s):// for the WebSocket
	Err error  // why, wrapping ErrUnauthorized when the token was refused, ErrDisconnected when an admin cut the user off
}

func (e *ConnectionError) Error() string { return fmt.Sprintf("%s: %v", e.URL, e.Err) }
func (e *ConnectionError) Unwrap() error { return e.Err }

// LostError reports that publications were lost to a subscription: the
// history no longer reached back to where the subscription left off, or
// the channel's history was removed or lost (its epoch changed). Next
// returns it in place of the missing publications; it is not fatal, and
// the publications after it follow.
type LostError struct {
	Channel string
	// After is the last position the subscription had.
	After Position
	// Resumed is where it goes on from: the next publication's offset is
	// Resumed.Offset+1.
	Resumed Position
}

func (e *LostError) Error() string {
	if e.After.Epoch != e.Resumed.Epoch {
		return fmt.Sprintf("%s: publications lost: the channel's history was removed or lost (epoch %q, now %q); going on from what the new history holds",
			e.Channel, e.After.Epoch, e.Resumed.Epoch)
	}
	if e.Resumed.Offset < e.After.Offset {
		return fmt.Sprintf("%s: the channel's history went back from offset %d to %d (restored from an older copy?); going on from there",
			e.Channel, e.After.Offset, e.Resumed.Offset)
	}
	return fmt.Sprintf("%s: publications %d to %d were lost: the history no longer holds them",
		e.Channel, e.After.Offset+1, e.Resumed.Offset)
}
