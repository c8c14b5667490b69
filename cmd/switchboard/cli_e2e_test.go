package main

// Tests of the client commands, run as a script runs them: the built
// binary against a real server, also built from this binary.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
)

// cliServer is a "switchboard serve" with its data directory, and the
// environment that points the client commands at it with an admin token.
type cliServer struct {
	*serverProc
	dir string
	env []string
}

// startCLIServer starts the binary's server on addr ("" for any port)
// with dir as its data directory ("" for a new one).
func startCLIServer(t *testing.T, addr, dir string, args ...string) *cliServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if dir == "" {
		dir = t.TempDir()
	}
	s := startServer(t, nil, append([]string{"--listen", addr, "--data", dir}, args...)...)
	admin := cliToken(t, dir, "--sub", "admin", "--admin")
	return &cliServer{serverProc: s, dir: dir, env: []string{"SWITCHBOARD_URL=ws://" + s.addr, "SWITCHBOARD_TOKEN=" + admin}}
}

// cliToken makes a token with "switchboard token create".
func cliToken(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := runBinary(t, nil, append([]string{"token", "create", "--data", dir}, args...)...)
	if r.code != 0 {
		t.Fatalf("token create %v: exit %d: %s", args, r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// freeAddr returns a loopback address nothing listens on, for a server
// that must come back on the same one.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mustRun runs the binary and fails the test unless it exits 0.
func mustRun(t *testing.T, env []string, stdin string, args ...string) string {
	t.Helper()
	r := runCLI(t, env, stdin, args...)
	if r.code != 0 {
		t.Fatalf("switchboard %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// waitSubscribed waits until channel has n subscribers.
func (s *cliServer) waitSubscribed(t *testing.T, channel string, n int) {
	t.Helper()
	servertest.Eventually(t, fmt.Sprintf("%d subscribers on %s", n, channel), func() bool {
		var p struct {
			Members []json.RawMessage `json:"members"`
		}
		r := runCLI(t, s.env, "", "presence", channel)
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &p) == nil && len(p.Members) == n
	})
}

// publications decodes NDJSON publications.
func publications(t *testing.T, ndjson string) []servertest.PublicationNote {
	t.Helper()
	var out []servertest.PublicationNote
	for _, l := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		if l == "" {
			continue
		}
		var p servertest.PublicationNote
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, p)
	}
	return out
}

// TestCLISubscriberPipedIntoPublisher runs a subscriber whose output is
// the input of a publisher, as a shell pipeline does: what is published
// to src comes out of dst's history, whole.
func TestCLISubscriberPipedIntoPublisher(t *testing.T) {
	s := startCLIServer(t, "", "")

	// switchboard subscribe src --count 3 | switchboard publish dst --lines
	sub := exec.Command(binary(t), "subscribe", "src", "--count", "3")
	pub := exec.Command(binary(t), "publish", "dst", "--lines")
	sub.Env, pub.Env = environ(s.env...), environ(s.env...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var subErr, pubOut, pubErr servertest.Buffer
	sub.Stdout, sub.Stderr = w, &subErr
	pub.Stdin, pub.Stdout, pub.Stderr = r, &pubOut, &pubErr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	defer sub.Process.Kill()
	defer pub.Process.Kill()
	s.waitSubscribed(t, "src", 1)

	input := "{\"n\":1}\n[\"two\"]\n\"three\"\n"
	published := mustRun(t, s.env, input, "publish", "src", "--lines")
	if n := strings.Count(published, "\n"); n != 3 {
		t.Fatalf("publish --lines printed %d lines, want 3:\n%s", n, published)
	}

	done := make(chan error, 2)
	go func() { done <- sub.Wait() }()
	go func() { done <- pub.Wait() }()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("pipeline: %v\nsubscribe stderr: %s\npublish stderr: %s", err, subErr.String(), pubErr.String())
			}
		case <-time.After(servertest.WaitTimeout):
			t.Fatalf("the pipeline did not end; subscribe stderr: %s", subErr.String())
		}
	}
	var results []servertest.PublishResult
	for _, l := range strings.Split(strings.TrimSpace(pubOut.String()), "\n") {
		var pr servertest.PublishResult
		if err := json.Unmarshal([]byte(l), &pr); err != nil {
			t.Fatalf("publish output %q: %v", l, err)
		}
		results = append(results, pr)
	}
	if len(results) != 3 || results[0].Offset != 1 || results[2].Offset != 3 || results[0].Channel != "dst" {
		t.Fatalf("the publisher printed %+v, want dst offsets 1 to 3", results)
	}

	// dst's publications are src's, as the subscriber printed them; and
	// those are exactly src's history, times included.
	srcHistory := mustRun(t, s.env, "", "history", "src")
	srcPubs := publications(t, srcHistory)
	want := []string{`{"n":1}`, `["two"]`, `"three"`}
	for i, p := range srcPubs {
		if string(p.Data) != want[i] || p.Publisher != "admin" || p.Offset != uint64(i+1) {
			t.Errorf("src publication %d: %+v, want data %s by admin", i+1, p, want[i])
		}
	}
	dst := publications(t, mustRun(t, s.env, "", "history", "dst"))
	if len(dst) != 3 {
		t.Fatalf("dst has %d publications, want 3", len(dst))
	}
	historyLines := strings.Split(strings.TrimSpace(srcHistory), "\n")
	for i, p := range dst {
		if string(p.Data) != historyLines[i] {
			t.Errorf("dst publication %d is %s; want the subscriber's line, which should equal src's history line %s", i+1, p.Data, historyLines[i])
		}
	}
}

// TestCLIExitCodes checks each documented exit code, and that a JSON-RPC
// error is printed on stderr as JSON, alone on its line.
func TestCLIExitCodes(t *testing.T) {
	s := startCLIServer(t, "", "", "--history-size", "2")
	reader := cliToken(t, s.dir, "--sub", "reader", "--subscribe", "news.>")
	foreign := cliToken(t, t.TempDir(), "--sub", "stranger") // signed with another secret
	asReader := []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + reader}
	mustRun(t, s.env, "1\n2\n3\n4\n5\n", "publish", "news.lost", "--lines")

	cases := []struct {
		name     string
		env      []string
		args     []string
		code     int
		rpcCode  int    // for exit 1: the JSON-RPC error code on stderr
		inStderr string // for the others
	}{
		{"a call", s.env, []string{"call", "serverPing"}, 0, 0, ""},
		{"help", s.env, []string{"publish", "-h"}, 0, 0, "--lines"},
		{"forbidden publish", asReader, []string{"publish", "news.a", `{"x":1}`}, 1, -32003, ""},
		{"unknown method", s.env, []string{"call", "no.such.method"}, 1, -32601, ""},
		{"invalid params", s.env, []string{"call", "channelHistory", `{"channel":"bad name"}`}, 1, -32602, ""},
		{"unknown flag", s.env, []string{"call", "--nope", "serverPing"}, 2, 0, "-nope"},
		{"missing method", s.env, []string{"call"}, 2, 0, "usage: switchboard call"},
		{"params not JSON", s.env, []string{"call", "serverPing", "{nope"}, 2, 0, "not JSON"},
		{"params a string", s.env, []string{"call", "serverPing", `"x"`}, 2, 0, "object"},
		{"data and --lines", s.env, []string{"publish", "a", "1", "--lines"}, 2, 0, "usage"},
		{"bad --since", s.env, []string{"subscribe", "a", "--since", "-1"}, 2, 0, "-since"},
		{"bad URL scheme", []string{"SWITCHBOARD_URL=ftp://x"}, []string{"call", "serverPing"}, 2, 0, "scheme"},
		{"unknown shell", nil, []string{"completion", "tcsh"}, 2, 0, "tcsh"},
		{"nothing listening", []string{"SWITCHBOARD_URL=http://" + freeAddr(t)}, []string{"call", "serverPing"}, 3, 0, "refused"},
		{"nothing listening, subscribe", []string{"SWITCHBOARD_URL=ws://" + freeAddr(t)}, []string{"subscribe", "a"}, 3, 0, "refused"},
		{"bad token", []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=nope"}, []string{"call", "serverPing"}, 3, 0, "refused the token"},
		{"foreign token, subscribe", []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + foreign}, []string{"subscribe", "a"}, 3, 0, "refused the token"},
		{"lost publications, --strict", s.env, []string{"subscribe", "news.lost", "--since", "1", "--strict"}, 4, 0, "publications 2 to 3 were lost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.env, "", c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			if c.code != 0 && r.stdout != "" {
				t.Errorf("a failure wrote to stdout: %q", r.stdout)
			}
			if c.rpcCode != 0 {
				var e servertest.RPCError
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil || e.Code != c.rpcCode || e.Message == "" {
					t.Errorf("stderr %q: want the JSON-RPC error %d as JSON on its own line (%v)", r.stderr, c.rpcCode, err)
				}
			}
			if !strings.Contains(r.stdout+r.stderr, c.inStderr) {
				t.Errorf("output does not mention %q:\nstdout: %s\nstderr: %s", c.inStderr, r.stdout, r.stderr)
			}
		})
	}

	// A request the server refuses as such (413: over --max-message-size)
	// is a failure, not a connection problem.
	big := `"` + strings.Repeat("a", 2<<20) + `"`
	if r := runCLI(t, s.env, big, "publish", "news.big", "-"); r.code != 1 || !strings.Contains(r.stderr, "413") {
		t.Errorf("a 2 MiB publication: exit %d, stderr %q; want 1 and HTTP 413", r.code, r.stderr)
	}

	// Without --strict, the loss is said and the subscriber goes on.
	r := runCLI(t, s.env, "", "subscribe", "news.lost", "--since", "1", "--count", "2")
	if r.code != 0 || !slices.Equal(servertest.OffsetsOf(publications(t, r.stdout)), []uint64{4, 5}) || !strings.Contains(r.stderr, "publications 2 to 3 were lost") {
		t.Errorf("subscribe --since 1 without --strict: exit %d, stdout %q, stderr %q; want 4 and 5 after a warning", r.code, r.stdout, r.stderr)
	}
}

// TestCLISignals checks that a subscriber stopped by a signal exits 0,
// and that a one-shot command interrupted before finishing does not.
func TestCLISignals(t *testing.T) {
	s := startCLIServer(t, "", "")
	sub := startCLI(t, s.env, "subscribe", "sig")
	s.waitSubscribed(t, "sig", 1)
	sub.cmd.Process.Signal(syscall.SIGTERM)
	if code := sub.wait(); code != 0 {
		t.Errorf("subscribe stopped by SIGTERM: exit %d, want 0", code)
	}

	// publish --lines waiting on a standard input that never ends.
	cmd := exec.Command(binary(t), "publish", "sig", "--lines")
	cmd.Env = environ(s.env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr servertest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	io.WriteString(in, "1\n")
	servertest.Eventually(t, "the first line published", func() bool {
		return len(publications(t, mustRun(t, s.env, "", "history", "sig"))) == 1
	})
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(servertest.WaitTimeout):
		cmd.Process.Kill()
		t.Fatal("publish --lines did not stop on SIGINT")
	}
	// Killed by the signal's default action: never a success.
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("publish --lines interrupted: exit 0, want a failure; stderr %q", stderr.String())
	}
}

// TestCLIStandardInput checks "-" for PARAMS and DATA, and --lines.
func TestCLIStandardInput(t *testing.T) {
	s := startCLIServer(t, "", "")
	out := mustRun(t, s.env, `{"channel":"in","data":{"from":"stdin"}}`, "call", "channelPublish", "-")
	var pr servertest.PublishResult
	if err := json.Unmarshal([]byte(out), &pr); err != nil || pr.Channel != "in" || pr.Offset != 1 {
		t.Fatalf("call channelPublish - printed %q (%v)", out, err)
	}
	out = mustRun(t, s.env, "  [1, 2,\n 3]\n", "publish", "in", "-")
	if err := json.Unmarshal([]byte(out), &pr); err != nil || pr.Offset != 2 {
		t.Fatalf("publish in - printed %q (%v)", out, err)
	}
	// A repeated idempotency key publishes nothing and answers the first
	// offset; a key cannot be shared by several lines.
	for i, wantDup := range []bool{false, true} {
		out = mustRun(t, s.env, "", "publish", "keyed", `"once"`, "--idempotency-key", "k1")
		if err := json.Unmarshal([]byte(out), &pr); err != nil || pr.Offset != 1 || pr.Duplicate != wantDup {
			t.Errorf("publish with a key, time %d: %q (%v); want offset 1, duplicate %v", i+1, out, err, wantDup)
		}
	}
	if r := runCLI(t, s.env, "1\n", "publish", "keyed", "--lines", "--idempotency-key", "k2"); r.code != 2 {
		t.Errorf("--idempotency-key with --lines: exit %d, want 2", r.code)
	}

	// Blank lines are skipped, and counted.
	out = mustRun(t, s.env, "\"a\"\n\n  \n{\"b\": true}\n", "publish", "in", "--lines")
	if n := strings.Count(out, "\n"); n != 2 {
		t.Fatalf("publish --lines printed %d results, want 2:\n%s", n, out)
	}
	pubs := publications(t, mustRun(t, s.env, "", "history", "in"))
	var data []string
	for _, p := range pubs {
		data = append(data, string(p.Data))
	}
	if want := []string{`{"from":"stdin"}`, `[1,2,3]`, `"a"`, `{"b":true}`}; !slices.Equal(data, want) {
		t.Errorf("history data %q, want %q", data, want)
	}

	// The first failure stops --lines, says which line, and publishes
	// nothing after it.
	r := runCLI(t, s.env, "1\n2\nnull\n4\n", "publish", "stop", "--lines")
	if r.code != 1 || !strings.Contains(r.stderr, "line 3") || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("a refused line 3: exit %d, stdout %q, stderr %q; want 1, two results, and line 3 named", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, s.env, "5\n{oops\n6\n", "publish", "stop", "--lines")
	if r.code != 2 || !strings.Contains(r.stderr, "line 2") {
		t.Errorf("a line that is not JSON: exit %d, stderr %q; want 2 and line 2 named", r.code, r.stderr)
	}
	if got := servertest.OffsetsOf(publications(t, mustRun(t, s.env, "", "history", "stop"))); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("stop's history has offsets %v, want 1 2 (first run) and 3 (the 5 of the second)", got)
	}
}

// TestCLIPublishLinesInBatches checks that --lines, which sends its lines
// in batches, keeps their order and stops at the first line that fails
// with nothing after it published, also in the middle of a batch and
// against a server that takes shorter batches than it sends.
func TestCLIPublishLinesInBatches(t *testing.T) {
	s := startCLIServer(t, "", "", "--max-batch", "3", "--max-data-size", "64")
	var in strings.Builder
	for i := 1; i <= 20; i++ {
		if i == 14 {
			fmt.Fprintf(&in, "%q\n", strings.Repeat("x", 100)) // over --max-data-size
			continue
		}
		fmt.Fprintf(&in, "%d\n", i)
	}
	r := runCLI(t, s.env, in.String(), "publish", "batched", "--lines")
	if r.code != 1 || !strings.Contains(r.stderr, "stopped at line 14 (13 published before it)") {
		t.Errorf("exit %d, stderr %q; want 1 and line 14 named", r.code, r.stderr)
	}
	var offsets []uint64
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var pr servertest.PublishResult
		if err := json.Unmarshal([]byte(l), &pr); err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		offsets = append(offsets, pr.Offset)
	}
	if want := servertest.Seq(1, 13); !slices.Equal(offsets, want) {
		t.Errorf("printed offsets %v, want %v", offsets, want)
	}
	pubs := publications(t, mustRun(t, s.env, "", "history", "batched"))
	if got := servertest.OffsetsOf(pubs); !slices.Equal(got, servertest.Seq(1, 13)) {
		t.Fatalf("history has offsets %v, want 1 to 13", got)
	}
	for _, p := range pubs {
		if string(p.Data) != fmt.Sprint(p.Offset) {
			t.Errorf("offset %d holds %s: the lines were published out of order", p.Offset, p.Data)
		}
	}

	// A server that refuses the batches as too big (HTTP 413) takes them
	// halved, and every line is published, in order.
	small := startCLIServer(t, "", "", "--max-message-size", "2048")
	in.Reset()
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&in, "{\"n\":%d,\"pad\":%q}\n", i, strings.Repeat("x", 80))
	}
	mustRun(t, small.env, in.String(), "publish", "halved", "--lines")
	pubs = publications(t, mustRun(t, small.env, "", "history", "halved"))
	if got := servertest.OffsetsOf(pubs); !slices.Equal(got, servertest.Seq(1, 60)) {
		t.Fatalf("history has offsets %v, want 1 to 60", got)
	}
	for _, p := range pubs {
		if !strings.HasPrefix(string(p.Data), fmt.Sprintf(`{"n":%d,`, p.Offset)) {
			t.Errorf("offset %d holds %.20s: the lines were published out of order", p.Offset, p.Data)
		}
	}
}

// TestCLIHistory checks history's paging: the latest N by default, N
// after --since, and all of it with --limit 0, past one page.
func TestCLIHistory(t *testing.T) {
	s := startCLIServer(t, "", "", "--history-size", "0")
	const n = 1100
	var in strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&in, "%d\n", i)
	}
	mustRun(t, s.env, in.String(), "publish", "h", "--lines")

	check := func(want []uint64, args ...string) {
		t.Helper()
		pubs := publications(t, mustRun(t, s.env, "", append([]string{"history", "h"}, args...)...))
		if got := servertest.OffsetsOf(pubs); !slices.Equal(got, want) {
			t.Errorf("history %v: %d publications from %v, want %d from %v", args, len(got), first(got), len(want), first(want))
		}
		for _, p := range pubs {
			if string(p.Data) != fmt.Sprint(p.Offset) {
				t.Fatalf("history %v: offset %d holds %s", args, p.Offset, p.Data)
			}
		}
	}
	check(servertest.Seq(1001, 1100))                  // the default: the latest 100
	check(servertest.Seq(1096, 1100), "--limit", "5")  // the latest 5, oldest first
	check(servertest.Seq(51, 1100), "--limit", "1050") // more than a page
	check(servertest.Seq(11, 13), "--since", "10", "--limit", "3")
	check(servertest.Seq(1, n), "--limit", "0") // everything
	check(servertest.Seq(1091, 1100), "--since", "1090", "--limit", "0")
	check(nil, "--since", "1100")
}

func first(s []uint64) []uint64 { return s[:min(len(s), 3)] }

// TestCLISubscriberSurvivesRestarts runs a subscriber while the server
// restarts under it, twice, once killed: it goes on by itself and prints
// every publication once, in order, including those published while it
// was away.
func TestCLISubscriberSurvivesRestarts(t *testing.T) {
	addr := freeAddr(t)
	s := startCLIServer(t, addr, "")
	sub := startCLI(t, s.env, "subscribe", "r", "--since", "0")
	s.waitSubscribed(t, "r", 1)
	var next uint64 = 1
	publish := func(s *cliServer, n int) {
		t.Helper()
		var in strings.Builder
		for range n {
			fmt.Fprintf(&in, "{\"seq\":%d}\n", next)
			next++
		}
		mustRun(t, s.env, in.String(), "publish", "r", "--lines")
	}
	var got []uint64
	read := func(upto uint64) {
		t.Helper()
		got = readSeq(t, sub, got, upto)
	}
	publish(s, 5)
	read(5)

	// Stopped while the server restarts: what is published meanwhile is
	// recovered when it comes back.
	sub.cmd.Process.Signal(syscall.SIGSTOP)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exited %d", code)
	}
	s = startCLIServer(t, addr, s.dir)
	publish(s, 5)
	sub.cmd.Process.Signal(syscall.SIGCONT)
	read(10)

	// Killed: the subscriber retries until the server is back.
	s.stop(syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond) // let it find the server gone and retry in vain
	s = startCLIServer(t, addr, s.dir)
	publish(s, 5)
	read(15)

	sub.cmd.Process.Signal(syscall.SIGTERM)
	if code := sub.wait(); code != 0 {
		t.Errorf("subscriber exit %d, want 0", code)
	}
	if l, ok := <-sub.lines; ok {
		t.Errorf("the subscriber printed more: %q", l)
	}
	if e := sub.stderr.String(); !strings.Contains(e, "reconnecting") || strings.Contains(e, "lost") {
		t.Errorf("subscriber stderr should tell of reconnecting and of no loss:\n%s", e)
	}
}

// TestCLIPresenceMethodsAndURLs checks presence and methods output, and
// each accepted form of the server URL.
func TestCLIPresenceMethodsAndURLs(t *testing.T) {
	s := startCLIServer(t, "", "")
	watcher := cliToken(t, s.dir, "--sub", "watcher", "--subscribe", "room.*")
	sub := startCLI(t, []string{"SWITCHBOARD_URL=" + s.base, "SWITCHBOARD_TOKEN=" + watcher}, "subscribe", "room.1", "room.2", "room.1")
	s.waitSubscribed(t, "room.2", 1)
	var p struct {
		Channel string `json:"channel"`
		Members []struct {
			User string `json:"user"`
		} `json:"members"`
	}
	out := mustRun(t, s.env, "", "presence", "room.1")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Channel != "room.1" || len(p.Members) != 1 || p.Members[0].User != "watcher" {
		t.Errorf("presence printed %q (%v), want watcher on room.1", out, err)
	}
	// One subscriber, two channels: each publication once, on its channel.
	mustRun(t, s.env, "", "publish", "room.2", `"b"`)
	mustRun(t, s.env, "", "publish", "room.1", `"a"`)
	seen := map[string]string{}
	for range 2 {
		var pub servertest.PublicationNote
		json.Unmarshal([]byte(sub.next("a publication")), &pub)
		seen[pub.Channel] = string(pub.Data)
	}
	if seen["room.1"] != `"a"` || seen["room.2"] != `"b"` {
		t.Errorf("subscriber to two channels printed %v", seen)
	}

	// methods: one {name, summary} per line; --json the document's list.
	doc, err := os.ReadFile(filepath.Join("..", "..", "openrpc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Methods []struct {
			Name    string `json:"name"`
			Summary string `json:"summary"`
		} `json:"methods"`
	}
	if err := json.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(mustRun(t, s.env, "", "methods")), "\n")
	if len(lines) != len(want.Methods) {
		t.Fatalf("methods printed %d lines, want %d", len(lines), len(want.Methods))
	}
	for i, l := range lines {
		var m struct{ Name, Summary string }
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Name != want.Methods[i].Name || m.Summary != want.Methods[i].Summary {
			t.Errorf("methods line %d: %q, want %+v", i, l, want.Methods[i])
		}
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(mustRun(t, s.env, "", "methods", "--json")), &raw); err != nil || len(raw) != len(want.Methods) {
		t.Errorf("methods --json: %d methods (%v), want %d", len(raw), err, len(want.Methods))
	}
	pretty := mustRun(t, s.env, "", "call", "serverInfo", "--pretty")
	if !strings.HasPrefix(pretty, "{\n  \"") || !json.Valid([]byte(pretty)) {
		t.Errorf("--pretty printed %q, want indented JSON", pretty)
	}

	// Every URL form reaches the server; --url wins over SWITCHBOARD_URL.
	tok := s.env[1]
	for _, u := range []string{s.base, s.base + "/rpc", s.base + "/rpc/", "ws://" + s.addr, "ws://" + s.addr + "/rpc", s.addr} {
		out := mustRun(t, []string{tok, "SWITCHBOARD_URL=http://" + freeAddr(t)}, "", "call", "sessionWhoami", "--url", u)
		if !strings.Contains(out, `"user":"admin"`) {
			t.Errorf("--url %s: whoami printed %q", u, out)
		}
	}
	// The method that needs a socket works from an http:// URL too.
	out = mustRun(t, []string{tok, "SWITCHBOARD_URL=" + s.base}, "", "call", "channelSubscribe", `{"channel":"room.9"}`)
	if !strings.Contains(out, `"channel":"room.9"`) {
		t.Errorf("call channelSubscribe over an http URL printed %q", out)
	}
}

// readSeq reads publications of {"seq":N} at offset N from sub, after the
// offsets in got, until it has upto of them, and fails the test unless
// they are 1 to upto, each once: what a subscriber that misses nothing
// prints. It returns got with the new offsets.
func readSeq(t *testing.T, sub *cliProc, got []uint64, upto uint64) []uint64 {
	t.Helper()
	for uint64(len(got)) < upto {
		var p servertest.PublicationNote
		l := sub.next(fmt.Sprintf("publication %d of %d", len(got)+1, upto))
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("subscriber line %q: %v", l, err)
		}
		if want := fmt.Sprintf(`{"seq":%d}`, p.Offset); string(p.Data) != want {
			t.Fatalf("offset %d holds %s, want %s", p.Offset, p.Data, want)
		}
		got = append(got, p.Offset)
	}
	if !slices.Equal(got, servertest.Seq(1, upto)) {
		t.Fatalf("the subscriber printed offsets %v, want 1 to %d once each", got, upto)
	}
	return got
}
