package client_test

// The client over HTTPS and WSS, against the real server with a
// certificate from a CA made by the test.

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/service"
)

// The Go client trusts Options.RootCAs for its calls and for the
// WebSocket its subscriptions share.
func TestTLSGoClient(t *testing.T) {
	ca := servertest.NewCA(t)
	ta := servertest.StartTLS(t, ca, t.TempDir())
	tok := ta.Token("carol", service.Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>"}}, time.Hour)
	ctx := sdkContext(t, servertest.WaitTimeout)
	c := sdkClient(t, "wss://"+ta.Addr, tok, client.Options{RootCAs: ca.Pool})
	sub, err := c.Subscribe(ctx, "chat.go", nil)
	if err != nil {
		t.Fatalf("Subscribe over wss: %v", err)
	}
	pub, err := c.Publish(ctx, "chat.go", json.RawMessage(`{"n":1}`), "")
	if err != nil {
		t.Fatalf("Publish over https: %v", err)
	}
	if p := sdkNext(t, ctx, sub); p.Offset != pub.Offset {
		t.Errorf("got offset %d, want %d", p.Offset, pub.Offset)
	}
	if _, err := client.New(ta.WSURL(), client.Options{RootCAs: ca.Pool, HTTPClient: ta.HTTP}); err == nil {
		t.Errorf("client.New took both RootCAs and HTTPClient")
	}
}
