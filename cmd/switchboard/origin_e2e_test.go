package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/service"
)

// TestOriginCheck checks the cross-site WebSocket hijacking defence: pages
// of other origins cannot open a WebSocket, even with a valid token (a
// browser would send the victim's cookie or query token), while the
// server's own origin, configured patterns and non-browser clients can.
func TestOriginCheck(t *testing.T) {
	ta := startApp(t, serveConfig{allowedOrigins: listFlag{"*.example.com"}})
	tok := ta.token("alice", service.Permissions{}, time.Hour)

	withOrigin := func(origin string) http.Header {
		h := bearer(tok)
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}

	allowed := []struct{ name, origin string }{
		{"no Origin (not a browser)", ""},
		{"the server's own host", "http://" + ta.addr},
		{"a configured pattern", "https://app.example.com"},
		{"a configured pattern, other case", "https://APP.Example.COM"},
	}
	for _, tc := range allowed {
		t.Run("allowed: "+tc.name, func(t *testing.T) {
			ws := ta.dial(withOrigin(tc.origin))
			var w whoamiResult
			wsCall(t, ws, "sessionWhoami", nil).decode(t, &w)
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
			ws, resp, err := dialRaw(t, ta.wsURL(), withOrigin(tc.origin))
			wantRefusedUpgrade(t, "GET /rpc with Origin "+tc.origin, ws, resp, err, http.StatusForbidden, "forbidden_origin")
		})
	}
}

// TestOriginSchemePattern checks patterns that name a scheme: only that
// scheme is allowed.
func TestOriginSchemePattern(t *testing.T) {
	ta := startApp(t, serveConfig{allowedOrigins: listFlag{"https://app.example.com"}})
	tok := ta.token("alice", service.Permissions{}, time.Hour)

	h := bearer(tok)
	h.Set("Origin", "https://app.example.com")
	wsCall(t, ta.dial(h), "serverPing", nil)

	h = bearer(tok)
	h.Set("Origin", "http://app.example.com")
	ws, resp, err := dialRaw(t, ta.wsURL(), h)
	wantRefusedUpgrade(t, "plain-http origin", ws, resp, err, http.StatusForbidden, "forbidden_origin")
}

// TestDNSRebinding: a page on attacker.test whose name the attacker points
// at 127.0.0.1 is of the same origin as the server it then reaches, so the
// origin check lets it in; the Host header gives it away. A server on a
// loopback address knows itself by its loopback names and IP addresses
// only, on every route.
func TestDNSRebinding(t *testing.T) {
	for _, anonymous := range []bool{false, true} {
		ta := startApp(t, serveConfig{anonymous: anonymous})
		tok := ta.token("alice", service.Permissions{}, time.Hour)
		_, port, _ := net.SplitHostPort(ta.addr)
		asHost := func(host string) http.Header {
			h := http.Header{"Origin": {"http://" + host}}
			if !anonymous {
				h.Set("Authorization", "Bearer "+tok)
			}
			return h
		}
		for _, host := range []string{"attacker.test", "attacker.test:" + port, "localhost.attacker.test", "LOCALHOST.evil:" + port} {
			ws, resp, err := dialHost(t, ta, host, asHost(host))
			wantRefusedUpgrade(t, "upgrade with Host "+host, ws, resp, err, http.StatusForbidden, "forbidden_host")
			for _, path := range []string{"/healthz", "/openrpc.json"} {
				res := ta.doHost(http.MethodGet, path, host, nil)
				wantHTTPError(t, path+" with Host "+host, res.status, res.header, res.body, http.StatusForbidden, "forbidden_host")
			}
		}
		for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "app.localhost:" + port, "LocalHost"} {
			ws, resp, err := dialHost(t, ta, host, asHost(host))
			if err != nil {
				t.Fatalf("anonymous=%v: upgrade with Host %s: %v (%v)", anonymous, host, err, resp)
			}
			wsCall(t, ws, "serverPing", nil)
		}
	}
}

// TestAllowedHosts: --allowed-hosts replaces the loopback names; IP
// addresses are still allowed.
func TestAllowedHosts(t *testing.T) {
	ta := startApp(t, serveConfig{allowedHosts: listFlag{"switchboard.example.com", "*.internal"}})
	for host, status := range map[string]int{
		"switchboard.example.com":      http.StatusOK,
		"switchboard.example.com:8443": http.StatusOK,
		"api.internal":                 http.StatusOK,
		"10.1.2.3":                     http.StatusOK,
		"localhost":                    http.StatusForbidden,
		"example.com":                  http.StatusForbidden,
	} {
		if res := ta.doHost(http.MethodGet, "/healthz", host, nil); res.status != status {
			t.Errorf("Host %s: HTTP %d, want %d", host, res.status, status)
		}
	}
}

func TestAllowedHostsDefault(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true, "127.0.0.2:1": true,
		":8080": false, "0.0.0.0:8080": false, "192.168.1.2:8080": false, "example.com:80": false,
	} {
		if got := allowedHosts(nil, listen) != nil; got != want {
			t.Errorf("--listen %s: a default host check is %v, want %v", listen, got, want)
		}
	}
	if got := allowedHosts([]string{"a.example"}, "127.0.0.1:8080"); len(got) != 1 || got[0] != "a.example" {
		t.Errorf("given hosts replaced by %v", got)
	}
}

// dialHost dials ta's WebSocket with the Host header host.
func dialHost(t *testing.T, ta *testApp, host string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, ta.wsURL(), &websocket.DialOptions{Host: host, HTTPHeader: header})
	if ws != nil {
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

// doHost makes a request of ta with the Host header host.
func (ta *testApp) doHost(method, path, host string, body []byte) httpResult {
	ta.t.Helper()
	req, err := http.NewRequest(method, ta.baseURL()+path, bytes.NewReader(body))
	if err != nil {
		ta.t.Fatal(err)
	}
	req.Host = host
	resp, err := ta.client.Do(req)
	if err != nil {
		ta.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestCORS: pages of --allowed-origins may call POST /rpc with their
// token in Authorization: the preflight is answered, and replies,
// refusals too, may be read by them. Other origins get no CORS headers,
// so their browsers keep the reply from them.
func TestCORS(t *testing.T) {
	ta := startApp(t, serveConfig{allowedOrigins: listFlag{"https://app.example.com"}})
	tok := ta.token("alice", service.Permissions{}, time.Hour)
	preflight := func(origin string) httpResult {
		return ta.do(http.MethodOptions, "/rpc", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"authorization,content-type"},
		}, nil)
	}
	res := preflight("https://app.example.com")
	h := res.header
	if res.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") ||
		h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight from an allowed origin: HTTP %d %v", res.status, h)
	}
	if res := preflight("https://evil.example.net"); res.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin was allowed: %v", res.header)
	}

	call := func(origin, tok string) httpResult {
		body, _ := request("serverPing", nil)
		hdr := http.Header{"Origin": {origin}}
		if tok != "" {
			hdr.Set("Authorization", "Bearer "+tok)
		}
		return ta.post(hdr, body)
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
		got := res.header.Get("Access-Control-Allow-Origin")
		if res.status != tc.status || (got == tc.origin) != tc.allowed {
			t.Errorf("POST from %s (token %v): HTTP %d, Access-Control-Allow-Origin %q", tc.origin, tc.tok != "", res.status, got)
		}
		if tc.allowed && !strings.Contains(res.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
			t.Errorf("POST from %s: X-Request-Id is not exposed", tc.origin)
		}
	}
}
