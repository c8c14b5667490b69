package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestTokensNeverLogged runs a server logging at debug level, uses tokens
// every way a client can (accepted and refused, in the query and in the
// header) and checks that no token reaches the log while the requests do.
func TestTokensNeverLogged(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	good := ta.Token("alice", service.Permissions{Subscribe: []string{"chat.>"}}, time.Hour)
	expired := servertest.ExpiredToken(t, ta.Secret, "alice")
	// A token from elsewhere: refused for its signature.
	forged := ta.Token("mallory", service.Permissions{Admin: true}, time.Hour)
	forged = forged[:strings.LastIndexByte(forged, '.')+1] + "AAAA" + forged[strings.LastIndexByte(forged, '.')+1:]

	ws, _, err := servertest.DialRaw(t, ta.WSURL()+"?access_token="+url.QueryEscape(good), nil)
	if err != nil {
		t.Fatalf("dial with access_token: %v", err)
	}
	servertest.WSCall(t, ws, "sessionWhoami", nil).Decode(t, new(servertest.WhoamiResult))
	servertest.WSCall(t, ws, "no.such.method", nil)
	ws.Close(websocket.StatusNormalClosure, "")

	// Also as "token", which the redaction covers too, and next to other
	// parameters.
	ws2, _, err := servertest.DialRaw(t, ta.WSURL()+"?x=1&token=ignored-"+url.QueryEscape(good)+"&access_token="+url.QueryEscape(good), nil)
	if err != nil {
		t.Fatalf("dial with access_token and token: %v", err)
	}
	servertest.WSCall(t, ws2, "serverPing", nil)

	// Under names of a client's own choosing: redacted for looking like
	// a JWT (the token is refused: the server reads access_token only).
	for _, name := range []string{"Access_Token", "jwt", "auth_token", "t"} {
		servertest.DialRaw(t, ta.WSURL()+"?"+name+"="+url.QueryEscape(good), nil)
	}

	for _, bad := range []string{expired, forged} {
		ws, resp, err := servertest.DialRaw(t, ta.WSURL()+"?access_token="+url.QueryEscape(bad), nil)
		servertest.WantRefusedUpgrade(t, "refused query token", ws, resp, err, http.StatusUnauthorized, "unauthorized")
	}
	r, _ := ta.Call(servertest.Bearer(good), "sessionWhoami", nil)
	r.Decode(t, new(servertest.WhoamiResult))
	body, _ := servertest.Request("serverPing", nil)
	ta.Post(servertest.Bearer(expired), body)

	// The upgrade's log line is written once the handler returns; give the
	// server a moment by waiting for the second connection's request line.
	logs := ""
	servertest.Eventually(t, "request log lines", func() bool {
		logs = ta.Logs.String()
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
