package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// metricsSnapshot is one scrape of /metrics.
type metricsSnapshot map[string]*dto.MetricFamily

// scrape fetches /metrics and parses it as the Prometheus text format.
func scrape(ta *servertest.Server) metricsSnapshot {
	ta.T.Helper()
	res := ta.Do(http.MethodGet, "/metrics", servertest.Bearer(ta.Token("prometheus", service.Permissions{Admin: true}, time.Hour)), nil)
	if res.Status != http.StatusOK {
		ta.T.Fatalf("GET /metrics: HTTP %d", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		ta.T.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.Body))
	if err != nil {
		ta.T.Fatalf("GET /metrics is not in the Prometheus text format: %v", err)
	}
	return fams
}

// find returns the sample of name with exactly labels, or nil.
func (s metricsSnapshot) find(name string, labels map[string]string) *dto.Metric {
	f := s[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// value returns a counter's or gauge's value, 0 for a series not yet
// exported (counter vectors export a series once it is first touched).
func (s metricsSnapshot) value(name string, labels map[string]string) float64 {
	m := s.find(name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// histogramCount returns how many observations a histogram series holds.
func (s metricsSnapshot) histogramCount(name string, labels map[string]string) uint64 {
	if m := s.find(name, labels); m != nil && m.Histogram != nil {
		return m.Histogram.GetSampleCount()
	}
	return 0
}

func (s metricsSnapshot) wantFamily(t *testing.T, name string, typ dto.MetricType) {
	t.Helper()
	f := s[name]
	if f == nil {
		t.Errorf("/metrics has no %s", name)
		return
	}
	if f.GetType() != typ {
		t.Errorf("%s is a %v, want a %v", name, f.GetType(), typ)
	}
}

// TestMetrics checks that /metrics exposes Switchboard's metrics and that
// they count what clients do.
func TestMetrics(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)

	before := scrape(ta)
	before.wantFamily(t, "switchboard_connections_open", dto.MetricType_GAUGE)
	before.wantFamily(t, "switchboard_notifications_sent_total", dto.MetricType_COUNTER)
	before.wantFamily(t, "switchboard_notifications_dropped_total", dto.MetricType_COUNTER)
	if before.value("switchboard_connections_open", nil) != 0 {
		t.Errorf("connections_open = %v before any connection", before.value("switchboard_connections_open", nil))
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

	mid := scrape(ta)
	if d := mid.value("switchboard_rpc_calls_total", ping) - before.value("switchboard_rpc_calls_total", ping); d != 3 {
		t.Errorf("rpc_calls_total%v grew by %v after 3 pings", ping, d)
	}
	if d := mid.histogramCount("switchboard_rpc_call_duration_seconds", pingLatency) - before.histogramCount("switchboard_rpc_call_duration_seconds", pingLatency); d != 3 {
		t.Errorf("rpc_call_duration_seconds%v observed %v calls after 3 pings", pingLatency, d)
	}
	mid.wantFamily(t, "switchboard_rpc_call_duration_seconds", dto.MetricType_HISTOGRAM)
	if d := mid.value("switchboard_rpc_calls_total", unknown) - before.value("switchboard_rpc_calls_total", unknown); d != 1 {
		t.Errorf("rpc_calls_total%v grew by %v after 1 unknown call", unknown, d)
	}
	for _, m := range mid["switchboard_rpc_calls_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" && l.GetValue() == bogus {
				t.Errorf("an unregistered method name became a label value: %v", m)
			}
		}
	}
	if got := mid.value("switchboard_connections_open", nil); got != 1 {
		t.Errorf("connections_open = %v with one socket open", got)
	}

	// A client that closes is counted as a disconnect for reason "client".
	clientGone := map[string]string{"reason": "client"}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	var after metricsSnapshot
	servertest.Eventually(t, "the disconnect to be counted", func() bool {
		after = scrape(ta)
		return after.value("switchboard_disconnects_total", clientGone)-before.value("switchboard_disconnects_total", clientGone) == 1
	})
	after.wantFamily(t, "switchboard_disconnects_total", dto.MetricType_COUNTER)
	if got := after.value("switchboard_connections_open", nil); got != 0 {
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

// /metrics tells a caller the server's descriptors, memory and versions:
// only admins may read it on the main address; --metrics-listen serves it
// elsewhere, to anyone who reaches that address, and not on the main one.
func TestMetricsAreNotPublic(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	res := ta.Do(http.MethodGet, "/metrics", nil, nil)
	servertest.WantHTTPError(t, "/metrics without a token", res.Status, res.Header, res.Body, http.StatusUnauthorized, "unauthorized")
	res = ta.Do(http.MethodGet, "/metrics", servertest.Bearer(ta.Token("alice", service.Permissions{Subscribe: []string{">"}}, time.Hour)), nil)
	servertest.WantHTTPError(t, "/metrics for a user", res.Status, res.Header, res.Body, http.StatusForbidden, "forbidden")
	scrape(ta).wantFamily(t, "switchboard_connections_open", dto.MetricType_GAUGE)

	s := startServer(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--metrics-listen", "127.0.0.1:0")
	m := metricsLine.FindStringSubmatch(s.banner)
	if m == nil {
		t.Fatalf("the banner %q does not say where the metrics are", s.banner)
	}
	ops := &servertest.Server{T: t, Addr: m[1], HTTP: &http.Client{Timeout: servertest.IOTimeout}}
	if res := ops.Do(http.MethodGet, "/metrics", nil, nil); res.Status != http.StatusOK || !bytes.Contains(res.Body, []byte("switchboard_connections_open")) {
		t.Fatalf("/metrics on --metrics-listen: HTTP %d %.100s", res.Status, res.Body)
	}
	if res := doHost(ops, http.MethodGet, "/metrics", "attacker.test", nil); res.Status != http.StatusForbidden {
		t.Fatalf("/metrics on a loopback --metrics-listen, as Host attacker.test: HTTP %d, want 403", res.Status)
	}
	main := s.client()
	res = main.Do(http.MethodGet, "/metrics", servertest.Bearer(s.readAdminToken()), nil)
	servertest.WantHTTPError(t, "/metrics on --listen, with --metrics-listen", res.Status, res.Header, res.Body, http.StatusNotFound, "not_found")
}

var metricsLine = regexp.MustCompile(`metrics: http://(\S+)/metrics`)
