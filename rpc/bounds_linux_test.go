//go:build linux

package rpc_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/rpc"
)

// A big reply on its way does not make the notification after it find the
// queue full: a client that reads its history page while subscribed is no
// slow consumer. Replies and notifications are bounded apart.
func TestBigReplyLeavesRoomForNotifications(t *testing.T) {
	failures := make(chan error, 100)
	ts := newTestServer(t, rpc.Limits{SendQueueBytes: 1 << 20}, func(reg *rpc.Registry) {
		registerBig(reg)
		registerFlood(failures)(reg)
	})
	c := dialSmallBuffer(t, ts)
	// 8 MiB is more than the sockets' buffers take: the reply is still
	// being written when the notifications come.
	c.send(`{"jsonrpc":"2.0","method":"test.big","params":{"size":8388608},"id":1}`)
	time.Sleep(200 * time.Millisecond)
	c.send(`{"jsonrpc":"2.0","method":"test.flood","params":{"n":8,"size":100},"id":2}`)
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-failures:
		t.Fatalf("a notification after a big reply: %v", err)
	default:
	}
	got := map[string]int{}
	for range 10 { // the reply, eight notifications, the flood's reply
		msg := c.recv(10 * time.Second)
		switch {
		case strings.HasPrefix(msg, `{"jsonrpc":"2.0","method":"test.flood"`):
			got["notification"]++
		case strings.HasPrefix(msg, `{"jsonrpc":"2.0","id":1,`):
			got["big"]++
		case strings.HasPrefix(msg, `{"jsonrpc":"2.0","id":2,`):
			got["flood"]++
		}
	}
	if got["big"] != 1 || got["notification"] != 8 || got["flood"] != 1 {
		t.Fatalf("received %v, want the big reply, 8 notifications and the flood's reply", got)
	}
}

// dialSmallBuffer dials ts with a receive buffer of 64 KiB, so that what
// the server writes and the client does not read stays in the server.
func dialSmallBuffer(t *testing.T, ts *testServer) *wsClient {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http"), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { ws.CloseNow() })
	return &wsClient{t: t, ws: ws}
}
