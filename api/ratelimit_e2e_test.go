package api_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// The rate limits, as the flags set them: a call past one is answered
// -32029 with retryAfterMs and the connection goes on; handshakes past
// theirs get 429 with Retry-After.
func TestRateLimits(t *testing.T) {
	// Slow rates, so that however slow the machine the tokens spent are
	// not back before the refusals they are for: a handshake every 10 s,
	// a publication every 4 s.
	ta := servertest.Start(t, server.Config{PublishRate: 0.25, PublishBurst: 2, HandshakeRate: 0.1, HandshakeBurst: 2})
	tok := ta.Token("alice", service.Permissions{Publish: []string{">"}}, time.Hour)

	c := ta.HubClient(tok)          // handshake 1 of 2
	ta.Dial(servertest.Bearer(tok)) // and 2
	ws, resp, err := servertest.DialRaw(t, ta.WSURL(), servertest.Bearer(tok))
	servertest.WantRefusedUpgrade(t, "a third handshake", ws, resp, err, http.StatusTooManyRequests, "too_many_handshakes")
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want whole seconds", resp.Header.Get("Retry-After"))
	}
	if _, resp, err := dialFrom(t, ta, "127.0.0.2", tok); err != nil {
		t.Fatalf("another address: %v (%v)", err, resp)
	}

	c.Publish("rate.a", 1)
	c.Publish("rate.a", 2)
	r := c.Call("channelPublish", map[string]any{"channel": "rate.a", "data": 3})
	var data struct {
		RetryAfterMs int64 `json:"retryAfterMs"`
	}
	if r.Error == nil || r.Error.Code != -32029 {
		t.Fatalf("the third publication: %+v, want -32029", r)
	}
	if err := json.Unmarshal(r.Error.Data, &data); err != nil {
		t.Fatalf("error data %s: %v", r.Error.Data, err)
	}
	if data.RetryAfterMs <= 0 || data.RetryAfterMs > 4000 {
		t.Fatalf("retryAfterMs %d, want a wait of at most 4 s", data.RetryAfterMs)
	}
	// The connection goes on, and after the wait the user publishes again.
	time.Sleep(time.Duration(data.RetryAfterMs) * time.Millisecond)
	if p := c.Publish("rate.a", 3); p.Offset != 3 {
		t.Fatalf("after the wait: offset %d, want 3", p.Offset)
	}

}
