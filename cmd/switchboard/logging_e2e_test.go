package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/service"
)

// TestTokensNeverLogged runs a server logging at debug level, uses tokens
// every way a client can (accepted and refused, in the query and in the
// header) and checks that no token reaches the log while the requests do.
func TestTokensNeverLogged(t *testing.T) {
	ta := startApp(t, serveConfig{})
	good := ta.token("alice", service.Permissions{Subscribe: []string{"chat.>"}}, time.Hour)
	expired := expiredToken(t, ta.secret, "alice")
	// A token from elsewhere: refused for its signature.
	forged := ta.token("mallory", service.Permissions{Admin: true}, time.Hour)
	forged = forged[:strings.LastIndexByte(forged, '.')+1] + "AAAA" + forged[strings.LastIndexByte(forged, '.')+1:]

	ws, _, err := dialRaw(t, ta.wsURL()+"?access_token="+url.QueryEscape(good), nil)
	if err != nil {
		t.Fatalf("dial with access_token: %v", err)
	}
	wsCall(t, ws, "sessionWhoami", nil).decode(t, new(whoamiResult))
	wsCall(t, ws, "no.such.method", nil)
	ws.Close(websocket.StatusNormalClosure, "")

	// Also as "token", which the redaction covers too, and next to other
	// parameters.
	ws2, _, err := dialRaw(t, ta.wsURL()+"?x=1&token=ignored-"+url.QueryEscape(good)+"&access_token="+url.QueryEscape(good), nil)
	if err != nil {
		t.Fatalf("dial with access_token and token: %v", err)
	}
	wsCall(t, ws2, "serverPing", nil)

	// Under names of a client's own choosing: redacted for looking like
	// a JWT (the token is refused: the server reads access_token only).
	for _, name := range []string{"Access_Token", "jwt", "auth_token", "t"} {
		dialRaw(t, ta.wsURL()+"?"+name+"="+url.QueryEscape(good), nil)
	}

	for _, bad := range []string{expired, forged} {
		ws, resp, err := dialRaw(t, ta.wsURL()+"?access_token="+url.QueryEscape(bad), nil)
		wantRefusedUpgrade(t, "refused query token", ws, resp, err, http.StatusUnauthorized, "unauthorized")
	}
	r, _ := ta.httpCall(bearer(good), "sessionWhoami", nil)
	r.decode(t, new(whoamiResult))
	body, _ := request("serverPing", nil)
	ta.post(bearer(expired), body)

	// The upgrade's log line is written once the handler returns; give the
	// server a moment by waiting for the second connection's request line.
	logs := ""
	eventually(t, "request log lines", func() bool {
		logs = ta.logs.String()
		return strings.Count(logs, "http request") >= 10
	})
	for name, tok := range map[string]string{"valid": good, "expired": expired, "forged": forged} {
		if strings.Contains(logs, tok) {
			t.Errorf("the %s token appears in the log", name)
		}
		// Nor any of its parts: the signature alone is the secret part.
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(logs, sig) {
			t.Errorf("the %s token's signature appears in the log", name)
		}
	}
	if !strings.Contains(logs, "REDACTED") {
		t.Errorf("the log has no redacted query:\n%s", logs)
	}
	if !strings.Contains(logs, "path=/rpc") {
		t.Errorf("the log has no request line for /rpc:\n%s", logs)
	}
}
