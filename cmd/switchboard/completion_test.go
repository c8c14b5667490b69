package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// completionCase is a command line being completed, and words the
// completions must (and must not) include.
type completionCase struct {
	line    []string // the words typed so far; the last is being completed
	want    []string
	notWant []string
}

var completionCases = []completionCase{
	{line: []string{"switchboard", "pu"}, want: []string{"publish"}, notWant: []string{"serve"}},
	{line: []string{"switchboard", ""}, want: []string{"serve", "call", "publish", "subscribe", "history", "presence", "methods", "completion"}},
	{line: []string{"switchboard", "publish", "--l"}, want: []string{"--lines"}, notWant: []string{"--count"}},
	{line: []string{"switchboard", "subscribe", "--"}, want: []string{"--since", "--count", "--strict", "--url", "--token", "--pretty"}},
	{line: []string{"switchboard", "serve", "--history-"}, want: []string{"--history-size", "--history-ttl"}},
	{line: []string{"switchboard", "completion", ""}, want: []string{"bash", "zsh", "fish"}},
	// Method names come from the server SWITCHBOARD_URL points at.
	{line: []string{"switchboard", "call", "channelPu"}, want: []string{"channelPublish"}, notWant: []string{"serverPing"}},
}

// completionEnv puts the test binary on PATH as "switchboard", aimed at a
// running server.
func completionEnv(t *testing.T) []string {
	t.Helper()
	s := startCLIServer(t, "", "")
	return append(s.env, "PATH="+filepath.Dir(binary(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// shell returns the path of a shell, which CI installs (.ci/run).
func shell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed here (.ci/run installs it)", name)
	}
	return p
}

func runShell(t *testing.T, env []string, sh string, args ...string) string {
	t.Helper()
	cmd := exec.Command(sh, args...)
	cmd.Env = environ(env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", sh, args, err, out)
	}
	return string(out)
}

func checkCompletions(t *testing.T, c completionCase, got []string) {
	t.Helper()
	for _, w := range c.want {
		if !slices.Contains(got, w) {
			t.Errorf("completing %q: %q lacks %q", c.line, got, w)
		}
	}
	for _, w := range c.notWant {
		if slices.Contains(got, w) {
			t.Errorf("completing %q: %q has %q", c.line, got, w)
		}
	}
}

// quoteWords quotes words for bash and zsh arrays.
func quoteWords(words []string) string {
	var q []string
	for _, w := range words {
		q = append(q, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	return strings.Join(q, " ")
}

func TestCompletionBash(t *testing.T) {
	sh := shell(t, "bash")
	env := completionEnv(t)
	for _, c := range completionCases {
		script := `source <(switchboard completion bash) || exit 1
COMP_WORDS=(` + quoteWords(c.line) + `)
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_switchboard
printf '%s\n' "${COMPREPLY[@]}"`
		checkCompletions(t, c, strings.Fields(runShell(t, env, sh, "-c", script)))
	}
}

// TestCompletionZsh drives the completion function with zsh's completion
// builtins replaced by ones that print what they are given.
func TestCompletionZsh(t *testing.T) {
	sh := shell(t, "zsh")
	env := completionEnv(t)
	for _, c := range completionCases {
		script := `compdef() { : }
compadd() { if [[ $1 == -a ]]; then print -l -- ${(P)2}; else print -l -- "$@"; fi }
_describe() { print -l -- ${${(P)2}%%:*} }
_files() { : }
source <(switchboard completion zsh) || exit 1
words=(` + quoteWords(c.line) + `)
CURRENT=${#words}
PREFIX=$words[CURRENT]
_switchboard`
		var got []string
		for _, w := range strings.Fields(runShell(t, env, sh, "-c", script)) {
			if strings.HasPrefix(w, c.line[len(c.line)-1]) { // zsh filters by PREFIX itself
				got = append(got, w)
			}
		}
		checkCompletions(t, c, got)
	}
}

func TestCompletionFish(t *testing.T) {
	sh := shell(t, "fish")
	env := completionEnv(t)
	for _, c := range completionCases {
		script := `switchboard completion fish | source; or exit 1
complete -C ` + "'" + strings.Join(c.line, " ") + "'"
		var got []string
		for _, l := range strings.Split(runShell(t, env, sh, "-c", script), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		checkCompletions(t, c, got)
	}
}
