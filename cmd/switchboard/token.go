package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

type tokenOpts struct {
	sub, secret, dataDir string
	privateKey, alg, kid string
	publish, subscribe   listFlag
	admin                bool
	ttl                  time.Duration
}

func tokenFlags(o *tokenOpts, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sub, "sub", "", "the user the token is for (required)")
	fs.Var(&o.publish, "publish", "channel pattern the user may publish to; repeat or separate with commas")
	fs.Var(&o.subscribe, "subscribe", "channel pattern the user may subscribe to; repeat or separate with commas")
	fs.BoolVar(&o.admin, "admin", false, "let the user do everything")
	fs.DurationVar(&o.ttl, "ttl", 24*time.Hour, "how long the token is valid; 0 for a token that never expires")
	fs.StringVar(&o.secret, "token-secret", "", "HS256 secret (default: the data directory's)")
	fs.StringVar(&o.dataDir, "data", "switchboard-data", "data directory holding the generated secret")
	fs.StringVar(&o.privateKey, "private-key", "", "sign with this PEM private key (RSA, ECDSA P-256/P-384, Ed25519) instead of the secret, as an identity provider would: for testing --token-public-key and --token-jwks-url")
	fs.StringVar(&o.alg, "alg", "", "with --private-key: the algorithm (RS256, RS384, RS512, ES256, ES384, EdDSA; default: the key's first)")
	fs.StringVar(&o.kid, "kid", "", "with --private-key: the kid to put in the token's header")
	withEnvHelp(fs)
	return fs
}

func token(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usagef("usage: switchboard token create --sub USER [--publish PATTERN]... [--subscribe PATTERN]... [--admin] [--ttl DURATION] [--private-key FILE [--alg ALG] [--kid KID]]")
	}
	var o tokenOpts
	if err := parseFlags(tokenFlags(&o, stderr), args[1:]); err != nil {
		return err
	}
	if o.sub == "" {
		return usagef("token create: --sub is required")
	}
	issuer, err := o.issuer()
	if err != nil {
		return err
	}
	tok, err := issuer.Issue(o.sub, service.Permissions{Publish: o.publish, Subscribe: o.subscribe, Admin: o.admin}, o.ttl)
	if err != nil {
		return usageError{err}
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// issuer is what signs: the private key, or else the secret.
func (o *tokenOpts) issuer() (interface {
	Issue(string, service.Permissions, time.Duration) (string, error)
}, error) {
	if o.privateKey != "" {
		s, err := auth.ReadSigner(o.privateKey, o.alg, o.kid)
		if err != nil {
			return nil, usageError{err}
		}
		return s, nil
	}
	if o.alg != "" || o.kid != "" {
		return nil, usagef("token create: --alg and --kid go with --private-key; HS256 tokens of the secret need neither")
	}
	key, _, err := server.TokenSecret(o.secret, o.dataDir)
	if err != nil {
		return nil, err
	}
	return auth.New(key)
}
