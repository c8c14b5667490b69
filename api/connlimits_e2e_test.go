package api_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// dialFrom dials ta's WebSocket with tok from the local address ip, so
// that the server sees another client address (any 127.x.y.z is this
// machine).
func dialFrom(t *testing.T, ta *servertest.Server, ip, tok string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: servertest.IOTimeout}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), servertest.IOTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, ta.WSURL(), &websocket.DialOptions{HTTPClient: hc, HTTPHeader: servertest.Bearer(tok)})
	if ws != nil {
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

// wantTooMany checks that a dial was refused with 429 before any upgrade,
// the message naming flag.
func wantTooMany(t *testing.T, ws *websocket.Conn, resp *http.Response, err error, flag string) {
	t.Helper()
	msg := servertest.WantRefusedUpgrade(t, flag, ws, resp, err, http.StatusTooManyRequests, "too_many_connections")
	if !strings.Contains(msg, flag) {
		t.Errorf("message %q does not name %s", msg, flag)
	}
}

func TestConnectionLimits(t *testing.T) {
	ta := servertest.Start(t, server.Config{ConnLimits: api.ConnLimits{Total: 4, PerUser: 2, PerIP: 3}})
	alice := ta.Token("alice", service.Permissions{}, time.Hour)
	bob := ta.Token("bob", service.Permissions{}, time.Hour)
	admin := ta.Token("root", service.Permissions{Admin: true}, time.Hour)
	dial := func(ip, tok string) *websocket.Conn {
		t.Helper()
		ws, resp, err := dialFrom(t, ta, ip, tok)
		if err != nil {
			t.Fatalf("dial from %s: %v (%v)", ip, err, resp)
		}
		return ws
	}

	a1, _ := dial("127.0.0.1", alice), dial("127.0.0.1", alice)
	ws, resp, err := dialFrom(t, ta, "127.0.0.2", alice)
	wantTooMany(t, ws, resp, err, "--max-connections-per-user")

	dial("127.0.0.1", bob)
	ws, resp, err = dialFrom(t, ta, "127.0.0.1", admin+"x") // refused by its token first
	servertest.WantRefusedUpgrade(t, "a bad token", ws, resp, err, http.StatusUnauthorized, "unauthorized")
	ws, resp, err = dialFrom(t, ta, "127.0.0.1", bob)
	wantTooMany(t, ws, resp, err, "--max-connections-per-ip")

	b2 := dial("127.0.0.2", bob)
	ws, resp, err = dialFrom(t, ta, "127.0.0.3", ta.Token("carol", service.Permissions{}, time.Hour))
	wantTooMany(t, ws, resp, err, "--max-connections")

	// Full, the server still answers health checks and HTTP calls, and
	// lets an admin connect.
	if res := ta.Do(http.MethodGet, "/healthz", nil, nil); res.Status != http.StatusOK {
		t.Fatalf("/healthz on a full server: HTTP %d", res.Status)
	}
	if r, _ := ta.Call(servertest.Bearer(alice), "serverPing", nil); r.Error != nil {
		t.Fatalf("an HTTP call on a full server: %+v", r.Error)
	}
	dial("127.0.0.4", admin)

	// A connection that ends frees its place.
	a1.Close(websocket.StatusNormalClosure, "")
	b2.Close(websocket.StatusNormalClosure, "")
	servertest.Eventually(t, "alice to get her place back", func() bool {
		ws, _, err := dialFrom(t, ta, "127.0.0.5", alice)
		return err == nil && ws != nil
	})

	// The three refusals are logged at warn, once per 10 s, not once each
	// (twice only if the machine was slow enough to cross an interval).
	if n := strings.Count(ta.Logs.String(), "a connection limit is reached"); n < 1 || n > 2 {
		t.Errorf("the refusals were logged %d times at warn, want once:\n%s", n, ta.Logs.String())
	}
}

// Behind a trusted proxy, the client is who the proxy says: the limits
// per address and the log use it. Anyone else's X-Forwarded-For is
// ignored, or a client could take another's place, or dodge its limit.
func TestTrustedProxies(t *testing.T) {
	dialVia := func(ta *servertest.Server, tok, client string) (*websocket.Conn, *http.Response, error) {
		h := servertest.Bearer(tok)
		h.Set("X-Forwarded-For", client)
		return servertest.DialRaw(t, ta.WSURL(), h)
	}
	behind := servertest.Start(t, server.Config{TrustedProxies: []string{"127.0.0.1"}, ConnLimits: api.ConnLimits{PerIP: 1}})
	tok := behind.Token("alice", service.Permissions{}, time.Hour)
	if _, resp, err := dialVia(behind, tok, "203.0.113.7"); err != nil {
		t.Fatalf("the first client behind the proxy: %v (%v)", err, resp)
	}
	if _, resp, err := dialVia(behind, tok, "203.0.113.8"); err != nil {
		t.Fatalf("another client behind the same proxy: %v (%v)", err, resp)
	}
	ws, resp, err := dialVia(behind, tok, "203.0.113.7")
	wantTooMany(t, ws, resp, err, "--max-connections-per-ip")
	servertest.Eventually(t, "the log to name the client", func() bool {
		return strings.Contains(behind.Logs.String(), "remote=203.0.113.8")
	})

	direct := servertest.Start(t, server.Config{ConnLimits: api.ConnLimits{PerIP: 1}})
	tok = direct.Token("alice", service.Permissions{}, time.Hour)
	if _, resp, err := dialVia(direct, tok, "203.0.113.7"); err != nil {
		t.Fatalf("the first connection: %v (%v)", err, resp)
	}
	ws, resp, err = dialVia(direct, tok, "203.0.113.8")
	wantTooMany(t, ws, resp, err, "--max-connections-per-ip")
	if strings.Contains(direct.Logs.String(), "203.0.113.") {
		t.Errorf("with no trusted proxy, a forwarded address reached the log")
	}
}
