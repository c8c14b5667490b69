package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// tokenCommandTimeout bounds each run of --token-command.
const tokenCommandTimeout = 30 * time.Second

// commandToken is a client.Options.TokenFunc running cmdline with sh -c
// for each token: its standard output, trimmed, is the token. The
// command's stdin is empty (the client command may be reading its own),
// and its stderr is kept for the error. No error says the token.
func commandToken(cmdline string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, tokenCommandTimeout)
		defer cancel()
		stdout, stderr := &capped{most: maxTokenOutput}, &capped{most: maxTokenOutput}
		cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		// A child left behind holding the output open must not hold the
		// client too.
		cmd.WaitDelay = time.Second
		start := time.Now()
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err != nil && ctx.Err() != nil:
			err = fmt.Errorf("stopped after %v: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
		case errors.As(err, &exit):
			err = errors.New(exit.String()) // "exit status 1", without the output
		}
		if err != nil {
			return "", fmt.Errorf("--token-command %q: %v%s", cmdline, err, firstLine(stderr.String()))
		}
		tok := strings.TrimSpace(stdout.String())
		switch {
		case stdout.over:
			return "", fmt.Errorf("--token-command %q printed more than %d bytes; a token is one line", cmdline, maxTokenOutput)
		case tok == "":
			return "", fmt.Errorf("--token-command %q printed no token%s", cmdline, firstLine(stderr.String()))
		case strings.ContainsAny(tok, "\r\n"):
			return "", fmt.Errorf("--token-command %q printed more than one line; a token is one", cmdline)
		}
		return tok, nil
	}
}

// maxTokenOutput bounds what is kept of a token command's output: real
// tokens are a few KiB.
const maxTokenOutput = 64 << 10

// capped keeps the first most bytes written to it, and whether there
// were more: a command that prints without end costs no more memory.
// It does not embed its buffer, whose ReadFrom io.Copy would call
// instead of Write.
type capped struct {
	buf  bytes.Buffer
	most int
	over bool
}

// Write takes all of p, as a short write would stop the command.
func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.most - c.buf.Len(); n > room {
		c.over = true
		p = p[:max(room, 0)]
	}
	c.buf.Write(p)
	return n, nil
}

func (c *capped) String() string { return c.buf.String() }

// firstLine is ": " and the first line of a command's stderr that is not
// blank, or "" when there is none.
func firstLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			const most = 200
			if len(l) > most {
				l = strings.ToValidUTF8(l[:most], "") + "…"
			}
			return ": " + l
		}
	}
	return ""
}
