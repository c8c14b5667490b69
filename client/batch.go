package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// BatchCall is one call of a Batch.
type BatchCall struct {
	Method string
	Params any // nil for none; an object or array otherwise
	Result any // what the result is decoded into, unless nil
	// Err is what Batch found for the call: nil when it succeeded, an
	// *Error for a JSON-RPC error.
	Err error
}

// Batch makes calls as one JSON-RPC batch, in one HTTP POST, and sets
// each one's Result or Err. The server runs a batch's calls in no
// particular order, except its channelPublish and channelRemove calls:
// they take effect in the batch's order, share commits, and stop at the
// first that fails (the later ones fail with -32009 and were not run).
//
// Batch's own error is for the batch as a whole, as Call's is for a
// call: the server could not be reached, refused the token, or refused
// the batch (longer than its --max-batch, say, as an *Error with code
// -32600). The calls' Err are then left alone. A refused token is asked
// of TokenFunc again, once, as Call does. Calls that need a WebSocket
// fail with -32010: a batch is not sent again over a socket.
func (c *Client) Batch(ctx context.Context, calls []BatchCall) error {
	if len(calls) == 0 {
		return nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	body, err := encodeBatch(calls)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var reply []byte
	err = c.withToken(ctx, func(tok string) (err error) {
		reply, err = c.post(ctx, tok, body, "batch")
		return err
	})
	if err != nil {
		return err
	}
	return decodeBatch(reply, calls)
}

// encodeBatch encodes calls as a batch whose ids are their indexes.
func encodeBatch(calls []BatchCall) ([]byte, error) {
	body := []byte{'['}
	for i, cl := range calls {
		if i > 0 {
			body = append(body, ',')
		}
		var err error
		if body, err = encodeRequest(body, i, cl.Method, cl.Params); err != nil {
			return nil, err
		}
	}
	return append(body, ']'), nil
}

// decodeBatch files the replies in b with their calls. A reply that is
// one object rather than an array is the server refusing the whole batch.
func decodeBatch(b []byte, calls []BatchCall) error {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var r reply
		if err := json.Unmarshal(t, &r); err != nil || r.Error == nil {
			return fmt.Errorf("batch: the server answered with one reply, not an array: %.200s", b)
		}
		return r.Error
	}
	var replies []reply
	if err := json.Unmarshal(b, &replies); err != nil {
		return fmt.Errorf("batch: the reply is not a JSON-RPC batch reply: %w", err)
	}
	answered := make([]bool, len(calls))
	for _, r := range replies {
		i, err := strconv.Atoi(string(r.ID))
		if err != nil || i < 0 || i >= len(calls) || answered[i] {
			return fmt.Errorf("batch: a reply with id %s, which no call of the batch has, or twice", r.ID)
		}
		answered[i] = true
		calls[i].Err = r.decode(calls[i].Method, calls[i].Result)
	}
	for i, ok := range answered {
		if !ok {
			calls[i].Err = fmt.Errorf("%s: the server's reply to the batch has no reply to this call", calls[i].Method)
		}
	}
	return nil
}
