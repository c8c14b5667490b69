package main

// The binary serving /metrics on its own address, as --metrics-listen
// and its banner line say.

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// /metrics tells a caller the server's descriptors, memory and versions:
// only admins may read it on the main address; --metrics-listen serves it
// elsewhere, to anyone who reaches that address, and not on the main one.
func TestMetricsAreNotPublic(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	res := ta.Do(http.MethodGet, "/metrics", nil, nil)
	servertest.WantHTTPError(t, "/metrics without a token", res.Status, res.Header, res.Body, http.StatusUnauthorized, "unauthorized")
	res = ta.Do(http.MethodGet, "/metrics", servertest.Bearer(ta.Token("alice", service.Permissions{Subscribe: []string{">"}}, time.Hour)), nil)
	servertest.WantHTTPError(t, "/metrics for a user", res.Status, res.Header, res.Body, http.StatusForbidden, "forbidden")
	ta.Scrape().WantFamily(t, "switchboard_connections_open", dto.MetricType_GAUGE)

	s := startServer(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--metrics-listen", "127.0.0.1:0")
	m := metricsLine.FindStringSubmatch(s.banner)
	if m == nil {
		t.Fatalf("the banner %q does not say where the metrics are", s.banner)
	}
	ops := &servertest.Server{T: t, Addr: m[1], HTTP: &http.Client{Timeout: servertest.IOTimeout}}
	if res := ops.Do(http.MethodGet, "/metrics", nil, nil); res.Status != http.StatusOK || !bytes.Contains(res.Body, []byte("switchboard_connections_open")) {
		t.Fatalf("/metrics on --metrics-listen: HTTP %d %.100s", res.Status, res.Body)
	}
	if res := ops.DoHost(http.MethodGet, "/metrics", "attacker.test", nil); res.Status != http.StatusForbidden {
		t.Fatalf("/metrics on a loopback --metrics-listen, as Host attacker.test: HTTP %d, want 403", res.Status)
	}
	main := s.client()
	res = main.Do(http.MethodGet, "/metrics", servertest.Bearer(s.readAdminToken()), nil)
	servertest.WantHTTPError(t, "/metrics on --listen, with --metrics-listen", res.Status, res.Header, res.Body, http.StatusNotFound, "not_found")
}

var metricsLine = regexp.MustCompile(`metrics: http://(\S+)/metrics`)
