package api_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestHealthAndReadiness checks the probes of a running server.
func TestHealthAndReadiness(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	for _, path := range []string{"/healthz", "/readyz"} {
		res := ta.Do(http.MethodGet, path, nil, nil)
		if res.Status != http.StatusOK {
			t.Errorf("GET %s: HTTP %d: %s", path, res.Status, res.Body)
		}
		var body map[string]string
		if err := json.Unmarshal(res.Body, &body); err != nil || body["status"] == "" {
			t.Errorf("GET %s: body %q, want a JSON status", path, res.Body)
		}
	}
}

// Load balancers and monitors probe with HEAD as often as with GET.
func TestProbesAnswerHEAD(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	for _, path := range []string{"/healthz", "/readyz", "/openrpc.json"} {
		get := ta.Do(http.MethodGet, path, nil, nil)
		head := ta.Do(http.MethodHead, path, nil, nil)
		if head.Status != http.StatusOK || len(head.Body) != 0 {
			t.Errorf("HEAD %s: HTTP %d with %d bytes of body; want 200 and none", path, head.Status, len(head.Body))
		}
		if ct := head.Header.Get("Content-Type"); ct != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: Content-Type %q; GET says %q", path, ct, get.Header.Get("Content-Type"))
		}
	}
}

// TestMetrics checks that /metrics exposes Switchboard's metrics and that
// they count what clients do.
func TestMetrics(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)

	before := ta.Scrape()
	before.WantFamily(t, "switchboard_connections_open", dto.MetricType_GAUGE)
	before.WantFamily(t, "switchboard_notifications_sent_total", dto.MetricType_COUNTER)
	before.WantFamily(t, "switchboard_notifications_dropped_total", dto.MetricType_COUNTER)
	if before.Value("switchboard_connections_open", nil) != 0 {
		t.Errorf("connections_open = %v before any connection", before.Value("switchboard_connections_open", nil))
	}

	ping := map[string]string{"method": "serverPing", "outcome": "ok"}
	unknown := map[string]string{"method": "unknown", "outcome": "method_not_found"}
	pingLatency := map[string]string{"method": "serverPing"}

	// Three pings: two over a WebSocket, one over HTTP; and one call of a
	// method that does not exist.
	ws := ta.Dial(servertest.Bearer(tok))
	servertest.WSCall(t, ws, "serverPing", nil).Decode(t, new(servertest.PingResult))
	servertest.WSCall(t, ws, "serverPing", nil).Decode(t, new(servertest.PingResult))
	r, _ := ta.Call(servertest.Bearer(tok), "serverPing", nil)
	r.Decode(t, new(servertest.PingResult))
	const bogus = "no.such.method"
	if r := servertest.WSCall(t, ws, bogus, nil); r.Error == nil || r.Error.Code != -32601 {
		t.Fatalf("%s: reply %+v, want error -32601", bogus, r)
	}

	mid := ta.Scrape()
	if d := mid.Value("switchboard_rpc_calls_total", ping) - before.Value("switchboard_rpc_calls_total", ping); d != 3 {
		t.Errorf("rpc_calls_total%v grew by %v after 3 pings", ping, d)
	}
	if d := mid.HistogramCount("switchboard_rpc_call_duration_seconds", pingLatency) - before.HistogramCount("switchboard_rpc_call_duration_seconds", pingLatency); d != 3 {
		t.Errorf("rpc_call_duration_seconds%v observed %v calls after 3 pings", pingLatency, d)
	}
	mid.WantFamily(t, "switchboard_rpc_call_duration_seconds", dto.MetricType_HISTOGRAM)
	if d := mid.Value("switchboard_rpc_calls_total", unknown) - before.Value("switchboard_rpc_calls_total", unknown); d != 1 {
		t.Errorf("rpc_calls_total%v grew by %v after 1 unknown call", unknown, d)
	}
	for _, m := range mid["switchboard_rpc_calls_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" && l.GetValue() == bogus {
				t.Errorf("an unregistered method name became a label value: %v", m)
			}
		}
	}
	if got := mid.Value("switchboard_connections_open", nil); got != 1 {
		t.Errorf("connections_open = %v with one socket open", got)
	}

	// A client that closes is counted as a disconnect for reason "client".
	clientGone := map[string]string{"reason": "client"}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	var after servertest.Metrics
	servertest.Eventually(t, "the disconnect to be counted", func() bool {
		after = ta.Scrape()
		return after.Value("switchboard_disconnects_total", clientGone)-before.Value("switchboard_disconnects_total", clientGone) == 1
	})
	after.WantFamily(t, "switchboard_disconnects_total", dto.MetricType_COUNTER)
	if got := after.Value("switchboard_connections_open", nil); got != 0 {
		t.Errorf("connections_open = %v after the only socket closed", got)
	}
}

// TestReadinessFailsWithTheHistory checks that a node whose history
// storage failed says so on /readyz, so that a load balancer stops sending
// it clients, and answers publishes with -32013.
func TestReadinessFailsWithTheHistory(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	pub := ta.HubClient(ta.Token("alice", service.Permissions{Admin: true}, time.Hour))
	pub.Publish("ok", "before")

	// Any commit failure will do (disk full, I/O error); a trigger makes
	// one on demand, through a connection of the test's own.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(ta.Config.DataDir, server.HistoryFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER fail BEFORE INSERT ON publications BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`); err != nil {
		t.Fatal(err)
	}
	pub.Fails("channelPublish", map[string]any{"channel": "ok", "data": "after"}, rpc.CodeUnavailable)
	pub.Fails("channelPublish", map[string]any{"channel": "other", "data": "after"}, rpc.CodeUnavailable)

	res := ta.Do(http.MethodGet, "/readyz", nil, nil)
	var body map[string]string
	json.Unmarshal(res.Body, &body)
	if res.Status != http.StatusServiceUnavailable || body["status"] != "unavailable" || !strings.Contains(body["error"], "disk on fire") {
		t.Fatalf("/readyz after the history failed: HTTP %d %s, want 503 saying why", res.Status, res.Body)
	}
	if res := ta.Do(http.MethodGet, "/healthz", nil, nil); res.Status != http.StatusOK {
		t.Errorf("/healthz: HTTP %d; the process is alive and should say so", res.Status)
	}
	if !strings.Contains(ta.Logs.String(), "commit failed") {
		t.Errorf("the log does not say that a commit failed")
	}
}
