package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/rpc"
)

// The README is the front door: its tables must match the code.

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableRow returns the README table row that starts with cell, or "".
func tableRow(doc, cell string) string {
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| "+cell+" |") {
			return line
		}
	}
	return ""
}

func TestREADMEListsEveryServeFlag(t *testing.T) {
	doc := readme(t)
	var cfg serveConfig
	serveFlags(&cfg).VisitAll(func(f *flag.Flag) {
		row := tableRow(doc, "`--"+f.Name+"`")
		if row == "" {
			t.Errorf("README configuration table has no row for --%s", f.Name)
			return
		}
		if env := "`" + envName(f.Name) + "`"; !strings.Contains(row, env) {
			t.Errorf("README row for --%s does not name %s: %s", f.Name, env, row)
		}
		if f.DefValue != "" && !strings.Contains(row, "`"+f.DefValue+"`") {
			t.Errorf("README row for --%s does not give the default %q: %s", f.Name, f.DefValue, row)
		}
	})
}

func TestREADMEListsEveryErrorCode(t *testing.T) {
	doc := readme(t)
	for _, c := range rpc.Codes {
		row := tableRow(doc, fmt.Sprint(c.Code))
		if row == "" {
			t.Errorf("README error code table has no row for %d (%s)", c.Code, c.Message)
		} else if !strings.HasPrefix(row, fmt.Sprintf("| %d | `%s` |", c.Code, c.Name)) {
			t.Errorf("README row for %d does not name it %s: %s", c.Code, c.Name, row)
		}
	}
}

func TestREADMEListsEveryCloseCode(t *testing.T) {
	doc := readme(t)
	for _, c := range rpc.CloseCodes {
		if tableRow(doc, fmt.Sprint(int(c.Code))) == "" {
			t.Errorf("README close code table has no row for %d (%s)", c.Code, c.Meaning)
		}
	}
}

func TestREADMEListsClientCommandsFlagsAndExitCodes(t *testing.T) {
	doc := readme(t)
	for _, name := range []string{"call", "publish", "subscribe", "history", "presence", "methods", "bench", "completion"} {
		if !strings.Contains(doc, "| `"+name+" ") && !strings.Contains(doc, "| `"+name+"` |") {
			t.Errorf("README client command table has no row for %s", name)
		}
	}
	clientCommand("x", &connFlags{}, io.Discard).VisitAll(func(f *flag.Flag) {
		row := tableRow(doc, "`--"+f.Name+"`")
		if row == "" || f.DefValue != "" && !strings.Contains(row, "`"+f.DefValue+"`") {
			t.Errorf("README client flag table: row for --%s missing or without its default %q: %q", f.Name, f.DefValue, row)
		}
		if connFromEnv(f.Name) && !strings.Contains(row, "`"+envName(f.Name)+"`") {
			t.Errorf("README row for --%s does not name %s", f.Name, envName(f.Name))
		}
	})
	for _, code := range []int{exitOK, exitError, exitUsage, exitConnect, exitLost} {
		if tableRow(doc, fmt.Sprint(code)) == "" {
			t.Errorf("README exit code table has no row for %d", code)
		}
	}
}

// TestREADMEClientExample runs the README's command-line example, as
// written, against a live server (at its address rather than 8080), and
// checks the outputs its comments show.
func TestREADMEClientExample(t *testing.T) {
	testREADMEExample(t, "## Command-line client")
}

// testREADMEExample runs the first sh block after heading as
// TestREADMEClientExample describes.
func testREADMEExample(t *testing.T, heading string) {
	doc := readme(t)
	section := doc[strings.Index(doc, heading):]
	start := strings.Index(section, "```sh\n") + len("```sh\n")
	script := section[start : start+strings.Index(section[start:], "```")]

	s := startCLIServer(t, "", "")
	dir := t.TempDir()
	// The example runs from the repository: bin/switchboard, and the
	// server's data directory as the default ./switchboard-data.
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"bin/switchboard": binary(t), "switchboard-data": s.dir} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	script = strings.ReplaceAll(script, "127.0.0.1:8080", s.addr)
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README example failed: %v\n%s", err, out)
	}
	for _, line := range strings.Split(script, "\n") {
		want, ok := strings.CutPrefix(line, "# ")
		if !ok {
			continue
		}
		found := false
		for _, got := range strings.Split(string(out), "\n") {
			found = found || matchEllipsis(want, got)
		}
		if !found {
			t.Errorf("the README example's output lacks %q:\n%s", want, out)
		}
	}
}

// matchEllipsis reports whether got is want, where each "…" in want
// stands for any text.
func matchEllipsis(want, got string) bool {
	parts := strings.Split(want, "…")
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	for _, p := range parts[1:] {
		i := strings.Index(got, p)
		if i < 0 {
			return false
		}
		got = got[i+len(p):]
	}
	return got == "" || parts[len(parts)-1] == ""
}

// TestREADMEListsEveryBenchFlag checks the bench flag table: a row for
// each flag of bench's own, with its default.
func TestREADMEListsEveryBenchFlag(t *testing.T) {
	doc := readme(t)
	section := doc[strings.Index(doc, "### Measuring a server"):]
	common := map[string]bool{}
	clientCommand("x", &connFlags{}, io.Discard).VisitAll(func(f *flag.Flag) { common[f.Name] = true })
	benchFlags(&benchOpts{}, io.Discard).VisitAll(func(f *flag.Flag) {
		if common[f.Name] {
			return
		}
		def := f.DefValue
		if f.Name == "channel" {
			def = "bench.<random>" // what the empty default stands for
		}
		if row := tableRow(section, "`--"+f.Name+"`"); row == "" || !strings.Contains(row, "`"+def+"`") {
			t.Errorf("README bench flag table: row for --%s missing or without its default %q: %q", f.Name, def, row)
		}
	})
}
