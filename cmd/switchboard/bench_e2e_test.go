package main

// switchboard bench against a real server: each mode briefly, with small
// counts, and its refusals. Nothing here depends on how fast anything
// is: only on the counts agreeing with each other and with the server.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/service"
)

// benchRun is the JSON object bench prints, as a script reads it.
type benchRun struct {
	Mode        string  `json:"mode"`
	Channel     string  `json:"channel"`
	Connections int     `json:"connections"`
	Seconds     float64 `json:"seconds"`
	Interrupted bool    `json:"interrupted"`
	Errors      uint64  `json:"errors"`
	FirstError  string  `json:"firstError"`
	Latency     *struct {
		Count  uint64  `json:"count"`
		P50Ms  float64 `json:"p50Ms"`
		P999Ms float64 `json:"p999Ms"`
		MaxMs  float64 `json:"maxMs"`
	} `json:"latency"`
	Calls        uint64 `json:"calls"`
	Publications uint64 `json:"publications"`
	Subscribers  int    `json:"subscribers"`
	Deliveries   uint64 `json:"deliveries"`
	Lost         uint64 `json:"lost"`
	Duplicates   uint64 `json:"duplicates"`
	Opened       int    `json:"opened"`
	Failed       int    `json:"failed"`
}

// bench runs switchboard bench to completion, wanting exit 0, one JSON
// object on stdout and the table on stderr.
func bench(t *testing.T, env []string, args ...string) benchRun {
	t.Helper()
	r := runCLI(t, env, "", append([]string{"bench"}, args...)...)
	if r.code != 0 {
		t.Fatalf("bench %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return decodeBenchRun(t, r)
}

func decodeBenchRun(t *testing.T, r runResult) benchRun {
	t.Helper()
	var run benchRun
	if strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 || json.Unmarshal([]byte(r.stdout), &run) != nil {
		t.Fatalf("stdout is not one JSON object: %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "switchboard bench "+run.Mode) {
		t.Errorf("stderr has no table for %s: %q", run.Mode, r.stderr)
	}
	if run.Seconds <= 0 || run.Interrupted {
		t.Errorf("%s: seconds %v, interrupted %v: want a whole run", run.Mode, run.Seconds, run.Interrupted)
	}
	if lat := run.Latency; lat != nil && (lat.P50Ms > lat.P999Ms || lat.P999Ms > lat.MaxMs) {
		t.Errorf("%s: percentiles out of order: %+v", run.Mode, *lat)
	}
	return run
}

// TestREADMEBenchExample runs the README's bench example as written.
func TestREADMEBenchExample(t *testing.T) {
	testREADMEExample(t, "### Measuring a server")
}

func TestBenchModes(t *testing.T) {
	s := startCLIServer(t, "", "")

	rpc := bench(t, s.env, "rpc", "--duration", "1s", "--connections", "2", "--depth", "4")
	if rpc.Calls == 0 || rpc.Errors != 0 || rpc.Latency == nil || rpc.Latency.Count != rpc.Calls || rpc.Connections != 2 {
		t.Errorf("rpc: %+v; want calls, each timed, no errors", rpc)
	}

	// Every acknowledged publication is in the channel, and no other.
	pub := bench(t, s.env, "publish", "--duration", "1s", "--connections", "2", "--depth", "2", "--channel", "bench.pub", "--payload", "300")
	if pub.Publications == 0 || pub.Errors != 0 || pub.Latency.Count != pub.Publications || pub.Channel != "bench.pub" {
		t.Errorf("publish: %+v; want publications, each timed, no errors", pub)
	}
	last := publications(t, mustRun(t, s.env, "", "history", "bench.pub", "--limit", "1"))
	if len(last) != 1 || last[0].Offset != pub.Publications {
		t.Errorf("bench.pub's latest publication is %+v; want offset %d, the publications acknowledged", last, pub.Publications)
	}
	var data map[string]any
	if err := json.Unmarshal(last[0].Data, &data); err != nil || len(last[0].Data) != 300 {
		t.Errorf("a publication's data is %d bytes (%v), want 300: %s", len(last[0].Data), err, last[0].Data)
	}

	// In batches, each call counts, and all of them were published.
	batched := bench(t, s.env, "publish", "--duration", "1s", "--connections", "2", "--depth", "2", "--batch", "25", "--channel", "bench.batched")
	if batched.Publications == 0 || batched.Publications%25 != 0 || batched.Errors != 0 || batched.Latency.Count != batched.Publications {
		t.Errorf("publish --batch 25: %+v; want publications in 25s, each timed, no errors", batched)
	}
	last = publications(t, mustRun(t, s.env, "", "history", "bench.batched", "--limit", "1"))
	if len(last) != 1 || last[0].Offset != batched.Publications {
		t.Errorf("bench.batched's latest publication is %+v; want offset %d, the publications acknowledged", last, batched.Publications)
	}

	fan := bench(t, s.env, "fanout", "--duration", "1s", "--subscribers", "5", "--rate", "50")
	if fan.Publications == 0 || fan.Subscribers != 5 || fan.Deliveries != fan.Publications*5 ||
		fan.Lost != 0 || fan.Duplicates != 0 || fan.Errors != 0 || fan.Latency.Count != fan.Deliveries {
		t.Errorf("fanout: %+v; want each publication delivered to each of the 5 subscribers, once", fan)
	}
	if !strings.HasPrefix(fan.Channel, "bench.") {
		t.Errorf("fanout's channel is %q; want the default, bench.<random>", fan.Channel)
	}

	idle := bench(t, s.env, "idle", "--duration", "1s", "--connections", "40", "--subscribe", "--channel", "bench.idle")
	if idle.Opened != 40 || idle.Failed != 0 || idle.Errors != 0 || idle.Channel != "bench.idle" {
		t.Errorf("idle: %+v; want the 40 connections opened", idle)
	}
}

// TestBenchInterrupted stops a run with SIGINT, as Ctrl-C does: it ends
// at once, with exit 0 and what was measured.
func TestBenchInterrupted(t *testing.T) {
	s := startCLIServer(t, "", "")
	p := startCLI(t, s.env, "bench", "idle", "--duration", "10m", "--connections", "3", "--subscribe", "--channel", "bench.held")
	s.waitSubscribed(t, "bench.held", 3)
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(); code != 0 {
		t.Fatalf("bench interrupted: exit %d, want 0; stderr:\n%s", code, p.stderr.String())
	}
	var run benchRun
	if err := json.Unmarshal([]byte(p.next("the report")), &run); err != nil || !run.Interrupted || run.Opened != 3 {
		t.Errorf("bench interrupted: report %+v (%v); want interrupted, with 3 opened", run, err)
	}
}

func TestBenchRefusals(t *testing.T) {
	s := startCLIServer(t, "", "")
	reader := cliToken(t, s.dir, "--sub", "reader", "--subscribe", ">")
	// A server that sends the client on to the real one: bench must not
	// follow it.
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.base+"/rpc", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()

	cases := []struct {
		name     string
		env      []string
		args     []string
		code     int
		inStderr string
	}{
		{"no mode", s.env, []string{}, 2, "usage: switchboard bench"},
		{"unknown mode", s.env, []string{"flood"}, 2, "unknown mode"},
		{"unknown flag", s.env, []string{"rpc", "--nope"}, 2, "-nope"},
		{"too many connections", s.env, []string{"rpc", "--connections", "10001"}, 2, "--connections"},
		{"too many idle connections", s.env, []string{"idle", "--connections", "100001"}, 2, "--connections"},
		{"too many subscribers", s.env, []string{"fanout", "--subscribers", "1000000"}, 2, "--subscribers"},
		{"too long", s.env, []string{"rpc", "--duration", "11m"}, 2, "--duration"},
		{"no depth", s.env, []string{"rpc", "--depth", "0"}, 2, "--depth"},
		{"batch too long", s.env, []string{"publish", "--batch", "1001"}, 2, "--batch"},
		{"negative rate", s.env, []string{"fanout", "--rate", "-1"}, 2, "--rate"},
		{"bad URL", []string{"SWITCHBOARD_URL=ftp://x"}, []string{"rpc"}, 2, "scheme"},
		{"nothing listening", []string{"SWITCHBOARD_URL=ws://" + freeAddr(t)}, []string{"rpc", "--duration", "1s"}, 3, "refused"},
		{"bad token", []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=nope"}, []string{"idle", "--duration", "1s"}, 3, "401"},
		{"a redirect", s.env[1:], []string{"rpc", "--duration", "1s", "--url", redirect.URL}, 3, "refusing to follow a redirect"},
		{"forbidden publish", []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + reader}, []string{"publish", "--duration", "1s"}, 1, "-32003"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.env, "", append([]string{"bench"}, c.args...)...)
			if r.code != c.code || !strings.Contains(r.stderr, c.inStderr) {
				t.Fatalf("exit %d, want %d with %q on stderr\nstdout: %s\nstderr: %s", r.code, c.code, c.inStderr, r.stdout, r.stderr)
			}
			if c.code != 1 && r.stdout != "" {
				t.Errorf("a refused run wrote to stdout: %q", r.stdout)
			}
			// A run whose calls failed still says what it measured.
			if c.code == 1 {
				run := decodeBenchRun(t, r)
				if run.Errors == 0 || run.Publications != 0 || !strings.Contains(run.FirstError, "-32003") {
					t.Errorf("a run of refused publications: %+v; want them counted as errors", run)
				}
			}
		})
	}
}

// TestBenchOverTLS runs bench over wss, trusting --cacert, with its token
// from --token-command; and without --cacert, which fails to connect.
func TestBenchOverTLS(t *testing.T) {
	ca := servertest.NewCA(t)
	ta := servertest.StartTLS(t, ca, t.TempDir())
	tok := ta.Token("admin", service.Permissions{Admin: true}, time.Hour)
	env := []string{"SWITCHBOARD_URL=https://" + ta.Addr, "SWITCHBOARD_TOKEN_COMMAND=echo " + tok}

	run := bench(t, env, "fanout", "--cacert", ca.File, "--duration", "1s", "--subscribers", "2", "--rate", "20")
	if run.Publications == 0 || run.Deliveries != 2*run.Publications || run.Lost != 0 {
		t.Errorf("fanout over wss: %+v; want every publication delivered twice", run)
	}
	if r := runCLI(t, env, "", "bench", "rpc", "--duration", "1s"); r.code != exitConnect || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("without --cacert: exit %d, stderr %q; want %d, about the certificate", r.code, r.stderr, exitConnect)
	}
}
