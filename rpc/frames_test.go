package rpc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rpc"
)

const getData = `{"jsonrpc":"2.0","method":"get_data","id":1}`

// padTo pads a JSON message with trailing spaces to exactly n bytes.
func padTo(msg string, n int) string {
	return msg + strings.Repeat(" ", n-len(msg))
}

func TestOversizedMessageClosesOnlyThatConnection(t *testing.T) {
	const limit = 1024
	ts := newTestServer(t, rpc.Limits{MaxMessageSize: limit}, nil)
	bystander := ts.dial()
	c := ts.dial()

	// A message of exactly the limit is still served.
	checkReply(t, c.call(padTo(getData, limit)), false, []want{{id: `1`, result: `["hello",5]`}})

	c.send(padTo(getData, limit+1))
	if code := c.closeCode(5 * time.Second); code != rpc.CloseMessageTooBig {
		t.Fatalf("close code %v, want %v", code, rpc.CloseMessageTooBig)
	}
	checkReply(t, bystander.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
	poll.Until(t, 5*time.Second, "the observer to report message_too_big", func() bool {
		return ts.obs.closedFor(rpc.ReasonMessageTooBig) == 1
	})
}

func TestBinaryFrameIsRefused(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, nil)
	bystander := ts.dial()
	c := ts.dial()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, []byte(getData)); err != nil {
		t.Fatal(err)
	}
	if code := c.closeCode(5 * time.Second); code != rpc.CloseUnsupportedData {
		t.Fatalf("close code %v, want %v", code, rpc.CloseUnsupportedData)
	}
	checkReply(t, bystander.call(getData), false, []want{{id: `1`, result: `["hello",5]`}})
	poll.Until(t, 5*time.Second, "the observer to report unsupported_data", func() bool {
		return ts.obs.closedFor(rpc.ReasonBadFrame) == 1
	})
}
