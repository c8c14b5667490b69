package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// tokenExpiry reads the exp claim of tok without verifying it: the
// expiry the server must report back.
func tokenExpiry(t *testing.T, tok string) time.Time {
	t.Helper()
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	if c.ExpiresAt == nil {
		t.Fatal("token has no exp")
	}
	return c.ExpiresAt.Time
}

// TestWhoami checks that sessionWhoami reports the token's subject,
// permissions and expiry, the connection and the transport.
func TestWhoami(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	perms := service.Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>", "news.*"}}
	tok := ta.Token("alice", perms, time.Hour)
	exp := tokenExpiry(t, tok)

	check := func(t *testing.T, w servertest.WhoamiResult, transport string) {
		t.Helper()
		if w.User != "alice" || w.Anonymous {
			t.Errorf("user %q anonymous %v, want alice, not anonymous", w.User, w.Anonymous)
		}
		if !slices.Equal(w.Permissions.Publish, perms.Publish) || !slices.Equal(w.Permissions.Subscribe, perms.Subscribe) || w.Permissions.Admin {
			t.Errorf("permissions %+v, want %+v", w.Permissions, perms)
		}
		if w.ExpiresAt == nil || !w.ExpiresAt.Equal(exp) {
			t.Errorf("expiresAt %v, want the token's exp %v", w.ExpiresAt, exp)
		}
		if w.Transport != transport {
			t.Errorf("transport %q, want %q", w.Transport, transport)
		}
		if w.ConnectionID == "" {
			t.Error("connectionId is empty")
		}
	}

	t.Run("websocket", func(t *testing.T) {
		ws1 := ta.Dial(servertest.Bearer(tok))
		ws2 := ta.Dial(servertest.Bearer(tok))
		var a, a2, b servertest.WhoamiResult
		servertest.WSCall(t, ws1, "sessionWhoami", nil).Decode(t, &a)
		servertest.WSCall(t, ws1, "sessionWhoami", nil).Decode(t, &a2)
		servertest.WSCall(t, ws2, "sessionWhoami", nil).Decode(t, &b)
		check(t, a, "websocket")
		check(t, b, "websocket")
		if a.ConnectionID != a2.ConnectionID {
			t.Errorf("one connection reported two ids, %q and %q", a.ConnectionID, a2.ConnectionID)
		}
		if a.ConnectionID == b.ConnectionID {
			t.Errorf("two connections share the id %q", a.ConnectionID)
		}
	})

	t.Run("http", func(t *testing.T) {
		r, res := ta.Call(servertest.Bearer(tok), "sessionWhoami", nil)
		var w servertest.WhoamiResult
		r.Decode(t, &w)
		check(t, w, "http")
		if rid := res.Header.Get("X-Request-Id"); w.ConnectionID != rid {
			t.Errorf("connectionId %q, want the request's id %q", w.ConnectionID, rid)
		}
	})

	t.Run("admin, never expires", func(t *testing.T) {
		admin := ta.Token("root", service.Permissions{Admin: true}, 0)
		ws := ta.Dial(servertest.Bearer(admin))
		var w servertest.WhoamiResult
		r := servertest.WSCall(t, ws, "sessionWhoami", nil)
		r.Decode(t, &w)
		if w.User != "root" || !w.Permissions.Admin {
			t.Errorf("whoami %+v, want user root, admin", w)
		}
		if w.ExpiresAt != nil {
			t.Errorf("expiresAt %v for a token without exp", w.ExpiresAt)
		}
		// Empty lists are [] on the wire, not null, and expiresAt is absent.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(r.Result, &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["expiresAt"]; ok {
			t.Errorf("expiresAt present in %s", r.Result)
		}
		var p map[string]json.RawMessage
		if err := json.Unmarshal(raw["permissions"], &p); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"publish", "subscribe"} {
			if string(p[k]) != "[]" {
				t.Errorf("permissions.%s = %s, want []", k, p[k])
			}
		}
	})
}

// TestServerInfo checks serverInfo against the data directory's node id,
// the build's version and the number of open sockets.
func TestServerInfo(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	b, err := os.ReadFile(filepath.Join(ta.Config.DataDir, "node-id"))
	if err != nil {
		t.Fatalf("data directory has no node-id: %v", err)
	}
	nodeID := strings.TrimSpace(string(b))
	if nodeID == "" {
		t.Fatal("node-id file is empty")
	}

	ws1 := ta.Dial(servertest.Bearer(tok))
	ws2 := ta.Dial(servertest.Bearer(tok))
	servertest.WSCall(t, ws1, "serverPing", nil) // ws1 is being served by now
	var info servertest.InfoResult
	servertest.WSCall(t, ws2, "serverInfo", nil).Decode(t, &info)
	if info.NodeID != nodeID {
		t.Errorf("nodeId %q, want the data directory's %q", info.NodeID, nodeID)
	}
	if info.Version != ta.Config.Version {
		t.Errorf("version %q, want the build's %q", info.Version, ta.Config.Version)
	}
	// This server is the test's own: exactly the two sockets are open.
	if info.Connections != 2 {
		t.Errorf("connections = %d with 2 sockets open", info.Connections)
	}
	if info.StartedAt.IsZero() || info.StartedAt.After(time.Now()) {
		t.Errorf("startedAt %v", info.StartedAt)
	}
	if info.UptimeSeconds < 0 {
		t.Errorf("uptimeSeconds %v", info.UptimeSeconds)
	}

	// HTTP calls are not connections.
	r, _ := ta.Call(servertest.Bearer(tok), "serverInfo", nil)
	var hinfo servertest.InfoResult
	r.Decode(t, &hinfo)
	if hinfo.Connections != 2 || hinfo.NodeID != nodeID {
		t.Errorf("over HTTP: connections %d nodeId %q, want 2 and %q", hinfo.Connections, hinfo.NodeID, nodeID)
	}

	// A closed socket stops counting.
	ws1.Close(websocket.StatusNormalClosure, "")
	servertest.Eventually(t, "connections to drop to 1", func() bool {
		var i servertest.InfoResult
		servertest.WSCall(t, ws2, "serverInfo", nil).Decode(t, &i)
		return i.Connections == 1
	})
}

// TestPing checks that serverPing answers with the server's clock.
func TestPing(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	ws := ta.Dial(servertest.Bearer(tok))
	before := time.Now()
	var p servertest.PingResult
	servertest.WSCall(t, ws, "serverPing", nil).Decode(t, &p)
	after := time.Now()
	// Same machine, same clock; a minute's slack for clock steps.
	if p.Time.Before(before.Add(-time.Minute)) || p.Time.After(after.Add(time.Minute)) {
		t.Errorf("ping time %v, not between %v and %v", p.Time, before, after)
	}
	if _, off := p.Time.Zone(); off != 0 {
		t.Errorf("ping time %v is not in UTC", p.Time)
	}
	r, _ := ta.Call(servertest.Bearer(tok), "serverPing", map[string]any{})
	r.Decode(t, &p)
}

// TestDiscover checks that rpc.discover, GET /openrpc.json and the
// committed openrpc.json are the same document.
func TestDiscover(t *testing.T) {
	committed, err := os.ReadFile("../openrpc.json")
	if err != nil {
		t.Fatal(err)
	}
	ta := servertest.Start(t, server.Config{})

	// GET /openrpc.json is public and byte-for-byte the committed file.
	res := ta.Do(http.MethodGet, "/openrpc.json", nil, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET /openrpc.json: HTTP %d", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /openrpc.json: Content-Type %q", ct)
	}
	if !bytes.Equal(res.Body, committed) {
		t.Errorf("GET /openrpc.json differs from the committed openrpc.json (run make openrpc)")
	}

	var want any
	if err := json.Unmarshal(committed, &want); err != nil {
		t.Fatalf("openrpc.json: %v", err)
	}
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	for _, transport := range []string{"websocket", "http"} {
		var r servertest.Reply
		if transport == "websocket" {
			r = servertest.WSCall(t, ta.Dial(servertest.Bearer(tok)), "rpc.discover", nil)
		} else {
			r, _ = ta.Call(servertest.Bearer(tok), "rpc.discover", nil)
		}
		var got any
		r.Decode(t, &got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("rpc.discover over %s differs from openrpc.json", transport)
		}
	}
}

// A connection's id is the id the server gave its upgrade request, so log
// lines of the two can be matched; an id sent by the client is not used,
// because connection ids must be unique and not of the client's choosing.
func TestConnectionIDIsTheUpgradeRequestID(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	h := servertest.Bearer(tok)
	h.Set("X-Request-Id", "chosen-by-client")

	ws, resp, err := servertest.DialRaw(t, ta.WSURL(), h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" || rid == "chosen-by-client" {
		t.Fatalf("upgrade response X-Request-Id %q, want one of the server's making", rid)
	}
	var w servertest.WhoamiResult
	servertest.WSCall(t, ws, "sessionWhoami", nil).Decode(t, &w)
	if w.ConnectionID != rid {
		t.Errorf("connectionId %q, want the upgrade request's id %q", w.ConnectionID, rid)
	}
}
