package api_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestOriginCheck checks the cross-site WebSocket hijacking defence: pages
// of other origins cannot open a WebSocket, even with a valid token (a
// browser would send the victim's cookie or query token), while the
// server's own origin, configured patterns and non-browser clients can.
func TestOriginCheck(t *testing.T) {
	ta := servertest.Start(t, server.Config{AllowedOrigins: []string{"*.example.com"}})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)

	withOrigin := func(origin string) http.Header {
		h := servertest.Bearer(tok)
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}

	allowed := []struct{ name, origin string }{
		{"no Origin (not a browser)", ""},
		{"the server's own host", "http://" + ta.Addr},
		{"a configured pattern", "https://app.example.com"},
		{"a configured pattern, other case", "https://APP.Example.COM"},
	}
	for _, tc := range allowed {
		t.Run("allowed: "+tc.name, func(t *testing.T) {
			ws := ta.Dial(withOrigin(tc.origin))
			var w servertest.WhoamiResult
			servertest.WSCall(t, ws, "sessionWhoami", nil).Decode(t, &w)
			if w.User != "alice" {
				t.Errorf("whoami user %q, want alice", w.User)
			}
		})
	}

	refused := []struct{ name, origin string }{
		{"another host", "https://evil.example.net"},
		{"the bare domain of a *. pattern", "https://example.com"},
		{"a suffix trick", "https://app.example.com.evil.net"},
		{"the server's host on another port", "http://127.0.0.1:1"},
		{"not a URL", "null"},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			ws, resp, err := servertest.DialRaw(t, ta.WSURL(), withOrigin(tc.origin))
			servertest.WantRefusedUpgrade(t, "GET /rpc with Origin "+tc.origin, ws, resp, err, http.StatusForbidden, "forbidden_origin")
		})
	}
}

// TestOriginSchemePattern checks patterns that name a scheme: only that
// scheme is allowed.
func TestOriginSchemePattern(t *testing.T) {
	ta := servertest.Start(t, server.Config{AllowedOrigins: []string{"https://app.example.com"}})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)

	h := servertest.Bearer(tok)
	h.Set("Origin", "https://app.example.com")
	servertest.WSCall(t, ta.Dial(h), "serverPing", nil)

	h = servertest.Bearer(tok)
	h.Set("Origin", "http://app.example.com")
	ws, resp, err := servertest.DialRaw(t, ta.WSURL(), h)
	servertest.WantRefusedUpgrade(t, "plain-http origin", ws, resp, err, http.StatusForbidden, "forbidden_origin")
}

// TestDNSRebinding: a page on attacker.test whose name the attacker points
// at 127.0.0.1 is of the same origin as the server it then reaches, so the
// origin check lets it in; the Host header gives it away. A server on a
// loopback address knows itself by its loopback names and IP addresses
// only, on every route.
func TestDNSRebinding(t *testing.T) {
	for _, anonymous := range []bool{false, true} {
		ta := servertest.Start(t, server.Config{Anonymous: anonymous})
		tok := ta.Token("alice", service.Permissions{}, time.Hour)
		_, port, _ := net.SplitHostPort(ta.Addr)
		asHost := func(host string) http.Header {
			h := http.Header{"Origin": {"http://" + host}}
			if !anonymous {
				h.Set("Authorization", "Bearer "+tok)
			}
			return h
		}
		for _, host := range []string{"attacker.test", "attacker.test:" + port, "localhost.attacker.test", "LOCALHOST.evil:" + port} {
			ws, resp, err := dialHost(t, ta, host, asHost(host))
			servertest.WantRefusedUpgrade(t, "upgrade with Host "+host, ws, resp, err, http.StatusForbidden, "forbidden_host")
			for _, path := range []string{"/healthz", "/openrpc.json"} {
				res := ta.DoHost(http.MethodGet, path, host, nil)
				servertest.WantHTTPError(t, path+" with Host "+host, res.Status, res.Header, res.Body, http.StatusForbidden, "forbidden_host")
			}
		}
		for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "app.localhost:" + port, "LocalHost"} {
			ws, resp, err := dialHost(t, ta, host, asHost(host))
			if err != nil {
				t.Fatalf("anonymous=%v: upgrade with Host %s: %v (%v)", anonymous, host, err, resp)
			}
			servertest.WSCall(t, ws, "serverPing", nil)
		}
	}
}

// TestAllowedHosts: --allowed-hosts replaces the loopback names; IP
// addresses are still allowed.
func TestAllowedHosts(t *testing.T) {
	ta := servertest.Start(t, server.Config{AllowedHosts: []string{"switchboard.example.com", "*.internal"}})
	for host, status := range map[string]int{
		"switchboard.example.com":      http.StatusOK,
		"switchboard.example.com:8443": http.StatusOK,
		"api.internal":                 http.StatusOK,
		"10.1.2.3":                     http.StatusOK,
		"localhost":                    http.StatusForbidden,
		"example.com":                  http.StatusForbidden,
	} {
		if res := ta.DoHost(http.MethodGet, "/healthz", host, nil); res.Status != status {
			t.Errorf("Host %s: HTTP %d, want %d", host, res.Status, status)
		}
	}
}

// dialHost dials ta's WebSocket with the Host header host.
func dialHost(t *testing.T, ta *servertest.Server, host string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), servertest.IOTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, ta.WSURL(), &websocket.DialOptions{Host: host, HTTPHeader: header})
	if ws != nil {
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

// TestCORS: pages of --allowed-origins may call POST /rpc with their
// token in Authorization: the preflight is answered, and replies,
// refusals too, may be read by them. Other origins get no CORS headers,
// so their browsers keep the reply from them.
func TestCORS(t *testing.T) {
	ta := servertest.Start(t, server.Config{AllowedOrigins: []string{"https://app.example.com"}})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	preflight := func(origin string) servertest.HTTPResult {
		return ta.Do(http.MethodOptions, "/rpc", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"authorization,content-type"},
		}, nil)
	}
	res := preflight("https://app.example.com")
	h := res.Header
	if res.Status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") ||
		h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight from an allowed origin: HTTP %d %v", res.Status, h)
	}
	if res := preflight("https://evil.example.net"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin was allowed: %v", res.Header)
	}

	call := func(origin, tok string) servertest.HTTPResult {
		body, _ := servertest.Request("serverPing", nil)
		hdr := http.Header{"Origin": {origin}}
		if tok != "" {
			hdr.Set("Authorization", "Bearer "+tok)
		}
		return ta.Post(hdr, body)
	}
	for _, tc := range []struct {
		origin, tok string
		status      int
		allowed     bool
	}{
		{"https://app.example.com", tok, http.StatusOK, true},
		{"https://app.example.com", "", http.StatusUnauthorized, true},
		{"https://evil.example.net", tok, http.StatusOK, false},
	} {
		res := call(tc.origin, tc.tok)
		got := res.Header.Get("Access-Control-Allow-Origin")
		if res.Status != tc.status || (got == tc.origin) != tc.allowed {
			t.Errorf("POST from %s (token %v): HTTP %d, Access-Control-Allow-Origin %q", tc.origin, tc.tok != "", res.Status, got)
		}
		if tc.allowed && !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
			t.Errorf("POST from %s: X-Request-Id is not exposed", tc.origin)
		}
	}
}
