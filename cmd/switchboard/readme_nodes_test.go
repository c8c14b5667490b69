package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
)

// TestREADMESeveralNodesExample runs the README's two-node example as a
// user would paste it, on free ports and in a scratch directory, with a
// real redis-server, and checks its output against the lines the README
// shows ("…" standing for what changes from run to run).
func TestREADMESeveralNodesExample(t *testing.T) {
	redistest.Require(t)
	doc := readme(t)
	section := doc[strings.Index(doc, "## Several nodes"):]
	start := strings.Index(section, "```sh\n") + len("```sh\n")
	script := section[start : start+strings.Index(section[start:], "```")]

	dir := t.TempDir()
	run := strings.NewReplacer(
		"6379", strconv.Itoa(redistest.FreePort(t)),
		"8081", strconv.Itoa(redistest.FreePort(t)),
		"8082", strconv.Itoa(redistest.FreePort(t)),
		"/var/lib/redis", dir,
	).Replace(script)
	bin := t.TempDir()
	if err := os.Symlink(binary(t), filepath.Join(bin, "switchboard")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", run)
	cmd.Dir = dir
	cmd.Env = environ("PATH=" + bin + ":" + os.Getenv("PATH"))
	// The example leaves Redis and both nodes running in the background:
	// they go with the script's process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	// The servers' logs go to stderr, which they keep open after the
	// script ends: a file, not a pipe that Output would wait for.
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		logs, _ := exec.Command("sh", "-c", "tail -n 20 "+dir+"/*.log").CombinedOutput()
		t.Fatalf("the README example failed: %v\n%s\nlogs:\n%s", err, out, logs)
	}
	rest := string(out)
	for _, line := range strings.Split(script, "\n") {
		want, ok := strings.CutPrefix(line, "# ")
		if !ok {
			continue
		}
		for _, piece := range strings.Split(want, "…") {
			i := strings.Index(rest, piece)
			if i < 0 {
				t.Fatalf("the README example's output lacks %q (of %q), in order:\n%s", piece, want, out)
			}
			rest = rest[i+len(piece):]
		}
	}
}
