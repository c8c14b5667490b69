package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/service"
)

func token(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usagef("usage: switchboard token create --sub USER [--publish PATTERN]... [--subscribe PATTERN]... [--admin] [--ttl DURATION]")
	}
	var (
		sub, secret, dataDir string
		publish, subscribe   listFlag
		admin                bool
		ttl                  time.Duration
	)
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&sub, "sub", "", "the user the token is for (required)")
	fs.Var(&publish, "publish", "channel pattern the user may publish to; repeat or separate with commas")
	fs.Var(&subscribe, "subscribe", "channel pattern the user may subscribe to; repeat or separate with commas")
	fs.BoolVar(&admin, "admin", false, "let the user do everything")
	fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid; 0 for a token that never expires")
	fs.StringVar(&secret, "token-secret", "", "HS256 secret (default: the data directory's)")
	fs.StringVar(&dataDir, "data", "switchboard-data", "data directory holding the generated secret")
	withEnvHelp(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if sub == "" {
		return usagef("token create: --sub is required")
	}
	key, _, err := tokenSecret(secret, dataDir)
	if err != nil {
		return err
	}
	a, err := auth.New(key)
	if err != nil {
		return err
	}
	tok, err := a.Issue(sub, service.Permissions{Publish: publish, Subscribe: subscribe, Admin: admin}, ttl)
	if err != nil {
		return usageError{err}
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
