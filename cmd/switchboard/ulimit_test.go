package main

// The connection limit the binary takes from its descriptor limit, under
// a real ulimit.

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/servertest"
)

// With no --max-connections, the limit is the descriptor limit less a
// reserve: a server whose limit is 96 takes 64 WebSockets and refuses the
// rest with 429, and health checks and calls still get in.
func TestConnectionsStopBelowTheDescriptorLimit(t *testing.T) {
	const fds, ceiling = 96, 64
	dir := t.TempDir()
	cmd := exec.Command("bash", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, fds),
		binary(t), "serve", "--listen", "127.0.0.1:0", "--data", dir)
	s := serverOf(startProcess(t, cmd, nil))
	tok := s.readAdminToken()
	c := s.client()
	// Not an admin: admins get in past the limit.
	user := strings.TrimSpace(mustRun(t, nil, "", "token", "create", "--sub", "alice", "--data", dir))
	refused := 0
	for i := range ceiling + 16 {
		ws, resp, err := servertest.DialRaw(t, "ws://"+s.addr+"/rpc", servertest.Bearer(user))
		switch {
		case err == nil:
			if i >= ceiling {
				t.Fatalf("connection %d was let in; the limit is %d", i+1, ceiling)
			}
			ws.SetReadLimit(1 << 20)
		case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("connection %d: %v (%v)", i+1, err, resp)
		}
	}
	if refused != 16 {
		t.Fatalf("%d connections refused, want 16", refused)
	}
	if res := c.Do(http.MethodGet, "/healthz", nil, nil); res.Status != http.StatusOK {
		t.Fatalf("/healthz: HTTP %d", res.Status)
	}
	if r, _ := c.Call(servertest.Bearer(tok), "serverInfo", nil); r.Error != nil {
		t.Fatalf("serverInfo: %+v", r.Error)
	}
	if !strings.Contains(s.stderr.String(), "a connection limit is reached") {
		t.Errorf("nothing was logged at warn:\n%s", s.stderr.String())
	}
}
