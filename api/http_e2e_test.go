package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
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
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{MaxMessageSize: limit}})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	ping, _ := servertest.Request("serverPing", nil)

	t.Run("content type", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
			h := servertest.Bearer(tok)
			h.Set("Content-Type", ct)
			res := ta.Do(http.MethodPost, "/rpc", h, ping)
			servertest.WantHTTPError(t, "Content-Type "+ct, res.Status, res.Header, res.Body, http.StatusUnsupportedMediaType, "unsupported_media_type")
		}
		h := servertest.Bearer(tok)
		h.Set("Content-Type", "application/json; charset=utf-8")
		if res := ta.Do(http.MethodPost, "/rpc", h, ping); res.Status != http.StatusOK {
			t.Errorf("Content-Type with charset: HTTP %d: %s", res.Status, res.Body)
		}
	})

	t.Run("size limit", func(t *testing.T) {
		req, id := servertest.Request("serverPing", nil)
		res := ta.Post(servertest.Bearer(tok), pad(t, req, limit))
		if res.Status != http.StatusOK {
			t.Fatalf("body of exactly the limit: HTTP %d: %s", res.Status, res.Body)
		}
		servertest.DecodeReply(t, "serverPing", res.Body, id).Decode(t, new(servertest.PingResult))

		for _, n := range []int{limit + 1, 4 * limit} {
			req, _ := servertest.Request("serverPing", nil)
			res := ta.Post(servertest.Bearer(tok), pad(t, req, n))
			servertest.WantHTTPError(t, "oversized body", res.Status, res.Header, res.Body, http.StatusRequestEntityTooLarge, "too_large")
		}
	})

	t.Run("notifications only", func(t *testing.T) {
		for name, body := range map[string]string{
			"one":   `{"jsonrpc":"2.0","method":"serverPing"}`,
			"batch": `[{"jsonrpc":"2.0","method":"serverPing"},{"jsonrpc":"2.0","method":"sessionWhoami"}]`,
		} {
			res := ta.Post(servertest.Bearer(tok), []byte(body))
			if res.Status != http.StatusNoContent || len(res.Body) != 0 {
				t.Errorf("%s: HTTP %d with %q, want 204 and no body", name, res.Status, res.Body)
			}
		}
	})

	t.Run("batch", func(t *testing.T) {
		body := `[{"jsonrpc":"2.0","id":"a","method":"serverPing"},{"jsonrpc":"2.0","method":"serverPing"},{"jsonrpc":"2.0","id":"b","method":"sessionWhoami"}]`
		res := ta.Post(servertest.Bearer(tok), []byte(body))
		if res.Status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", res.Status, res.Body)
		}
		var replies []servertest.Reply
		if err := json.Unmarshal(res.Body, &replies); err != nil {
			t.Fatalf("batch reply %s: %v", res.Body, err)
		}
		ids := map[string]bool{}
		for _, r := range replies {
			if r.Error != nil {
				t.Errorf("reply %s failed: %+v", r.ID, r.Error)
			}
			ids[string(r.ID)] = true
		}
		if len(replies) != 2 || !ids[`"a"`] || !ids[`"b"`] {
			t.Errorf("batch reply %s, want replies to a and b only", res.Body)
		}
	})

	t.Run("request id", func(t *testing.T) {
		seen := map[string]bool{}
		check := func(what string, res servertest.HTTPResult) {
			t.Helper()
			id := res.Header.Get("X-Request-Id")
			if id == "" {
				t.Errorf("%s: no X-Request-Id", what)
			}
			if seen[id] {
				t.Errorf("%s: X-Request-Id %q repeated", what, id)
			}
			seen[id] = true
		}
		check("200", ta.Post(servertest.Bearer(tok), ping))
		check("204", ta.Post(servertest.Bearer(tok), []byte(`{"jsonrpc":"2.0","method":"serverPing"}`)))
		check("401", ta.Post(nil, ping))
		check("415", ta.Do(http.MethodPost, "/rpc", servertest.Bearer(tok), ping))
		check("413", ta.Post(servertest.Bearer(tok), pad(t, nil, 2*limit)))
		check("healthz", ta.Do(http.MethodGet, "/healthz", nil, nil))
	})
}

// TestWebSocketMessageTooBig checks that a message over the size limit
// closes that connection with 1009 and nothing else: other clients, and
// new ones, are still served.
func TestWebSocketMessageTooBig(t *testing.T) {
	const limit = 1024
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{MaxMessageSize: limit}})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)

	bystander := ta.Dial(servertest.Bearer(tok))
	servertest.WSCall(t, bystander, "serverPing", nil)

	// A message of exactly the limit is served.
	offender := ta.Dial(servertest.Bearer(tok))
	req, id := servertest.Request("serverPing", nil)
	ctx, cancel := context.WithTimeout(context.Background(), servertest.IOTimeout)
	defer cancel()
	if err := offender.Write(ctx, websocket.MessageText, pad(t, req, limit)); err != nil {
		t.Fatal(err)
	}
	_, b, err := offender.Read(ctx)
	if err != nil {
		t.Fatalf("a message of exactly the limit was not answered: %v", err)
	}
	servertest.DecodeReply(t, "serverPing", b, id)

	// One over the limit closes the connection with 1009.
	req, _ = servertest.Request("serverPing", nil)
	if err := offender.Write(ctx, websocket.MessageText, pad(t, req, 2*limit)); err != nil {
		t.Fatal(err)
	}
	if code := servertest.ReadClose(t, offender); code != websocket.StatusMessageTooBig {
		t.Errorf("close code %v, want %v", code, websocket.StatusMessageTooBig)
	}

	servertest.WSCall(t, bystander, "serverPing", nil).Decode(t, new(servertest.PingResult))
	servertest.WSCall(t, ta.Dial(servertest.Bearer(tok)), "serverPing", nil).Decode(t, new(servertest.PingResult))

	tooBig := map[string]string{"reason": "message_too_big"}
	servertest.Eventually(t, "the disconnect to be counted as message_too_big", func() bool {
		return ta.Scrape().Value("switchboard_disconnects_total", tooBig) == 1
	})
}

// Every HTTP failure has a JSON body with a snake_case code, including a
// plain GET of the WebSocket endpoint and the router's own 404 and 405.
func TestHTTPErrorsAreJSON(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)

	res := ta.Do(http.MethodGet, "/rpc", servertest.Bearer(tok), nil)
	servertest.WantHTTPError(t, "GET /rpc without a handshake", res.Status, res.Header, res.Body, http.StatusUpgradeRequired, "upgrade_required")

	res = ta.Do(http.MethodGet, "/no-such-route", nil, nil)
	servertest.WantHTTPError(t, "unknown route", res.Status, res.Header, res.Body, http.StatusNotFound, "not_found")

	res = ta.Do(http.MethodDelete, "/rpc", servertest.Bearer(tok), nil)
	servertest.WantHTTPError(t, "DELETE /rpc", res.Status, res.Header, res.Body, http.StatusMethodNotAllowed, "method_not_allowed")
}

// A body announced as over the limit is refused before any of it is read:
// a client that asks first (Expect: 100-continue, as curl and the Go
// client do for big bodies) gets the 413 instead of a "100 Continue", and
// never sends the body that a server closing on it would answer with a
// connection reset.
func TestOversizedBodyRefusedBeforeItIsSent(t *testing.T) {
	const limit = 512
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{MaxMessageSize: limit}})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	conn, err := net.DialTimeout("tcp", ta.Addr, servertest.IOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(servertest.WaitTimeout))
	fmt.Fprintf(conn, "POST /rpc HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n",
		ta.Addr, tok, 4*limit)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to the headers alone: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	servertest.WantHTTPError(t, "announced oversized body", resp.StatusCode, resp.Header, body, http.StatusRequestEntityTooLarge, "too_large")
}
