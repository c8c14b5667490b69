package main

import (
	"net/http"
	"testing"
	"time"

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
