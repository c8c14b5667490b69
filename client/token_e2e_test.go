package client_test

// End-to-end tests of tokens that change under a running client:
// Options.TokenFunc refreshing the token of a connection without
// replacing it, reconnecting with a new one when a refresh fails, and an
// admin's disconnect ending the subscriptions for good.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// tokenSource is a TokenFunc issuing tokens of user that live ttl, and
// counting its calls. Its fail, when set, decides from the call's number
// (1 for the first) whether that call fails.
type tokenSource struct {
	ta    *servertest.Server
	user  string
	ttl   time.Duration
	calls atomic.Int64
	fail  func(n int64) bool
}

func (ts *tokenSource) token(context.Context) (string, error) {
	n := ts.calls.Add(1)
	if ts.fail != nil && ts.fail(n) {
		return "", errors.New("the token service is down")
	}
	// Not ta.Token, which fails the test: this runs on the client's
	// goroutines.
	return ts.ta.Server.Authority().Issue(ts.user, sdkPerms, ts.ttl)
}

// publishFor publishes to channel through c, one publication at a time,
// for d, and returns the last offset it was given.
func publishFor(ctx context.Context, c *client.Client, channel string, d time.Duration) (last uint64, err error) {
	end := time.Now().Add(d)
	for i := 1; time.Now().Before(end); i++ {
		p, err := c.Publish(ctx, channel, json.RawMessage(sdkData(i)), "")
		if err != nil {
			return last, err
		}
		last = p.Offset
		time.Sleep(20 * time.Millisecond)
	}
	return last, nil
}

// expectWhilePublishing publishes to sub's channel through pub for d and
// checks that sub yields offsets 1 to the last one, each once, in order,
// with the data published. It returns how many there were.
func expectWhilePublishing(t *testing.T, ctx context.Context, pub *client.Client, sub *client.Subscription, d time.Duration) uint64 {
	t.Helper()
	type outcome struct {
		last uint64
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		last, err := publishFor(ctx, pub, sub.Channel(), d)
		done <- outcome{last, err}
	}()
	var (
		next     = uint64(1)
		last     uint64 // known once the publisher is done
		fin      bool
		progress = time.Now()
	)
	for !fin || next <= last {
		if !fin {
			select {
			case o := <-done:
				if o.err != nil {
					t.Fatalf("publisher: %v", o.err)
				}
				fin, last = true, o.last
				continue
			default:
			}
		}
		// Short waits, to see the publisher end; the error of a context
		// leaves the subscription as it is. Each publication comes well
		// within 5 seconds of being made.
		nctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		p, err := sub.Next(nctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if time.Since(progress) > 5*time.Second {
				t.Fatalf("Next: nothing after offset %d for 5s", next-1)
			}
			continue
		case err != nil:
			t.Fatalf("Next after offset %d: %v", next-1, err)
		}
		if p.Offset != next || string(p.Data) != sdkData(int(next)) {
			t.Fatalf("Next: offset %d holding %s, want offset %d holding %s", p.Offset, p.Data, next, sdkData(int(next)))
		}
		next, progress = next+1, time.Now()
	}
	return last
}

// onlyMember returns the connection id of channel's one subscriber.
func onlyMember(t *testing.T, ctx context.Context, c *client.Client, channel string) string {
	t.Helper()
	p, err := c.Presence(ctx, channel)
	if err != nil {
		t.Fatalf("Presence(%s): %v", channel, err)
	}
	if len(p.Members) != 1 {
		t.Fatalf("Presence(%s): %d members, want 1: %+v", channel, len(p.Members), p.Members)
	}
	return p.Members[0].ConnectionID
}

// TestClientTokenFuncRefreshes: a subscriber whose tokens live 3 seconds
// keeps its one connection, and its subscription, for 10 seconds of
// publishing, over at least three expiries: each sessionExpiring is
// answered with a new token from TokenFunc. Every publication comes
// once, in order.
func TestClientTokenFuncRefreshes(t *testing.T) {
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{ExpiryNotice: time.Second}})
	ctx := sdkContext(t, 60*time.Second)
	ts := &tokenSource{ta: ta, user: "alice", ttl: 3 * time.Second}
	logger, log := sdkLogger()
	c := sdkClient(t, "ws://"+ta.Addr, "", client.Options{TokenFunc: ts.token, Logger: logger})
	pub := sdkClient(t, "http://"+ta.Addr, ta.Token("bob", sdkPerms, time.Hour), client.Options{})

	sub, err := c.Subscribe(ctx, "refresh.x", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	conn := onlyMember(t, ctx, pub, "refresh.x")
	const d = 10 * time.Second // over three lives of a token
	n := expectWhilePublishing(t, ctx, pub, sub, d)

	if got := onlyMember(t, ctx, pub, "refresh.x"); got != conn {
		t.Errorf("the subscriber's connection was %s, and is %s after %v of 3-second tokens: it was replaced", conn, got, d)
	}
	// One for the connection, one for each refresh.
	if calls := ts.calls.Load(); calls < 4 {
		t.Errorf("TokenFunc was called %d times in %v of 3-second tokens, want at least 4", calls, d)
	}
	if r := strings.Count(log.String(), `msg="switchboard: token refreshed"`); r < 3 {
		t.Errorf("%d refreshes logged, want at least 3:\n%s", r, log)
	}
	if strings.Contains(log.String(), "reconnect") {
		t.Errorf("the client reconnected:\n%s", log)
	}
	t.Logf("%d publications, %d tokens", n, ts.calls.Load())
}

// TestClientTokenFuncFailingRefresh: when TokenFunc fails at a refresh,
// the connection closes at its token's expiry (4001), and the client
// reconnects with TokenFunc's next token; the subscription goes on,
// missing nothing.
func TestClientTokenFuncFailingRefresh(t *testing.T) {
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{ExpiryNotice: time.Second}})
	ctx := sdkContext(t, 60*time.Second)
	// The first refresh (the second call) fails.
	ts := &tokenSource{ta: ta, user: "alice", ttl: 3 * time.Second, fail: func(n int64) bool { return n == 2 }}
	logger, log := sdkLogger()
	c := sdkClient(t, "ws://"+ta.Addr, "", client.Options{TokenFunc: ts.token, Logger: logger})
	pub := sdkClient(t, "http://"+ta.Addr, ta.Token("bob", sdkPerms, time.Hour), client.Options{})

	sub, err := c.Subscribe(ctx, "refresh.y", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	conn := onlyMember(t, ctx, pub, "refresh.y")
	expectWhilePublishing(t, ctx, pub, sub, 6*time.Second)

	if got := onlyMember(t, ctx, pub, "refresh.y"); got == conn {
		t.Errorf("the subscriber is still on connection %s, whose token could not be refreshed", conn)
	}
	out := log.String()
	for _, want := range []string{"the token service is down", "4001", `msg="switchboard: reconnected"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the client's log does not say %q:\n%s", want, out)
		}
	}
}

// TestClientAdminDisconnect: an admin's adminDisconnect (close 4003) ends
// the subscription with ErrDisconnected and the admin's reason, and the
// client does not reconnect, though its TokenFunc would give it a token.
func TestClientAdminDisconnect(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	ts := &tokenSource{ta: ta, user: "mallory", ttl: time.Hour}
	logger, log := sdkLogger()
	c := sdkClient(t, "ws://"+ta.Addr, "", client.Options{TokenFunc: ts.token, Logger: logger})
	admin := sdkClient(t, "http://"+ta.Addr, ta.Token("admin", service.Permissions{Admin: true}, time.Hour), client.Options{})

	sub, err := c.Subscribe(ctx, "cut.x", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	onlyMember(t, ctx, admin, "cut.x")
	var res struct {
		Connections int `json:"connections"`
	}
	if err := admin.Call(ctx, "adminDisconnect", map[string]string{"user": "mallory", "reason": "account suspended"}, &res); err != nil {
		t.Fatalf("adminDisconnect: %v", err)
	}
	if res.Connections != 1 {
		t.Fatalf("adminDisconnect closed %d connections, want 1", res.Connections)
	}

	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := sub.Next(nctx)
	var ce *client.ConnectionError
	switch {
	case err == nil:
		t.Fatalf("Next after adminDisconnect: publication %+v", p)
	case nctx.Err() != nil:
		t.Fatalf("Next after adminDisconnect: still subscribed 5s later (%v)\n%s", err, log)
	case !errors.Is(err, client.ErrDisconnected) || !errors.As(err, &ce):
		t.Fatalf("Next after adminDisconnect: %v (%T), want a *client.ConnectionError wrapping ErrDisconnected", err, err)
	}
	for _, want := range []string{"account suspended", "4003"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Next after adminDisconnect: %q does not say %q", err, want)
		}
	}

	// Long enough for several reconnections at the test's backoff (50 to
	// 200 ms).
	time.Sleep(time.Second)
	if p, err := admin.Presence(ctx, "cut.x"); err != nil || len(p.Members) != 0 {
		t.Errorf("Presence after adminDisconnect: %+v, %v; want no members", p, err)
	}
	if calls := ts.calls.Load(); calls != 1 {
		t.Errorf("TokenFunc was called %d times, want once: the client tried to reconnect", calls)
	}
	if strings.Contains(log.String(), "reconnect") {
		t.Errorf("the client reconnected:\n%s", log)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, client.ErrDisconnected) {
		t.Errorf("Next again: %v, want the same end", err)
	}
}

// TestClientTokenAndTokenFunc: New refuses both.
func TestClientTokenAndTokenFunc(t *testing.T) {
	_, err := client.New("", client.Options{Token: "t", TokenFunc: func(context.Context) (string, error) { return "t", nil }})
	if err == nil || !strings.Contains(err.Error(), "TokenFunc") {
		t.Fatalf("New with Token and TokenFunc: %v, want an error naming TokenFunc", err)
	}
}

// TestClientTokenFuncCalls: calls reuse TokenFunc's last token, and when
// the server refuses it, having expired, get a new one and succeed.
func TestClientTokenFuncCalls(t *testing.T) {
	// No leeway: a token is refused as soon as it has expired.
	ta := servertest.Start(t, server.Config{Tokens: server.Tokens{Leeway: -1}})
	ctx := sdkContext(t, 30*time.Second)
	ts := &tokenSource{ta: ta, user: "alice", ttl: time.Second}
	c := sdkClient(t, "http://"+ta.Addr, "", client.Options{TokenFunc: ts.token})
	for i := range 3 {
		if _, err := c.Publish(ctx, "calls.x", json.RawMessage(sdkData(i)), ""); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	if calls := ts.calls.Load(); calls != 1 {
		t.Fatalf("TokenFunc was called %d times for 3 calls with a live token, want once", calls)
	}
	time.Sleep(2 * time.Second) // past the token's expiry, in whole seconds
	if _, err := c.Publish(ctx, "calls.x", json.RawMessage(sdkData(3)), ""); err != nil {
		t.Fatalf("Publish with an expired token to replace: %v", err)
	}
	if calls := ts.calls.Load(); calls != 2 {
		t.Fatalf("TokenFunc was called %d times, want twice: once more for the refused token", calls)
	}
	// And its failure is the call's.
	ts.fail = func(int64) bool { return true }
	time.Sleep(2 * time.Second)
	if err := c.Call(ctx, "serverPing", nil, nil); err == nil || !strings.Contains(err.Error(), "the token service is down") {
		t.Fatalf("Call with TokenFunc failing: %v, want its error", err)
	}
}
