package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/switchboard/switchboard/client"
)

// connFlags are the flags of every command that talks to a server.
type connFlags struct {
	url, token, tokenCommand, cacert string
	pretty                           bool
}

// clientCommand starts the flag set of a command that talks to a server.
func clientCommand(name string, cf *connFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cf.url, "url", client.DefaultURL, "the server: ws://, wss://, http:// or https://, with or without /rpc (env SWITCHBOARD_URL)")
	fs.StringVar(&cf.token, "token", "", "access token (env SWITCHBOARD_TOKEN)")
	fs.StringVar(&cf.tokenCommand, "token-command", "", "shell command printing an access token, run for each new one: a subscriber then outlives its tokens (env SWITCHBOARD_TOKEN_COMMAND)")
	fs.StringVar(&cf.cacert, "cacert", "", "PEM file of the CA certificates to trust for https:// and wss://, instead of the system's (env SWITCHBOARD_CACERT)")
	fs.BoolVar(&cf.pretty, "pretty", false, "indent the JSON written to stdout")
	return fs
}

// connFromEnv says which flags of a client command the environment may
// set: the connection's, and not per-call choices like --limit.
func connFromEnv(name string) bool {
	return name == "url" || name == "token" || name == "token-command" || name == "cacert"
}

// parseClientArgs parses a client command's arguments, checking that
// there are between min and max positional ones (max < 0: no limit). The
// flags are listed for -h, and a mistake is told in one line.
func parseClientArgs(fs *flag.FlagSet, args []string, min, max int, usage string) ([]string, error) {
	stderr := fs.Output()
	fs.SetOutput(io.Discard)
	pos, err := parseArgs(fs, args, connFromEnv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "Usage: switchboard %s\n\nFlags:\n", usage)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return nil, err
	}
	if err == nil && (len(pos) < min || max >= 0 && len(pos) > max) {
		err = usagef("usage: switchboard %s", usage)
	}
	if err == nil {
		err = oneTokenSource(fs)
	}
	if err != nil {
		return nil, usagef("%v (see switchboard %s -h)", err, fs.Name())
	}
	return pos, nil
}

// oneTokenSource leaves at most one of --token and --token-command set.
// Given both on the command line, or both in the environment, it is an
// error; one on the command line wins over the other in the environment,
// as the command line always does.
func oneTokenSource(fs *flag.FlagSet) error {
	token, command := fs.Lookup("token"), fs.Lookup("token-command")
	if token.Value.String() == "" || command.Value.String() == "" {
		return nil
	}
	given := map[string]bool{} // on the command line
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	switch {
	case given["token"] == given["token-command"]:
		where := "in the environment (" + envName("token") + ", " + envName("token-command") + ")"
		if given["token"] {
			where = "on the command line"
		}
		return fmt.Errorf("give --token or --token-command, not both: both are set %s", where)
	case given["token"]:
		return command.Value.Set("")
	default:
		return token.Value.Set("")
	}
}

// dial makes the client; human messages about the connection go to
// stderr.
func (cf *connFlags) dial(stderr io.Writer) (*client.Client, error) {
	roots, err := caCertPool(cf.cacert)
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		Token:   cf.token,
		RootCAs: roots,
		Logger:  slog.New(&lineHandler{w: stderr}),
	}
	if cf.tokenCommand != "" {
		opts.TokenFunc = commandToken(cf.tokenCommand)
	}
	c, err := client.New(cf.url, opts)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// caCertPool reads --cacert's file; nil, trusting the system's roots,
// when file is "". Like curl's --cacert, the file replaces the system's
// roots rather than adding to them: it says exactly whom to trust, and a
// private deployment has no use for public CAs.
func caCertPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--cacert: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, usagef("--cacert %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// jsonOut writes JSON values to stdout, one per line, indented with
// --pretty.
type jsonOut struct {
	w      io.Writer
	pretty bool
}

func (o jsonOut) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if o.pretty {
		return o.writeRaw(b)
	}
	// Marshal's output is compact already: one line, as it is.
	_, err = o.w.Write(append(b, '\n'))
	return err
}

// writeRaw writes JSON text from elsewhere (the server's), compacted onto
// one line, or indented with --pretty.
func (o jsonOut) writeRaw(b []byte) error {
	var buf bytes.Buffer
	if o.pretty {
		err := json.Indent(&buf, b, "", "  ")
		if err != nil {
			return err
		}
	} else if err := json.Compact(&buf, b); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := o.w.Write(buf.Bytes())
	return err
}

// jsonArg reads a JSON argument: the text itself, or standard input for
// "-".
func jsonArg(what, arg string, stdin io.Reader) (json.RawMessage, error) {
	b := []byte(arg)
	if arg == "-" {
		var err error
		if b, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("reading %s from standard input: %w", what, err)
		}
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return nil, usagef("%s is not JSON: %.80q", what, b)
	}
	return b, nil
}

// lineHandler is a slog.Handler for people: "message key=value ...",
// one line each, without times or levels.
type lineHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{w: h.w, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
