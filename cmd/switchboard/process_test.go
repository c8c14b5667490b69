package main

// Tests of the built binary, run as a separate process the way an operator
// runs it.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/service"
)

// binVersion is stamped into the test binary with -ldflags, as the
// Makefile does, so that the tests can tell it is reported.
const binVersion = "v0.0.0-e2e-test"

var (
	binDir    string // removed by TestMain
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// binary builds the switchboard binary, once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "switchboard")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+binVersion, "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// environ is this process's environment without SWITCHBOARD_* variables,
// plus extra.
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runResult is a finished command.
type runResult struct {
	code           int
	stdout, stderr string
}

// runBinary runs the binary to completion with args.
func runBinary(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	return runCLI(t, env, "", args...)
}

// runCLI runs the binary to completion with args and stdin.
func runCLI(t *testing.T, env []string, stdin string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), servertest.WaitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env = environ(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && ctx.Err() == nil:
	default:
		t.Fatalf("switchboard %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return runResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// serverProc is a running "switchboard serve" process.
type serverProc struct {
	*cliProc
	banner string // its first line
	// Parsed from the banner:
	base       string // http://ADDR
	addr       string
	adminToken string // "" when the secret was given
}

var listeningRE = regexp.MustCompile(`listening on http://(\S+)`)

// startServer starts "switchboard serve" with args and env and waits for
// its banner.
func startServer(t *testing.T, env []string, args ...string) *serverProc {
	t.Helper()
	return serverOf(startCLI(t, env, append([]string{"serve"}, args...)...))
}

// serverOf waits for the banner of p, a starting server.
func serverOf(p *cliProc) *serverProc {
	p.t.Helper()
	s := &serverProc{cliProc: p}
	s.banner = s.line("the listening line", listeningRE.MatchString)
	m := listeningRE.FindStringSubmatch(s.banner)
	s.addr = m[1]
	s.base = "http://" + s.addr
	return s
}

// line returns the next stdout line for which match is true, skipping
// others, failing the test if none comes in time.
func (s *serverProc) line(what string, match func(string) bool) string {
	s.t.Helper()
	timeout := time.After(servertest.WaitTimeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("serve's output ended before %s; stderr:\n%s", what, s.stderr.String())
			}
			if match(l) {
				return l
			}
		case <-timeout:
			s.t.Fatalf("no %s on serve's output within %v", what, servertest.WaitTimeout)
		}
	}
}

// readAdminToken reads the admin token printed under "Admin token".
func (s *serverProc) readAdminToken() string {
	s.t.Helper()
	s.line("the admin token heading", func(l string) bool { return strings.HasPrefix(l, "Admin token") })
	tok := strings.TrimSpace(s.line("the admin token", func(string) bool { return true }))
	if strings.Count(tok, ".") != 2 {
		s.t.Fatalf("admin token line %q is not a JWT", tok)
	}
	s.adminToken = tok
	return tok
}

// client returns the HTTP helpers of servertest, aimed at this server.
func (s *serverProc) client() *servertest.Server {
	return servertest.At(s.t, s.addr)
}

// stop sends sig and returns the exit code, failing the test if the
// process does not exit within waitTimeout.
func (s *serverProc) stop(sig os.Signal) int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal: %v", err)
	}
	return s.wait()
}

// cliProc is the binary running in the background: a server, or a
// client command.
type cliProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string // stdout, closed at EOF
	stderr *servertest.Buffer
	exited chan struct{}
}

// startCLI starts the binary with args and env. It is killed, if still
// running, when the test ends.
func startCLI(t *testing.T, env []string, args ...string) *cliProc {
	t.Helper()
	return startProcess(t, exec.Command(binary(t), args...), env)
}

// startProcess starts cmd, a command that runs the binary, with env. It
// is killed, if still running, when the test ends.
func startProcess(t *testing.T, cmd *exec.Cmd, env []string) *cliProc {
	t.Helper()
	args := cmd.Args[1:]
	cmd.Env = environ(env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &cliProc{t: t, cmd: cmd, lines: make(chan string, 10000), stderr: &servertest.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() {
		<-read // Wait closes the pipe: read it all first
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("switchboard %s stderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

// next returns the next line of stdout.
func (p *cliProc) next(what string) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("stdout ended before %s; stderr:\n%s", what, p.stderr.String())
		}
		return l
	case <-time.After(servertest.WaitTimeout):
		p.t.Fatalf("no %s within %v; stderr:\n%s", what, servertest.WaitTimeout, p.stderr.String())
		return ""
	}
}

// wait waits for the process to exit and returns its exit code, failing
// the test if it does not exit within waitTimeout.
func (p *cliProc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(servertest.WaitTimeout):
		p.t.Fatalf("%v did not exit within %v; stderr:\n%s", p.cmd.Args, servertest.WaitTimeout, p.stderr.String())
		return -1
	}
}

func TestBinaryVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		r := runBinary(t, nil, arg)
		if r.code != 0 {
			t.Errorf("switchboard %s: exit %d, stderr %q", arg, r.code, r.stderr)
		}
		if r.stdout != binVersion+"\n" {
			t.Errorf("switchboard %s printed %q, want the version it was built with, %q, on one line", arg, r.stdout, binVersion)
		}
	}
}

func TestBinaryUsageErrors(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		mention string
	}{
		{"no command", nil, "Usage"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"token without create", []string{"token"}, "token create"},
		{"token create without --sub", []string{"token", "create", "--data", "DATA"}, "--sub"},
		{"unknown flag", []string{"serve", "--no-such-flag"}, "no-such-flag"},
		{"stray argument", []string{"token", "create", "--sub", "bob", "extra"}, "extra"},
		{"bad log level", []string{"serve", "--log-level", "loud", "--data", "DATA"}, "log-level"},
		{"bad env value", []string{"serve", "--data", "DATA"}, "SWITCHBOARD_MAX_BATCH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := slices.Clone(tc.args)
			for i, a := range args {
				if a == "DATA" {
					args[i] = dir
				}
			}
			var env []string
			if tc.name == "bad env value" {
				env = []string{"SWITCHBOARD_MAX_BATCH=lots"}
			}
			r := runBinary(t, env, args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2 (usage); stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr+r.stdout, tc.mention) {
				t.Errorf("output does not mention %q: stdout %q stderr %q", tc.mention, r.stdout, r.stderr)
			}
			if tc.name != "no command" && r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

// TestBinaryTokenCreate checks that "token create" prints only the token,
// signed with the data directory's secret, with what was asked for.
func TestBinaryTokenCreate(t *testing.T) {
	dir := t.TempDir()
	r := runBinary(t, nil, "token", "create", "--sub", "bob", "--publish", "chat.>", "--subscribe", "chat.>,news.*", "--ttl", "1h", "--data", dir)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasSuffix(r.stdout, "\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("stdout %q, want exactly one line", r.stdout)
	}
	tok := strings.TrimSuffix(r.stdout, "\n")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || slices.Contains(parts, "") {
		t.Fatalf("token %q does not have three dot-separated parts", tok)
	}

	secret, err := os.ReadFile(filepath.Join(dir, "token-secret"))
	if err != nil {
		t.Fatalf("token create did not leave a secret in the data directory: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "token-secret")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("token-secret is readable by others: %v %v", fi.Mode(), err)
	}
	a, err := auth.New([]byte(strings.TrimSpace(string(secret))))
	if err != nil {
		t.Fatal(err)
	}
	caller, err := a.Verify(tok)
	if err != nil {
		t.Fatalf("the token does not verify with the data directory's secret: %v", err)
	}
	want := service.Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>", "news.*"}}
	if caller.User != "bob" || !slices.Equal(caller.Permissions.Publish, want.Publish) ||
		!slices.Equal(caller.Permissions.Subscribe, want.Subscribe) || caller.Permissions.Admin {
		t.Errorf("token proves %+v, want bob with %+v", caller, want)
	}
	if ttl := time.Until(caller.ExpiresAt); ttl <= 0 || ttl > time.Hour {
		t.Errorf("token expires in %v, want within the hour asked for", ttl)
	}

	// A second token from the same data directory verifies with the same
	// secret: the secret is kept, not regenerated.
	r2 := runBinary(t, nil, "token", "create", "--sub", "carol", "--ttl", "0", "--data", dir)
	if r2.code != 0 {
		t.Fatalf("second token: exit %d, stderr %q", r2.code, r2.stderr)
	}
	c2, err := a.Verify(strings.TrimSpace(r2.stdout))
	if err != nil {
		t.Fatalf("second token: %v", err)
	}
	if c2.User != "carol" || !c2.ExpiresAt.IsZero() {
		t.Errorf("second token proves %+v, want carol, never expiring", c2)
	}
}

// TestBinaryOpenRPC checks that "switchboard openrpc" prints the committed
// openrpc.json (which make openrpc regenerates).
func TestBinaryOpenRPC(t *testing.T) {
	committed, err := os.ReadFile("../../openrpc.json")
	if err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, nil, "openrpc")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r.stdout != string(committed) {
		t.Error("switchboard openrpc differs from the committed openrpc.json: run make openrpc")
	}
}

// TestBinaryFirstRunAndRestart starts a server on an empty data directory
// with no configuration, as a first-time user would, and restarts it.
func TestBinaryFirstRunAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // serve must create it
	s1 := startServer(t, nil, "--listen", "127.0.0.1:0", "--data", dir)
	admin := s1.readAdminToken()
	c1 := s1.client()

	r, _ := c1.Call(servertest.Bearer(admin), "sessionWhoami", nil)
	var w servertest.WhoamiResult
	r.Decode(t, &w)
	if !w.Permissions.Admin || w.Anonymous {
		t.Fatalf("the banner's admin token gives %+v, want an admin", w)
	}

	for _, f := range []string{"token-secret", "node-id"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("data directory lacks %s: %v", f, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, readable by others", f, fi.Mode())
		}
	}
	nodeFile, _ := os.ReadFile(filepath.Join(dir, "node-id"))

	var info1 servertest.InfoResult
	r, _ = c1.Call(servertest.Bearer(admin), "serverInfo", nil)
	r.Decode(t, &info1)
	if info1.NodeID == "" || info1.NodeID != strings.TrimSpace(string(nodeFile)) {
		t.Errorf("nodeId %q, want the data directory's %q", info1.NodeID, nodeFile)
	}
	if info1.Version != binVersion {
		t.Errorf("version %q, want %q", info1.Version, binVersion)
	}

	// A token made by the CLI from the same data directory works.
	tr := runBinary(t, nil, "token", "create", "--sub", "carol", "--subscribe", "news.*", "--data", dir)
	if tr.code != 0 {
		t.Fatalf("token create: exit %d, stderr %q", tr.code, tr.stderr)
	}
	carol := strings.TrimSpace(tr.stdout)
	ws := c1.Dial(servertest.Bearer(carol))
	servertest.WSCall(t, ws, "sessionWhoami", nil).Decode(t, &w)
	if w.User != "carol" {
		t.Errorf("CLI token: whoami user %q, want carol", w.User)
	}
	ws.CloseNow() // an open socket that is not read would hold up the shutdown

	if code := s1.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("first server exited %d", code)
	}

	// Restarted on the same data directory: same secret, same node.
	s2 := startServer(t, nil, "--listen", "127.0.0.1:0", "--data", dir)
	c2 := s2.client()
	for name, tok := range map[string]string{"CLI": carol, "first run's admin": admin} {
		r, _ := c2.Call(servertest.Bearer(tok), "sessionWhoami", nil)
		if r.Error != nil {
			t.Errorf("%s token after restart: %+v", name, r.Error)
		}
	}
	ws2 := c2.Dial(servertest.Bearer(carol))
	var info2 servertest.InfoResult
	servertest.WSCall(t, ws2, "serverInfo", nil).Decode(t, &info2)
	if info2.NodeID != info1.NodeID {
		t.Errorf("node id changed across a restart: %q then %q", info1.NodeID, info2.NodeID)
	}
	if !info2.StartedAt.After(info1.StartedAt) {
		t.Errorf("startedAt %v after restart, not after the first start %v", info2.StartedAt, info1.StartedAt)
	}
	ws2.CloseNow()
	if code := s2.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("second server exited %d", code)
	}
}

// TestBinaryEnvironment checks that SWITCHBOARD_* variables configure
// serve, and that the command line wins over them.
func TestBinaryEnvironment(t *testing.T) {
	dir := t.TempDir()
	secret := servertest.RandomSecret()
	env := []string{
		"SWITCHBOARD_LISTEN=127.0.0.1:0",
		"SWITCHBOARD_DATA=" + dir,
		"SWITCHBOARD_TOKEN_SECRET=" + secret,
		"SWITCHBOARD_ANONYMOUS=true",
		"SWITCHBOARD_ANONYMOUS_SUBSCRIBE=news.*,chat.>",
	}
	s := startServer(t, env)
	c := s.client()

	r, _ := c.Call(nil, "sessionWhoami", nil)
	var w servertest.WhoamiResult
	r.Decode(t, &w)
	if !w.Anonymous || !slices.Equal(w.Permissions.Subscribe, []string{"news.*", "chat.>"}) {
		t.Errorf("anonymous whoami %+v, want anonymous with subscribe [news.* chat.>]", w)
	}

	// The secret came from the environment: tokens signed with it work,
	// and none was generated in the data directory (which was used for
	// the node id).
	a, err := auth.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Issue("dave", service.Permissions{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r, _ = c.Call(servertest.Bearer(tok), "sessionWhoami", nil)
	r.Decode(t, &w)
	if w.User != "dave" {
		t.Errorf("whoami user %q, want dave", w.User)
	}
	if _, err := os.Stat(filepath.Join(dir, "node-id")); err != nil {
		t.Errorf("SWITCHBOARD_DATA was not used: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "token-secret")); err == nil {
		t.Error("a token secret was generated although SWITCHBOARD_TOKEN_SECRET was set")
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}

	// The command line beats the environment.
	s2 := startServer(t, env, "--anonymous=false")
	body, id := servertest.Request("sessionWhoami", nil)
	servertest.WantUnauthorizedRPC(t, "anonymous call with --anonymous=false", s2.client().Post(nil, body), id)
	if code := s2.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestBinaryGracefulShutdown checks what a signal does: /readyz fails for
// the shutdown delay while the server keeps serving, then WebSockets are
// closed with 1001 and the process exits 0.
func TestBinaryGracefulShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			secret := servertest.RandomSecret()
			s := startServer(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(),
				"--token-secret", secret, "--shutdown-delay", "2s")
			c := s.client()
			a, err := auth.New([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := a.Issue("alice", service.Permissions{}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			ws := c.Dial(servertest.Bearer(tok))
			servertest.WSCall(t, ws, "serverPing", nil).Decode(t, new(servertest.PingResult))
			if res := c.Do(http.MethodGet, "/readyz", nil, nil); res.Status != http.StatusOK {
				t.Fatalf("/readyz before the signal: HTTP %d", res.Status)
			}

			if err := s.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			servertest.Eventually(t, "/readyz to fail", func() bool {
				res := c.Do(http.MethodGet, "/readyz", nil, nil)
				return res.Status == http.StatusServiceUnavailable
			})
			// Still serving during the delay: probes, calls on open sockets.
			if res := c.Do(http.MethodGet, "/healthz", nil, nil); res.Status != http.StatusOK {
				t.Errorf("/healthz during the shutdown delay: HTTP %d", res.Status)
			}
			servertest.WSCall(t, ws, "serverPing", nil).Decode(t, new(servertest.PingResult))

			if code := servertest.ReadClose(t, ws); code != 1001 {
				t.Errorf("close code %v, want 1001 (going away)", code)
			}
			if code := s.wait(); code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
		})
	}
}
