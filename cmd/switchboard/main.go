// Command switchboard is the Switchboard server and its tools, in one
// binary.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `Switchboard: a real-time hub speaking JSON-RPC 2.0 over WebSocket and HTTP.

Usage:
  switchboard serve [flags]            run the server
  switchboard token create [flags]     print a signed access token
  switchboard openrpc                  print the OpenRPC document
  switchboard version                  print the version

Run "switchboard COMMAND -h" for a command's flags. Every flag can also be
set in the environment as SWITCHBOARD_<FLAG>, e.g. SWITCHBOARD_LISTEN.
`

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serve(rest, stdout, stderr)
	case "token":
		err = token(rest, stdout, stderr)
	case "openrpc":
		err = printOpenRPC(stdout)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	var usageErr usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return exitUsage
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
