// Command switchboard is the Switchboard server, its command-line client
// and its tools, in one binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/switchboard/switchboard/client"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitError   = 1 // the server answered with a JSON-RPC error, or another failure
	exitUsage   = 2
	exitConnect = 3 // cannot connect, or the server refused the token
	exitLost    = 4 // subscribe --strict: publications were lost
)

// command is one of the binary's commands.
type command struct {
	name     string
	synopsis string
	summary  string
	// flags makes the command's flag set, for completion; nil for none.
	flags func() *flag.FlagSet
	// args is what its arguments complete to: "method", "channel",
	// "shell", a word list, or "" for nothing.
	args string
	run  func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands lists the commands in the order --help shows them. It is set
// in init because completion, one of them, reads it.
var commands []command

func init() {
	commands = []command{
		{name: "serve", synopsis: "serve [flags]", summary: "run the server",
			flags: func() *flag.FlagSet { return serveFlags(&serveConfig{}) },
			run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return serve(args, stdout, stderr)
			}},
		{name: "call", synopsis: "call METHOD [PARAMS | -]", summary: "call a method; print its result",
			flags: func() *flag.FlagSet { return callFlags(&connFlags{}, io.Discard) },
			args:  "method", run: callCmd},
		{name: "publish", synopsis: "publish CHANNEL (DATA | - | --lines)", summary: "publish to a channel; print where it went",
			flags: func() *flag.FlagSet { return publishFlags(&publishOpts{}, io.Discard) },
			args:  "channel", run: publishCmd},
		{name: "subscribe", synopsis: "subscribe CHANNEL...", summary: "print each publication to channels as a JSON line",
			flags: func() *flag.FlagSet { return subscribeFlags(&subscribeOpts{}, io.Discard) },
			args:  "channel", run: subscribeCmd},
		{name: "history", synopsis: "history CHANNEL", summary: "print a channel's past publications as JSON lines",
			flags: func() *flag.FlagSet { return historyFlags(&historyOpts{}, io.Discard) },
			args:  "channel", run: historyCmd},
		{name: "presence", synopsis: "presence CHANNEL", summary: "print who is subscribed to a channel",
			flags: func() *flag.FlagSet { return presenceFlags(&connFlags{}, io.Discard) },
			args:  "channel", run: presenceCmd},
		{name: "methods", synopsis: "methods", summary: "list the server's methods",
			flags: func() *flag.FlagSet { return methodsFlags(&methodsOpts{}, io.Discard) },
			run:   methodsCmd},
		{name: "bench", synopsis: "bench (rpc | publish | fanout | idle)", summary: "load a server; print latency and throughput",
			flags: func() *flag.FlagSet { return benchFlags(&benchOpts{}, io.Discard) },
			args:  "rpc publish fanout idle", run: benchCmd},
		{name: "token", synopsis: "token create --sub USER [flags]", summary: "print a signed access token",
			flags: func() *flag.FlagSet { return tokenFlags(&tokenOpts{}, io.Discard) },
			args:  "create",
			run: func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
				return token(args, stdout, stderr)
			}},
		{name: "openrpc", synopsis: "openrpc", summary: "print the OpenRPC document",
			run: func(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) error {
				return printOpenRPC(stdout)
			}},
		{name: "completion", synopsis: "completion (bash | zsh | fish)", summary: "print a shell completion script",
			args: "shell", run: completionCmd},
		{name: "version", synopsis: "version", summary: "print the version",
			run: func(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) error {
				_, err := fmt.Fprintln(stdout, version)
				return err
			}},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("Switchboard: a real-time hub speaking JSON-RPC 2.0 over WebSocket and HTTP.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  switchboard %-38s %s\n", c.synopsis, c.summary)
	}
	b.WriteString(`
Run "switchboard COMMAND -h" for a command's flags. Every flag of serve and
token can also be set in the environment as SWITCHBOARD_<FLAG>, e.g.
SWITCHBOARD_LISTEN. The client commands (call, publish, subscribe, history,
presence, methods, bench) take --url and --token, or SWITCHBOARD_URL and
SWITCHBOARD_TOKEN; the URL defaults to ` + client.DefaultURL + `. Instead of
--token, --token-command (SWITCHBOARD_TOKEN_COMMAND) is a shell command that
prints a token, run for each new one, so that subscribe outlives its
tokens. --cacert
(SWITCHBOARD_CACERT) names the CA certificates to trust for https. They print
only JSON on stdout, one value per line (--pretty indents it), and messages
for people on stderr.

Exit codes:
  0  success
  1  the server answered with a JSON-RPC error (printed as JSON on stderr),
     or another failure
  2  usage error
  3  cannot connect, or the server refused the token
  4  subscribe --strict: publications were lost
A signal (Ctrl-C) stops a command the usual way; subscribe, which runs until
stopped, then exits 0.
`)
	return b.String()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage())
		return exitOK
	case "--version", "-version":
		name = "version"
	case completeCommand:
		return complete(rest, stdout)
	}
	for _, c := range commands {
		if c.name == name {
			// Signals keep their default action (serve and subscribe
			// catch them to stop cleanly), so that an interrupted command
			// ends at once, as the shell expects.
			return exitCode(c.run(context.Background(), rest, stdin, stdout, stderr), stderr)
		}
	}
	fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", name, usage())
	return exitUsage
}

// exitCode reports err on stderr and returns the exit code for it.
func exitCode(err error, stderr io.Writer) int {
	var (
		usageErr usageError
		rpcErr   *client.Error
		connErr  *client.ConnectionError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return exitUsage
	case errors.As(err, &rpcErr):
		// Scripts read the error as JSON, alone on its line.
		b, _ := json.Marshal(rpcErr)
		fmt.Fprintf(stderr, "%s\n", b)
		return exitError
	case errors.As(err, &connErr):
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return exitConnect
	case errors.Is(err, errLost):
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return exitLost
	default:
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return exitError
	}
}

// usageError is a mistake in the command line.
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}
