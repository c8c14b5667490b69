package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// onlySubscriber returns the connection id of channel's one subscriber.
func (s *cliServer) onlySubscriber(t *testing.T, channel string) string {
	t.Helper()
	var p struct {
		Members []struct {
			ConnectionID string `json:"connectionId"`
		} `json:"members"`
	}
	out := mustRun(t, s.env, "", "presence", channel)
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Members) != 1 {
		t.Fatalf("presence %s: %s (%v), want one member", channel, out, err)
	}
	return p.Members[0].ConnectionID
}

// TestCLISubscribeTokenCommand: a subscriber whose --token-command prints
// a new 3-second token each time runs for 10 seconds of publishing, over
// at least three expiries, on one connection, and prints every offset
// once, in order.
func TestCLISubscribeTokenCommand(t *testing.T) {
	s := startCLIServer(t, "", "", "--token-expiry-notice", "1s")
	runs := filepath.Join(t.TempDir(), "runs")
	// Each run adds a line to runs, then prints a token.
	command := fmt.Sprintf(`echo run >> '%s' && '%s' token create --data '%s' --sub alice --subscribe '>' --ttl 3s`, runs, binary(t), s.dir)
	// s.env has SWITCHBOARD_TOKEN, the admin's: --token-command on the
	// command line wins over it.
	sub := startCLI(t, s.env, "subscribe", "tc.x", "--token-command", command)
	s.waitSubscribed(t, "tc.x", 1)
	conn := s.onlySubscriber(t, "tc.x")

	const d = 10 * time.Second // over three lives of a token
	var n uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		n++
		mustRun(t, s.env, "", "publish", "tc.x", fmt.Sprintf(`{"seq":%d}`, n))
		time.Sleep(50 * time.Millisecond)
	}

	readSeq(t, sub, nil, n)
	if c := s.onlySubscriber(t, "tc.x"); c != conn {
		t.Errorf("the subscriber's connection was %s, and is %s after %v of 3-second tokens: it was replaced", conn, c, d)
	}

	sub.cmd.Process.Signal(syscall.SIGTERM)
	if code := sub.wait(); code != 0 {
		t.Errorf("subscriber exit %d, want 0", code)
	}
	if l, ok := <-sub.lines; ok {
		t.Errorf("the subscriber printed more: %q", l)
	}
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	// One for the connection, one for each refresh.
	if r := strings.Count(string(b), "run\n"); r < 4 {
		t.Errorf("the token command ran %d times in %v of 3-second tokens, want at least 4", r, d)
	}
	if e := sub.stderr.String(); strings.Contains(e, "reconnect") || strings.Contains(e, "refreshing") {
		t.Errorf("subscriber stderr tells of a failed refresh or a reconnection:\n%s", e)
	}
}

// TestCLITokenCommandErrors: a failing token command is named in the
// error with its exit status and the first line of its stderr, and not
// what it printed; --token with --token-command is a usage error.
func TestCLITokenCommandErrors(t *testing.T) {
	s := startCLIServer(t, "", "")
	url := []string{"SWITCHBOARD_URL=" + s.base}
	cases := []struct {
		name, command string
		want          []string
	}{
		// printf, so that what it prints is not in the command itself,
		// which the error names.
		{"fails", `printf '%s-%s\n\n' not-a token; echo; echo 'the vault is sealed' >&2; printf '%s-%s\n' second line >&2; exit 3`,
			[]string{"exit status 3", ": the vault is sealed", "--token-command"}},
		{"prints nothing", `echo 'no session' >&2`, []string{"printed no token", "no session"}},
		{"prints two lines", `printf '%s-%s\n' not-a token not-a token`, []string{"more than one line"}},
		{"prints without end", `yes "$(printf '%s-%s' not-a token)" | head -c 1000000`, []string{"more than 65536 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, url, "", "presence", "x", "--token-command", c.command)
			if r.code != exitError {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, exitError, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not say %q", r.stderr, w)
				}
			}
			if strings.Contains(r.stderr, "second-line") || strings.Contains(r.stderr, "not-a-token") {
				t.Errorf("stderr %q has more than the first line of the command's stderr, or its output", r.stderr)
			}
		})
	}

	r := runCLI(t, url, "", "presence", "x", "--token", "t", "--token-command", "echo t")
	if r.code != exitUsage || !strings.Contains(r.stderr, "not both") {
		t.Errorf("--token with --token-command: exit %d, stderr %q; want %d, saying not both", r.code, r.stderr, exitUsage)
	}
	r = runCLI(t, append(url, "SWITCHBOARD_TOKEN=t", "SWITCHBOARD_TOKEN_COMMAND=echo t"), "", "presence", "x")
	if r.code != exitUsage || !strings.Contains(r.stderr, "SWITCHBOARD_TOKEN_COMMAND") {
		t.Errorf("both in the environment: exit %d, stderr %q; want %d, naming the variables", r.code, r.stderr, exitUsage)
	}
	// From the environment, a command for the admin's token.
	admin := cliToken(t, s.dir, "--sub", "admin", "--admin")
	mustRun(t, append(url, "SWITCHBOARD_TOKEN_COMMAND=echo "+admin), "", "presence", "x")
}

// TestCLISubscribeAdminDisconnect: an admin's adminDisconnect ends a
// subscriber, even one with a --token-command that would give it a new
// token, with exit 3 and the admin's reason, and without reconnecting.
func TestCLISubscribeAdminDisconnect(t *testing.T) {
	s := startCLIServer(t, "", "")
	command := fmt.Sprintf(`'%s' token create --data '%s' --sub mallory --subscribe '>' --ttl 1h`, binary(t), s.dir)
	sub := startCLI(t, []string{"SWITCHBOARD_URL=" + s.base}, "subscribe", "cut.x", "--token-command", command)
	s.waitSubscribed(t, "cut.x", 1)
	out := mustRun(t, s.env, "", "call", "adminDisconnect", `{"user":"mallory","reason":"account suspended"}`)
	if !strings.Contains(out, `"connections":1`) {
		t.Fatalf("adminDisconnect: %s, want one connection closed", out)
	}
	if code := sub.wait(); code != exitConnect {
		t.Errorf("subscriber exit %d, want %d", code, exitConnect)
	}
	e := sub.stderr.String()
	for _, want := range []string{"account suspended", "4003", "an admin disconnected the user"} {
		if !strings.Contains(e, want) {
			t.Errorf("subscriber stderr does not say %q:\n%s", want, e)
		}
	}
	if strings.Contains(e, "reconnect") {
		t.Errorf("the subscriber reconnected:\n%s", e)
	}
}
