package loadgen

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"
)

// callID is the id of Call's request. A pipeline's ids are its slots,
// from 0; Call's is apart from them, in case a late reply ever crossed.
const callID = -1

// Call makes one call on c, which has no other call in flight, and
// decodes its result into result. Notifications before the reply are
// skipped. A JSON-RPC error is returned as a *client.Error.
func Call(ctx context.Context, c *websocket.Conn, method string, params, result any) error {
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": callID, "method": method, "params": params})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, WriteTimeout)
	defer cancel()
	if err := c.Write(wctx, websocket.MessageText, req); err != nil {
		return fmt.Errorf("%s: write: %w", method, err)
	}
	rctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	for {
		_, b, err := c.Read(rctx)
		if err != nil {
			return fmt.Errorf("%s: read: %w", method, err)
		}
		var r reply
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: a reply that is not JSON-RPC: %.200q: %w", method, b, err)
		}
		switch {
		case r.Method != "":
			continue
		case r.ID == nil || *r.ID != callID:
			return fmt.Errorf("%s: a reply to another call: %.200q", method, b)
		case r.Error != nil:
			return r.Error
		}
		return json.Unmarshal(r.Result, result)
	}
}
