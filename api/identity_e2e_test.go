package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestSessionRefreshOutlivesTheFirstToken: a connection warned that its
// token expires sends a fresh one and lives on past the first's expiry,
// now with the narrower permissions of the new token: the subscription
// they no longer allow ends with reason "permission", after the reply,
// and the one they allow goes on delivering.
func TestSessionRefreshOutlivesTheFirstToken(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	wide := service.Permissions{Publish: []string{">"}, Subscribe: []string{"chat.>", "news.>"}}
	c := ta.HubClient(ta.Token("alice", wide, 3*time.Second))
	c.Subscribe(map[string]any{"channel": "chat.lobby"})
	c.Subscribe(map[string]any{"channel": "news.today"})
	first := c.Whoami().ExpiresAt

	var notice rpc.ExpiringParams
	c.NextNote("sessionExpiring", &notice) // halfway: the token is shorter than the notice
	if notice.ExpiresAt.Unix() != first.Unix() {
		t.Fatalf("sessionExpiring says %v, the token expires at %v", notice.ExpiresAt, first)
	}
	narrow := service.Permissions{Publish: []string{">"}, Subscribe: []string{"chat.>"}}
	var w servertest.WhoamiResult
	fresh := ta.Token("alice", narrow, time.Hour)
	r := c.Call("sessionRefresh", map[string]any{"token": fresh})
	if r.Error != nil {
		t.Fatalf("sessionRefresh: %d %s", r.Error.Code, r.Error.Message)
	}
	r.Decode(t, &w)
	refreshID := string(r.ID)
	if w.ExpiresAt == nil || !w.ExpiresAt.After(first.Add(30*time.Minute)) {
		t.Fatalf("sessionRefresh says the token expires at %v, want an hour from now", w.ExpiresAt)
	}
	if len(w.Permissions.Subscribe) != 1 || w.Permissions.Subscribe[0] != "chat.>" {
		t.Errorf("sessionRefresh permissions %+v, want the new token's", w.Permissions)
	}
	var gone struct{ Channel, Reason string }
	c.NextNote("channelUnsubscribed", &gone)
	if gone.Channel != "news.today" || gone.Reason != service.ReasonPermission {
		t.Errorf("channelUnsubscribed %+v, want news.today for %q", gone, service.ReasonPermission)
	}
	order := c.Frames()
	if note, reply := indexOf(order, "channelUnsubscribed"), indexOf(order, "reply:"+refreshID); reply < 0 || note < reply {
		t.Errorf("frames %v: channelUnsubscribed should follow the sessionRefresh reply (%s)", order, refreshID)
	}
	if msg := c.Fails("channelSubscribe", map[string]any{"channel": "news.today"}, rpc.CodeForbidden); msg == "" {
		t.Error("news.today may still be subscribed to")
	}

	time.Sleep(time.Until(*first) + time.Second) // past the first token's expiry
	other := ta.HubClient(ta.Token("bob", wide, time.Hour))
	other.Publish("news.today", "not for alice")
	other.Publish("chat.lobby", "for alice")
	if p := c.NextPublication(); p.Channel != "chat.lobby" {
		t.Errorf("after the refresh, got a publication of %s, want chat.lobby's", p.Channel)
	}
	if got := c.Whoami().User; got != "alice" {
		t.Errorf("whoami after the first expiry: %q", got)
	}
	if strings.Contains(ta.Logs.String(), fresh) {
		t.Error("the refreshed token is in the server's log")
	}
}

func indexOf(s []string, v string) int {
	for i, e := range s {
		if e == v {
			return i
		}
	}
	return -1
}

// TestSessionRefreshRefusals: a token of another user, a bad token, an
// anonymous connection and HTTP are refused, and the connection keeps
// its token.
func TestSessionRefreshRefusals(t *testing.T) {
	ta := servertest.Start(t, server.Config{Anonymous: true})
	perms := service.Permissions{Subscribe: []string{">"}}
	c := ta.HubClient(ta.Token("alice", perms, time.Hour))
	before := c.Whoami()

	if msg := c.Fails("sessionRefresh", map[string]any{"token": ta.Token("mallory", service.Permissions{Admin: true}, time.Hour)}, rpc.CodeForbidden); !strings.Contains(msg, "mallory") {
		t.Errorf("another user's token: %q, want it named", msg)
	}
	if msg := c.Fails("sessionRefresh", map[string]any{"token": "not.a.token"}, rpc.CodeUnauthorized); msg == "" {
		t.Error("a malformed token was taken")
	}
	if msg := c.Fails("sessionRefresh", map[string]any{"token": servertest.ExpiredToken(t, ta.Secret, "alice")}, rpc.CodeUnauthorized); !strings.Contains(msg, "expired") {
		t.Errorf("an expired token: %q", msg)
	}
	after := c.Whoami()
	if after.User != "alice" || after.ExpiresAt == nil || !after.ExpiresAt.Equal(*before.ExpiresAt) || after.Permissions.Admin {
		t.Errorf("after refused refreshes, whoami %+v, want %+v", after, before)
	}

	anon := ta.AnonHubClient()
	anon.Fails("sessionRefresh", map[string]any{"token": ta.Token("alice", perms, time.Hour)}, rpc.CodeForbidden)

	r, _ := ta.Call(servertest.Bearer(ta.Token("alice", perms, time.Hour)), "sessionRefresh", map[string]any{"token": ta.Token("alice", perms, time.Hour)})
	if r.Error == nil || r.Error.Code != rpc.CodeSocketRequired {
		t.Errorf("sessionRefresh over HTTP: %+v, want %d", r.Error, rpc.CodeSocketRequired)
	}
}

// TestTokenExpiryClosesWithoutRefresh: a connection that does not answer
// sessionExpiring is closed with 4001 at its token's expiry.
func TestTokenExpiryClosesWithoutRefresh(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	c := ta.HubClient(ta.Token("alice", service.Permissions{}, 2*time.Second))
	var notice rpc.ExpiringParams
	c.NextNote("sessionExpiring", &notice)
	if code, _ := c.Closed(); code != rpc.CloseTokenExpired {
		t.Errorf("close code %d, want %d", code, rpc.CloseTokenExpired)
	}
	if time.Now().Before(notice.ExpiresAt) {
		t.Errorf("closed before %v", notice.ExpiresAt)
	}
}

// TestAdminDisconnect closes every connection of the user, and only the
// user's, with 4003 and the reason; only admins may.
func TestAdminDisconnect(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	admin := ta.HubClient(ta.Token("root", service.Permissions{Admin: true}, time.Hour))
	m1 := ta.HubClient(ta.Token("mallory", service.Permissions{}, time.Hour))
	m2 := ta.HubClient(ta.Token("mallory", service.Permissions{}, time.Hour))
	bob := ta.HubClient(ta.Token("bob", service.Permissions{}, time.Hour))

	bob.Fails("adminDisconnect", map[string]any{"user": "mallory"}, rpc.CodeForbidden)
	var res struct{ Connections int }
	admin.OK("adminDisconnect", map[string]any{"user": "mallory", "reason": "account suspended"}, &res)
	if res.Connections != 2 {
		t.Errorf("adminDisconnect closed %d connections, want 2", res.Connections)
	}
	for _, m := range []*servertest.Client{m1, m2} {
		if code, reason := m.Closed(); code != rpc.CloseDisconnected || reason != "account suspended" {
			t.Errorf("mallory's connection closed with %d %q, want %d %q", code, reason, rpc.CloseDisconnected, "account suspended")
		}
	}
	if bob.Whoami().User != "bob" {
		t.Error("bob was disturbed")
	}
	disconnected := map[string]string{"reason": "disconnected"}
	servertest.Eventually(t, "the disconnects to be counted", func() bool {
		return ta.Scrape().Value("switchboard_disconnects_total", disconnected) == 2
	})
	// She may come back: disconnecting is not revoking.
	ta.HubClient(ta.Token("mallory", service.Permissions{}, time.Hour)).Whoami()
}

// TestAdminRevokeOutlivesARestart: the user's tokens issued before the
// revocation are refused on upgrade and over HTTP, also after a restart,
// newer ones are taken, and lifting the revocation takes the old ones
// back.
func TestAdminRevokeOutlivesARestart(t *testing.T) {
	// No leeway: a token issued a second after the revocation is then
	// taken, where the default would refuse it for 5 s more.
	ta := servertest.Start(t, server.Config{Tokens: server.Tokens{Leeway: -1}})
	admin := ta.Token("root", service.Permissions{Admin: true}, time.Hour)
	old := ta.Token("mallory", service.Permissions{}, time.Hour)
	conn := ta.HubClient(old)

	var res struct{ Connections int }
	ta.HubClient(admin).OK("adminRevoke", map[string]any{"user": "mallory", "until": time.Now().Add(time.Hour)}, &res)
	if res.Connections != 1 {
		t.Errorf("adminRevoke closed %d connections, want 1", res.Connections)
	}
	if code, _ := conn.Closed(); code != rpc.CloseDisconnected {
		t.Errorf("mallory's connection closed with %d, want %d", code, rpc.CloseDisconnected)
	}
	refused := func(when string) {
		t.Helper()
		ws, resp, err := servertest.DialRaw(t, ta.WSURL(), servertest.Bearer(old))
		servertest.WantRefusedUpgrade(t, when+": upgrade", ws, resp, err, http.StatusUnauthorized, "unauthorized")
		body, id := servertest.Request("sessionWhoami", nil)
		if msg := servertest.WantUnauthorizedRPC(t, when+": HTTP call", ta.Post(servertest.Bearer(old), body), id); !strings.Contains(msg, "revoked") {
			t.Errorf("%s: HTTP call with a revoked token: %q", when, msg)
		}
	}
	refused("after adminRevoke")

	time.Sleep(1100 * time.Millisecond) // iat counts seconds: the next token's must be later
	fresh := ta.Token("mallory", service.Permissions{}, time.Hour)
	back := ta.HubClient(fresh)
	back.Whoami()
	if msg := back.Fails("sessionRefresh", map[string]any{"token": old}, rpc.CodeUnauthorized); !strings.Contains(msg, "revoked") {
		t.Errorf("sessionRefresh with a revoked token: %q", msg)
	}

	ta.Stop()
	ta.Restart()
	refused("after a restart")
	ta.HubClient(fresh).Whoami()

	ta.HubClient(admin).OK("adminRevoke", map[string]any{"user": "mallory", "until": time.Now().Add(-time.Second)}, &res)
	ta.HubClient(old).Whoami() // lifted
}
