package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/internal/servertest"
)

// A node reaches a Redis that wants TLS and a password through a
// rediss:// URL and --redis-cacert; without the CA, or with the wrong
// password, it does not start, says why, and never prints the password.
func TestRedisOverTLSWithPassword(t *testing.T) {
	const password = "pw-0f3c9a-never-in-a-log"
	srv := redistest.Start(t, redistest.Options{TLS: true, Password: password})
	secret := servertest.RandomSecret()

	for _, bad := range []struct{ name, url, why string }{
		{"no CA", srv.TLSURL(), "certificate"},
		{"wrong password", strings.Replace(srv.TLSURL(), password, "not-the-password", 1), "WRONGPASS"},
	} {
		args := []string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--token-secret", secret,
			"--engine", "redis", "--redis-url", bad.url}
		if bad.name == "wrong password" {
			args = append(args, "--redis-cacert", srv.TLS.CAFile)
		}
		r := runBinary(t, nil, args...)
		if r.code == 0 || !strings.Contains(r.stderr, bad.why) {
			t.Errorf("%s: serve exited %d, stderr %q; want a failure that says %q", bad.name, r.code, r.stderr, bad.why)
		}
		if strings.Contains(r.stderr+r.stdout, password) || strings.Contains(r.stderr+r.stdout, "not-the-password") {
			t.Errorf("%s: serve printed the password: %s", bad.name, r.stderr)
		}
	}

	node := startDurable(t, t.TempDir(), secret, "--engine", "redis", "--redis-url", srv.TLSURL(), "--redis-cacert", srv.TLS.CAFile)
	tok := durableToken(t, secret)
	r, _ := node.client().Call(servertest.Bearer(tok), "channelPublish", map[string]any{"channel": "tls.room", "data": json.RawMessage(`"over tls"`)})
	var res servertest.PublishResult
	r.Decode(t, &res)
	if res.Offset != 1 {
		t.Fatalf("publish over TLS: %+v", res)
	}
	pubs, offset, _ := readHistory(t, node.client(), tok, "tls.room")
	if offset != 1 || len(pubs) != 1 || string(pubs[0].Data) != `"over tls"` {
		t.Errorf("history over TLS: offset %d, %v", offset, pubs)
	}
}
