package api_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/web"
)

const wantConsoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// TestServedConsole fetches the console as a browser opens it: its page at
// the root and every file it loads under /console/, each the file in
// web/console, with the headers that keep what the server shows from
// running as code.
func TestServedConsole(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	wantHeaders := func(t *testing.T, what string, res servertest.HTTPResult) {
		t.Helper()
		for k, want := range map[string]string{
			"Content-Security-Policy":     wantConsoleCSP,
			"X-Content-Type-Options":      "nosniff",
			"X-Frame-Options":             "DENY",
			"Referrer-Policy":             "no-referrer",
			"Access-Control-Allow-Origin": "",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s: %s %q, want %q", what, k, got, want)
			}
		}
	}

	served := 0
	names, err := filepath.Glob("../web/console/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		base := filepath.Base(name)
		ext := filepath.Ext(base)
		if ext != ".html" && ext != ".js" && ext != ".css" {
			continue
		}
		onDisk, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		path := "/console/" + base
		if base == "index.html" {
			path = "/"
		}
		res := ta.Do(http.MethodGet, path, http.Header{"Accept-Encoding": {"identity"}}, nil)
		if res.Status != http.StatusOK || !bytes.Equal(res.Body, onDisk) {
			t.Errorf("GET %s: HTTP %d, %d bytes; want 200 and web/console/%s's %d", path, res.Status, len(res.Body), base, len(onDisk))
			continue
		}
		if want := web.Console[base].ContentType; res.Header.Get("Content-Type") != want || !strings.HasPrefix(want, map[string]string{
			".html": "text/html", ".js": "text/javascript", ".css": "text/css"}[ext]) {
			t.Errorf("GET %s: Content-Type %q, want %q", path, res.Header.Get("Content-Type"), want)
		}
		wantHeaders(t, "GET "+path, res)
		served++
	}
	if served < 3 || len(web.Console) != served {
		t.Errorf("served %d of web/console's files; the binary embeds %d", served, len(web.Console))
	}

	for _, path := range []string{"/console/nothing.js", "/console/index.html", "/console/tsconfig.json", "/console/"} {
		res := ta.Do(http.MethodGet, path, nil, nil)
		if res.Status != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", path, res.Status)
		}
	}
	head := ta.Do(http.MethodHead, "/", nil, nil)
	if head.Status != http.StatusOK || len(head.Body) != 0 {
		t.Errorf("HEAD /: HTTP %d with %d bytes", head.Status, len(head.Body))
	}
	wantHeaders(t, "HEAD /", head)
}

// TestServerInfoTotals checks the counters serverInfo gives a dashboard to
// draw rates with: they count what /metrics counts.
func TestServerInfoTotals(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	admin := servertest.Bearer(ta.Token("admin", service.Permissions{Admin: true}, time.Hour))
	info := func() api.ServerInfoResult {
		reply, _ := ta.Call(admin, "serverInfo", nil)
		var r api.ServerInfoResult
		reply.Decode(t, &r)
		return r
	}
	first := info()
	for range 5 {
		ta.Call(admin, "serverPing", nil)
	}
	ws := ta.Dial(admin)
	servertest.WSCall(t, ws, "channelSubscribe", map[string]any{"channel": "totals.a"})
	for range 3 {
		ta.Call(admin, "channelPublish", map[string]any{"channel": "totals.a", "data": 1})
	}
	servertest.Eventually(t, "three notifications counted", func() bool { return info().NotificationsTotal-first.NotificationsTotal == 3 })
	second := info()
	// serverInfo, 5 pings, the subscribe, 3 publishes and every serverInfo
	// the wait made in between.
	if got := second.CallsTotal - first.CallsTotal; got < 10 {
		t.Errorf("callsTotal rose by %d, want at least 10", got)
	}
	metrics := ta.Do(http.MethodGet, "/metrics", admin, nil)
	if !strings.Contains(string(metrics.Body), "switchboard_notifications_sent_total "+strconv.FormatUint(second.NotificationsTotal, 10)+"\n") {
		t.Errorf("notificationsTotal %d is not /metrics' switchboard_notifications_sent_total", second.NotificationsTotal)
	}
}
