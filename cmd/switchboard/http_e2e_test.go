package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// pad returns req (a JSON request) followed by spaces up to n bytes:
// still one valid JSON-RPC message, of exactly n bytes.
func pad(t *testing.T, req []byte, n int) []byte {
	t.Helper()
	if len(req) > n {
		t.Fatalf("request of %d bytes does not fit in %d", len(req), n)
	}
	return append(req, bytes.Repeat([]byte(" "), n-len(req))...)
}

// TestPOSTRequests checks what is particular to POST /rpc: the content
// type, the size limit, notifications and request ids.
func TestPOSTRequests(t *testing.T) {
	const limit = 512
	ta := startApp(t, serveConfig{limits: rpc.Limits{MaxMessageSize: limit}})
	tok := ta.token("alice", service.Permissions{}, time.Hour)
	ping, _ := request("serverPing", nil)

	t.Run("content type", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
			h := bearer(tok)
			h.Set("Content-Type", ct)
			res := ta.do(http.MethodPost, "/rpc", h, ping)
			wantHTTPError(t, "Content-Type "+ct, res.status, res.header, res.body, http.StatusUnsupportedMediaType, "unsupported_media_type")
		}
		h := bearer(tok)
		h.Set("Content-Type", "application/json; charset=utf-8")
		if res := ta.do(http.MethodPost, "/rpc", h, ping); res.status != http.StatusOK {
			t.Errorf("Content-Type with charset: HTTP %d: %s", res.status, res.body)
		}
	})

	t.Run("size limit", func(t *testing.T) {
		req, id := request("serverPing", nil)
		res := ta.post(bearer(tok), pad(t, req, limit))
		if res.status != http.StatusOK {
			t.Fatalf("body of exactly the limit: HTTP %d: %s", res.status, res.body)
		}
		decodeReply(t, "serverPing", res.body, id).decode(t, new(pingResult))

		for _, n := range []int{limit + 1, 4 * limit} {
			req, _ := request("serverPing", nil)
			res := ta.post(bearer(tok), pad(t, req, n))
			wantHTTPError(t, "oversized body", res.status, res.header, res.body, http.StatusRequestEntityTooLarge, "too_large")
		}
	})

	t.Run("notifications only", func(t *testing.T) {
		for name, body := range map[string]string{
			"one":   `{"jsonrpc":"2.0","method":"serverPing"}`,
			"batch": `[{"jsonrpc":"2.0","method":"serverPing"},{"jsonrpc":"2.0","method":"sessionWhoami"}]`,
		} {
			res := ta.post(bearer(tok), []byte(body))
			if res.status != http.StatusNoContent || len(res.body) != 0 {
				t.Errorf("%s: HTTP %d with %q, want 204 and no body", name, res.status, res.body)
			}
		}
	})

	t.Run("batch", func(t *testing.T) {
		body := `[{"jsonrpc":"2.0","id":"a","method":"serverPing"},{"jsonrpc":"2.0","method":"serverPing"},{"jsonrpc":"2.0","id":"b","method":"sessionWhoami"}]`
		res := ta.post(bearer(tok), []byte(body))
		if res.status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", res.status, res.body)
		}
		var replies []rpcReply
		if err := json.Unmarshal(res.body, &replies); err != nil {
			t.Fatalf("batch reply %s: %v", res.body, err)
		}
		ids := map[string]bool{}
		for _, r := range replies {
			if r.Error != nil {
				t.Errorf("reply %s failed: %+v", r.ID, r.Error)
			}
			ids[string(r.ID)] = true
		}
		if len(replies) != 2 || !ids[`"a"`] || !ids[`"b"`] {
			t.Errorf("batch reply %s, want replies to a and b only", res.body)
		}
	})

	t.Run("request id", func(t *testing.T) {
		seen := map[string]bool{}
		check := func(what string, res httpResult) {
			t.Helper()
			id := res.header.Get("X-Request-Id")
			if id == "" {
				t.Errorf("%s: no X-Request-Id", what)
			}
			if seen[id] {
				t.Errorf("%s: X-Request-Id %q repeated", what, id)
			}
			seen[id] = true
		}
		check("200", ta.post(bearer(tok), ping))
		check("204", ta.post(bearer(tok), []byte(`{"jsonrpc":"2.0","method":"serverPing"}`)))
		check("401", ta.post(nil, ping))
		check("415", ta.do(http.MethodPost, "/rpc", bearer(tok), ping))
		check("413", ta.post(bearer(tok), pad(t, nil, 2*limit)))
		check("healthz", ta.do(http.MethodGet, "/healthz", nil, nil))
	})
}

// TestWebSocketMessageTooBig checks that a message over the size limit
// closes that connection with 1009 and nothing else: other clients, and
// new ones, are still served.
func TestWebSocketMessageTooBig(t *testing.T) {
	const limit = 1024
	ta := startApp(t, serveConfig{limits: rpc.Limits{MaxMessageSize: limit}})
	tok := ta.token("alice", service.Permissions{}, time.Hour)

	bystander := ta.dial(bearer(tok))
	wsCall(t, bystander, "serverPing", nil)

	// A message of exactly the limit is served.
	offender := ta.dial(bearer(tok))
	req, id := request("serverPing", nil)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := offender.Write(ctx, websocket.MessageText, pad(t, req, limit)); err != nil {
		t.Fatal(err)
	}
	_, b, err := offender.Read(ctx)
	if err != nil {
		t.Fatalf("a message of exactly the limit was not answered: %v", err)
	}
	decodeReply(t, "serverPing", b, id)

	// One over the limit closes the connection with 1009.
	req, _ = request("serverPing", nil)
	if err := offender.Write(ctx, websocket.MessageText, pad(t, req, 2*limit)); err != nil {
		t.Fatal(err)
	}
	if code := readClose(t, offender); code != websocket.StatusMessageTooBig {
		t.Errorf("close code %v, want %v", code, websocket.StatusMessageTooBig)
	}

	wsCall(t, bystander, "serverPing", nil).decode(t, new(pingResult))
	wsCall(t, ta.dial(bearer(tok)), "serverPing", nil).decode(t, new(pingResult))

	tooBig := map[string]string{"reason": "message_too_big"}
	eventually(t, "the disconnect to be counted as message_too_big", func() bool {
		return ta.scrape().value("switchboard_disconnects_total", tooBig) == 1
	})
}

// Every HTTP failure has a JSON body with a snake_case code, including a
// plain GET of the WebSocket endpoint and the router's own 404 and 405.
func TestHTTPErrorsAreJSON(t *testing.T) {
	ta := startApp(t, serveConfig{})
	tok := ta.token("alice", service.Permissions{}, time.Hour)

	res := ta.do(http.MethodGet, "/rpc", bearer(tok), nil)
	wantHTTPError(t, "GET /rpc without a handshake", res.status, res.header, res.body, http.StatusUpgradeRequired, "upgrade_required")

	res = ta.do(http.MethodGet, "/no-such-route", nil, nil)
	wantHTTPError(t, "unknown route", res.status, res.header, res.body, http.StatusNotFound, "not_found")

	res = ta.do(http.MethodDelete, "/rpc", bearer(tok), nil)
	wantHTTPError(t, "DELETE /rpc", res.status, res.header, res.body, http.StatusMethodNotAllowed, "method_not_allowed")
}
