package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestAuthRefusals checks that every kind of bad credential gets HTTP 401
// with a JSON body, both on the WebSocket upgrade (which must not happen)
// and on POST /rpc.
func TestAuthRefusals(t *testing.T) {
	ta := servertest.Start(t, server.Config{})

	otherAuthority, err := auth.New([]byte(servertest.RandomSecret()))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := otherAuthority.Issue("mallory", service.Permissions{Admin: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired := servertest.ExpiredToken(t, ta.Secret, "alice")

	cases := []struct {
		name        string
		header      http.Header
		query       string // access_token value, for the WebSocket only
		wantMessage string // a word the error message must contain
	}{
		{name: "missing token", wantMessage: "missing token"},
		{name: "malformed header: wrong scheme", header: http.Header{"Authorization": {"Basic YWxpY2U6c2VjcmV0"}}, wantMessage: "malformed"},
		{name: "malformed header: no token", header: http.Header{"Authorization": {"Bearer"}}, wantMessage: "malformed"},
		{name: "malformed header: blank token", header: http.Header{"Authorization": {"Bearer   "}}, wantMessage: "malformed"},
		{name: "garbage token", header: servertest.Bearer("not-a-jwt"), wantMessage: "malformed"},
		{name: "wrong signature", header: servertest.Bearer(forged), wantMessage: "signature"},
		{name: "expired", header: servertest.Bearer(expired), wantMessage: "expired"},
		{name: "expired, in the query", query: expired, wantMessage: "expired"},
		{name: "wrong signature, in the query", query: forged, wantMessage: "signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := ta.WSURL()
			if tc.query != "" {
				u += "?access_token=" + url.QueryEscape(tc.query)
			}
			ws, resp, err := servertest.DialRaw(t, u, tc.header)
			msg := servertest.WantRefusedUpgrade(t, "GET /rpc", ws, resp, err, http.StatusUnauthorized, "unauthorized")
			if !strings.Contains(strings.ToLower(msg), tc.wantMessage) {
				t.Errorf("GET /rpc: message %q does not mention %q", msg, tc.wantMessage)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("GET /rpc: WWW-Authenticate %q, want a Bearer challenge", got)
			}

			if tc.query != "" {
				return // POST /rpc takes tokens from the header
			}
			// POST /rpc answers a JSON-RPC error, for JSON-RPC clients,
			// with the request's id, and keeps the 401.
			body, id := servertest.Request("sessionWhoami", nil)
			msg = servertest.WantUnauthorizedRPC(t, "POST /rpc", ta.Post(tc.header, body), id)
			if !strings.Contains(strings.ToLower(msg), tc.wantMessage) {
				t.Errorf("POST /rpc: message %q does not mention %q", msg, tc.wantMessage)
			}
		})
	}
}

// A refused batch gets one error per call with an id; a body that does
// not arrive in time, one error with a null id.
func TestUnauthorizedPOSTIsJSONRPC(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	res := ta.Post(nil, []byte(`[{"jsonrpc":"2.0","id":"a","method":"serverPing"},{"jsonrpc":"2.0","method":"serverPing"},{"jsonrpc":"2.0","id":7,"method":"serverInfo"}]`))
	var replies []servertest.Reply
	if err := json.Unmarshal(res.Body, &replies); err != nil || res.Status != http.StatusUnauthorized {
		t.Fatalf("batch: HTTP %d %s: %v", res.Status, res.Body, err)
	}
	if len(replies) != 2 || string(replies[0].ID) != `"a"` || string(replies[1].ID) != `7` || replies[0].Error.Code != -32001 {
		t.Fatalf("batch: replies %s, want -32001 for \"a\" and 7", res.Body)
	}

	conn := slowBody(t, ta, http.MethodPost, "/rpc", "", 200000)
	resp := readResponse(t, conn, 5*time.Second)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("slow body: HTTP %d, want 401", resp.StatusCode)
	}
}

// TestAuthAccepted checks that a valid token is accepted from the
// Authorization header (WebSocket and POST) and from the access_token query
// parameter (WebSocket), and that the caller is the token's subject.
func TestAuthAccepted(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{Subscribe: []string{"chat.>"}}, time.Hour)

	t.Run("websocket, header", func(t *testing.T) {
		ws := ta.Dial(servertest.Bearer(tok))
		var w servertest.WhoamiResult
		servertest.WSCall(t, ws, "sessionWhoami", nil).Decode(t, &w)
		if w.User != "alice" || w.Anonymous {
			t.Errorf("whoami = %+v, want user alice, not anonymous", w)
		}
	})
	t.Run("websocket, query", func(t *testing.T) {
		ws, _, err := servertest.DialRaw(t, ta.WSURL()+"?access_token="+url.QueryEscape(tok), nil)
		if err != nil {
			t.Fatalf("dial with access_token: %v", err)
		}
		var w servertest.WhoamiResult
		servertest.WSCall(t, ws, "sessionWhoami", nil).Decode(t, &w)
		if w.User != "alice" || w.Anonymous {
			t.Errorf("whoami = %+v, want user alice, not anonymous", w)
		}
	})
	t.Run("http, header", func(t *testing.T) {
		r, _ := ta.Call(servertest.Bearer(tok), "sessionWhoami", nil)
		var w servertest.WhoamiResult
		r.Decode(t, &w)
		if w.User != "alice" || w.Anonymous {
			t.Errorf("whoami = %+v, want user alice, not anonymous", w)
		}
	})
	t.Run("lower-case scheme", func(t *testing.T) {
		r, _ := ta.Call(http.Header{"Authorization": {"bearer " + tok}}, "sessionWhoami", nil)
		var w servertest.WhoamiResult
		r.Decode(t, &w)
		if w.User != "alice" {
			t.Errorf("whoami user %q, want alice", w.User)
		}
	})
}

// TestAnonymous checks that callers without a token get exactly the
// configured anonymous permissions when anonymous access is on, and that a
// bad token is still refused rather than downgraded to anonymous.
func TestAnonymous(t *testing.T) {
	subscribe := []string{"news.*", "chat.>"}
	ta := servertest.Start(t, server.Config{Anonymous: true, AnonymousSubscribe: subscribe})

	ws := ta.Dial(nil)
	var w servertest.WhoamiResult
	servertest.WSCall(t, ws, "sessionWhoami", nil).Decode(t, &w)
	if !w.Anonymous || w.User != "" {
		t.Errorf("whoami: anonymous=%v user=%q, want anonymous with no user", w.Anonymous, w.User)
	}
	if !slices.Equal(w.Permissions.Subscribe, subscribe) {
		t.Errorf("subscribe = %q, want %q", w.Permissions.Subscribe, subscribe)
	}
	if w.Permissions.Publish == nil || len(w.Permissions.Publish) != 0 {
		t.Errorf("publish = %#v, want [] (none configured)", w.Permissions.Publish)
	}
	if w.Permissions.Admin {
		t.Error("anonymous caller is admin")
	}
	if w.ExpiresAt != nil {
		t.Errorf("anonymous caller has expiresAt %v", w.ExpiresAt)
	}
	if w.Transport != "websocket" {
		t.Errorf("transport %q, want websocket", w.Transport)
	}

	// Over HTTP as well.
	r, _ := ta.Call(nil, "sessionWhoami", nil)
	var hw servertest.WhoamiResult
	r.Decode(t, &hw)
	if !hw.Anonymous || !slices.Equal(hw.Permissions.Subscribe, subscribe) {
		t.Errorf("POST whoami = %+v, want anonymous with subscribe %q", hw, subscribe)
	}

	// A token that fails verification is an error, not anonymity.
	expired := servertest.ExpiredToken(t, ta.Secret, "alice")
	ws2, resp, err := servertest.DialRaw(t, ta.WSURL(), servertest.Bearer(expired))
	servertest.WantRefusedUpgrade(t, "expired token with anonymous on", ws2, resp, err, http.StatusUnauthorized, "unauthorized")
	body, id := servertest.Request("sessionWhoami", nil)
	servertest.WantUnauthorizedRPC(t, "POST with expired token, anonymous on", ta.Post(servertest.Bearer(expired), body), id)
}

// TestTokenExpiryClosesSocket checks that a WebSocket opened with a token
// is closed with 4001 when the token expires, rather than living on.
func TestTokenExpiryClosesSocket(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	// exp has one-second resolution; 3s leaves room for the handshake.
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   "alice",
		IssuedAt:  jwt.NewNumericDate(time.Now()),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(3 * time.Second)),
	}).SignedString([]byte(ta.Secret))
	if err != nil {
		t.Fatal(err)
	}
	ws := ta.Dial(servertest.Bearer(tok))
	servertest.WSCall(t, ws, "serverPing", nil).Decode(t, new(servertest.PingResult))
	if code := servertest.ReadClose(t, ws); code != 4001 {
		t.Errorf("close code %v, want 4001 (token expired)", code)
	}
	expired := map[string]string{"reason": "token_expired"}
	servertest.Eventually(t, "the disconnect to be counted as token_expired", func() bool {
		return ta.Scrape().Value("switchboard_disconnects_total", expired) == 1
	})
}
