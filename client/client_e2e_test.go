package client_test

// End-to-end tests of package client against the real server, in process:
// calls over HTTP, subscriptions over a WebSocket, and the promise that a
// Subscription yields every publication once, in offset order, across
// slow reading, recovery limits, trimmed history, removed channels and
// server restarts, or says which ones were lost.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// sdkPerms may publish and subscribe to every channel.
var sdkPerms = service.Permissions{Publish: []string{">"}, Subscribe: []string{">"}}

// sdkClient is a client of url with tok, closed when the test ends. Its
// backoff is short, so that reconnections take little time.
func sdkClient(t *testing.T, url, tok string, opts client.Options) *client.Client {
	t.Helper()
	opts.Token = tok
	if opts.HTTPClient == nil && opts.RootCAs == nil {
		opts.HTTPClient = &http.Client{Timeout: servertest.IOTimeout}
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 50*time.Millisecond, 200*time.Millisecond
	}
	c, err := client.New(url, opts)
	if err != nil {
		t.Fatalf("client.New(%q): %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sdkLogger is a client logger at debug level, and what it wrote.
func sdkLogger() (*slog.Logger, *servertest.Buffer) {
	buf := &servertest.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// sdkResubscriptions counts the subscribes from a position that a client
// logged.
func sdkResubscriptions(log *servertest.Buffer) int {
	return strings.Count(log.String(), `msg="switchboard: subscribed"`)
}

// sdkContext is a context that ends after d, or when the test does.
func sdkContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sdkData is the data of the i-th publication of a test.
func sdkData(i int) string { return fmt.Sprintf(`{"i":%d}`, i) }

// sdkPublish publishes n publications to channel through c, one at a time,
// and returns what each offset holds.
func sdkPublish(t *testing.T, ctx context.Context, c *client.Client, channel string, from, n int) map[uint64]string {
	t.Helper()
	held := map[uint64]string{}
	for i := from; i < from+n; i++ {
		d := sdkData(i)
		p, err := c.Publish(ctx, channel, json.RawMessage(d), "")
		if err != nil {
			t.Fatalf("publish %d to %s: %v", i, channel, err)
		}
		held[p.Offset] = d
	}
	return held
}

// sdkPublishBatches publishes n publications to channel over POST /rpc in
// batches of 100 calls, several batches at once, and returns what each
// offset holds.
func sdkPublishBatches(t *testing.T, addr, tok, channel string, n int) map[uint64]string {
	t.Helper()
	const batch, workers = 100, 4
	hc := &http.Client{Timeout: servertest.IOTimeout}
	var (
		mu   sync.Mutex
		held = map[uint64]string{}
		errs []error
		wg   sync.WaitGroup
	)
	starts := make(chan int)
	for range workers {
		wg.Go(func() {
			for start := range starts {
				if err := sdkPostBatch(hc, addr, tok, channel, start, min(batch, n-start), &mu, held); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for start := 0; start < n; start += batch {
		starts <- start
	}
	close(starts)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("publishing %d to %s: %v", n, channel, errors.Join(errs...))
	}
	if len(held) != n {
		t.Fatalf("published %d to %s, got %d distinct offsets", n, channel, len(held))
	}
	return held
}

func sdkPostBatch(hc *http.Client, addr, tok, channel string, start, n int, mu *sync.Mutex, held map[uint64]string) error {
	type call struct {
		JSONRPC string         `json:"jsonrpc"`
		ID      int            `json:"id"`
		Method  string         `json:"method"`
		Params  map[string]any `json:"params"`
	}
	calls := make([]call, n)
	for k := range calls {
		calls[k] = call{"2.0", start + k, "channelPublish", map[string]any{"channel": channel, "data": json.RawMessage(sdkData(start + k))}}
	}
	body, err := json.Marshal(calls)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/rpc", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var replies []struct {
		ID     int                      `json:"id"`
		Result servertest.PublishResult `json:"result"`
		Error  json.RawMessage          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&replies); err != nil {
		return fmt.Errorf("batch from %d: HTTP %d: %w", start, resp.StatusCode, err)
	}
	if len(replies) != n {
		return fmt.Errorf("batch from %d: %d replies to %d calls", start, len(replies), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range replies {
		if r.Error != nil || r.Result.Offset == 0 {
			return fmt.Errorf("publish %d: %s", r.ID, r.Error)
		}
		held[r.Result.Offset] = sdkData(r.ID)
	}
	return nil
}

// sdkNext returns sub's next publication, failing the test on any error,
// a *LostError included.
func sdkNext(t *testing.T, ctx context.Context, sub *client.Subscription) client.Publication {
	t.Helper()
	p, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next on %s: %v", sub.Channel(), err)
	}
	return p
}

// sdkExpect reads publications from..to from sub, checking each one's
// offset, channel and, where held knows it, data.
func sdkExpect(t *testing.T, ctx context.Context, sub *client.Subscription, from, to uint64, held map[uint64]string) {
	t.Helper()
	for want := from; want <= to; want++ {
		p := sdkNext(t, ctx, sub)
		if p.Offset != want {
			t.Fatalf("Next on %s: offset %d, want %d", sub.Channel(), p.Offset, want)
		}
		if p.Channel != sub.Channel() {
			t.Fatalf("Next on %s: publication of channel %q", sub.Channel(), p.Channel)
		}
		if d, ok := held[want]; ok && string(p.Data) != d {
			t.Fatalf("Next on %s: offset %d holds %s, want %s", sub.Channel(), want, p.Data, d)
		}
	}
}

// sdkLost reads sub's next item, which must be a *LostError.
func sdkLost(t *testing.T, ctx context.Context, sub *client.Subscription) *client.LostError {
	t.Helper()
	p, err := sub.Next(ctx)
	var lost *client.LostError
	if !errors.As(err, &lost) {
		t.Fatalf("Next on %s: %+v, %v; want a *LostError", sub.Channel(), p, err)
	}
	return lost
}

// wantRPCError checks that err is a *client.Error with code.
func wantRPCError(t *testing.T, what string, err error, code int) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %v (%T), want a *client.Error %d", what, err, err, code)
	}
	if e.Code != code || e.Message == "" {
		t.Fatalf("%s: error %d %q, want code %d with a message", what, e.Code, e.Message, code)
	}
	return e
}

// wantUnauthorized checks that err is a *client.ConnectionError wrapping
// client.ErrUnauthorized.
func wantUnauthorized(t *testing.T, what string, err error) {
	t.Helper()
	var ce *client.ConnectionError
	if !errors.As(err, &ce) || !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("%s: %v (%T), want a *client.ConnectionError wrapping ErrUnauthorized", what, err, err)
	}
}

// TestClientCalls: one-shot calls over HTTP, with their typed results.
func TestClientCalls(t *testing.T) {
	ta := servertest.Start(t, server.Config{IdempotencyWindow: time.Minute})
	ctx := sdkContext(t, 30*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	for _, url := range []string{"http://" + ta.Addr, "ws://" + ta.Addr + "/rpc"} {
		c := sdkClient(t, url, tok, client.Options{})
		var ping servertest.PingResult
		if err := c.Call(ctx, "serverPing", nil, &ping); err != nil {
			t.Fatalf("%s: serverPing: %v", url, err)
		}
		if d := time.Since(ping.Time); d < -time.Minute || d > time.Minute {
			t.Fatalf("%s: serverPing: time %v", url, ping.Time)
		}
		var who servertest.WhoamiResult
		if err := c.Call(ctx, "sessionWhoami", nil, &who); err != nil {
			t.Fatalf("%s: sessionWhoami: %v", url, err)
		}
		if who.User != "alice" || who.Transport != "http" {
			t.Fatalf("%s: sessionWhoami: %+v, want alice over http", url, who)
		}
		if err := c.Call(ctx, "serverPing", nil, nil); err != nil {
			t.Fatalf("%s: serverPing with no result: %v", url, err)
		}
	}

	c := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	p1, err := c.Publish(ctx, "calls.x", json.RawMessage(`{"a":1}`), "")
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if p1.Channel != "calls.x" || p1.Offset != 1 || p1.Epoch == "" || p1.Duplicate {
		t.Fatalf("Publish: %+v, want offset 1 of calls.x with an epoch", p1)
	}
	p2, err := c.Publish(ctx, "calls.x", json.RawMessage(`"two"`), "key-2")
	if err != nil || p2.Offset != 2 || p2.Epoch != p1.Epoch || p2.Duplicate {
		t.Fatalf("Publish with a key: %+v, %v; want offset 2", p2, err)
	}
	again, err := c.Publish(ctx, "calls.x", json.RawMessage(`"two again"`), "key-2")
	if err != nil || !again.Duplicate || again.Offset != 2 {
		t.Fatalf("Publish repeating a key: %+v, %v; want a duplicate of offset 2", again, err)
	}

	h, err := c.History(ctx, "calls.x", client.HistoryQuery{})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if h.Channel != "calls.x" || h.Offset != 2 || h.Epoch != p1.Epoch || len(h.Publications) != 2 {
		t.Fatalf("History: %+v", h)
	}
	for i, want := range []string{`{"a":1}`, `"two"`} {
		hp := h.Publications[i]
		if hp.Offset != uint64(i+1) || string(hp.Data) != want || hp.Publisher != "alice" || hp.Channel != "calls.x" || hp.Time.IsZero() {
			t.Fatalf("History: publication %d is %+v, want offset %d holding %s by alice", i, hp, i+1, want)
		}
	}
	h, err = c.History(ctx, "calls.x", client.HistoryQuery{Since: &client.Position{Offset: 1, Epoch: p1.Epoch}, Limit: 5})
	if err != nil || len(h.Publications) != 1 || h.Publications[0].Offset != 2 {
		t.Fatalf("History since 1: %+v, %v; want offset 2 alone", h, err)
	}
	h, err = c.History(ctx, "calls.x", client.HistoryQuery{Limit: 1, NewestFirst: true})
	if err != nil || len(h.Publications) != 1 || h.Publications[0].Offset != 2 {
		t.Fatalf("History newest first: %+v, %v; want offset 2 alone", h, err)
	}
	_, err = c.History(ctx, "calls.x", client.HistoryQuery{Since: &client.Position{Offset: 1, Epoch: "0000000000000000"}})
	wantRPCError(t, "History since another epoch", err, -32009)

	latest, err := c.Latest(ctx, "calls.x")
	if err != nil || latest != (client.Position{Offset: 2, Epoch: p1.Epoch}) {
		t.Fatalf("Latest: %+v, %v; want 2 %s", latest, err, p1.Epoch)
	}
	if latest, err := c.Latest(ctx, "calls.never"); err != nil || latest.Offset != 0 || latest.Epoch == "" {
		t.Fatalf("Latest of a channel never published to: %+v, %v", latest, err)
	}

	pr, err := c.Presence(ctx, "calls.x")
	if err != nil || pr.Channel != "calls.x" || len(pr.Members) != 0 {
		t.Fatalf("Presence with no subscribers: %+v, %v", pr, err)
	}
	bob := sdkClient(t, "ws://"+ta.Addr, ta.Token("bob", sdkPerms, time.Hour), client.Options{})
	if _, err := bob.Subscribe(ctx, "calls.x", nil); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	pr, err = c.Presence(ctx, "calls.x")
	if err != nil || len(pr.Members) != 1 || pr.Members[0].User != "bob" || pr.Members[0].ConnectionID == "" || pr.Members[0].Since.IsZero() {
		t.Fatalf("Presence with bob subscribed: %+v, %v", pr, err)
	}

	methods, err := c.Methods(ctx)
	if err != nil {
		t.Fatalf("Methods: %v", err)
	}
	names := map[string]string{}
	for _, m := range methods {
		names[m.Name] = m.Summary
	}
	for _, want := range []string{"serverPing", "channelPublish", "channelSubscribe", "channelHistory", "channelRemove"} {
		if names[want] == "" {
			t.Errorf("Methods: %s missing or without a summary in %+v", want, methods)
		}
	}
}

// TestClientCallErrors: the server's JSON-RPC errors, refused tokens and
// unreachable servers, each as its own error type.
func TestClientCallErrors(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	reader := sdkClient(t, "http://"+ta.Addr, ta.Token("reader", service.Permissions{Subscribe: []string{">"}}, time.Hour), client.Options{})

	_, err := reader.Publish(ctx, "errs.x", json.RawMessage(`1`), "")
	wantRPCError(t, "Publish without permission", err, -32003)
	err = reader.Call(ctx, "no.such.method", nil, nil)
	wantRPCError(t, "an unknown method", err, -32601)
	err = reader.Call(ctx, "channelHistory", map[string]any{"channel": "errs.x", "nonsense": 1}, nil)
	e := wantRPCError(t, "an unknown param", err, -32602)
	if !strings.Contains(e.Message, "nonsense") {
		t.Errorf("an unknown param: message %q does not name it", e.Message)
	}
	if !strings.Contains(e.Error(), "-32602") {
		t.Errorf("Error() %q does not say the code", e.Error())
	}

	// channelSubscribe needs a WebSocket: Call takes one rather than
	// report -32010.
	var sub servertest.SubscribeResult
	if err := reader.Call(ctx, "channelSubscribe", map[string]any{"channel": "errs.x"}, &sub); err != nil {
		t.Fatalf("Call channelSubscribe: %v", err)
	}
	if sub.Channel != "errs.x" || sub.Epoch == "" {
		t.Fatalf("Call channelSubscribe: %+v", sub)
	}

	// Refused tokens, for calls and for subscriptions.
	for name, tok := range map[string]string{
		"expired":   servertest.ExpiredToken(t, ta.Secret, "alice"),
		"malformed": "not-a-token",
		"none":      "",
	} {
		bad := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
		err := bad.Call(ctx, "serverPing", nil, nil)
		wantUnauthorized(t, name+" token: Call", err)
		var ce *client.ConnectionError
		errors.As(err, &ce)
		if ce.URL != "http://"+ta.Addr+"/rpc" {
			t.Errorf("%s token: ConnectionError.URL %q", name, ce.URL)
		}
		s, err := bad.Subscribe(ctx, "errs.x", nil)
		if s != nil {
			t.Fatalf("%s token: Subscribe returned a subscription", name)
		}
		wantUnauthorized(t, name+" token: Subscribe", err)
		err = bad.Call(ctx, "channelSubscribe", map[string]any{"channel": "errs.x"}, nil)
		wantUnauthorized(t, name+" token: Call over a socket", err)
	}

	// An unreachable server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	c := sdkClient(t, gone, "", client.Options{})
	for what, err := range map[string]error{
		"Call":      c.Call(ctx, "serverPing", nil, nil),
		"Publish":   func() error { _, err := c.Publish(ctx, "errs.x", json.RawMessage(`1`), ""); return err }(),
		"Subscribe": func() error { _, err := c.Subscribe(ctx, "errs.x", nil); return err }(),
	} {
		var ce *client.ConnectionError
		if !errors.As(err, &ce) || errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("%s on an unreachable server: %v (%T), want a *client.ConnectionError", what, err, err)
		}
	}
}

// TestClientSubscribe: live publications, and a subscription from a
// position, which recovers exactly what was published after it.
func TestClientSubscribe(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 60*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	pub := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{})

	sub, err := c.Subscribe(ctx, "sub.live", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if sub.Channel() != "sub.live" {
		t.Fatalf("Channel() = %q", sub.Channel())
	}
	held := sdkPublish(t, ctx, pub, "sub.live", 1, 20)
	for o := uint64(1); o <= 20; o++ {
		p := sdkNext(t, ctx, sub)
		if p.Offset != o || string(p.Data) != held[o] || p.Publisher != "alice" || p.Time.IsZero() {
			t.Fatalf("Next: %+v, want offset %d holding %s by alice", p, o, held[o])
		}
	}

	// From a position: what came after it, then live ones.
	held = sdkPublish(t, ctx, pub, "sub.since", 1, 10)
	latest, err := pub.Latest(ctx, "sub.since")
	if err != nil || latest.Offset != 10 {
		t.Fatalf("Latest: %+v, %v", latest, err)
	}
	since, err := c.Subscribe(ctx, "sub.since", &client.Position{Offset: 4, Epoch: latest.Epoch})
	if err != nil {
		t.Fatalf("Subscribe since 4: %v", err)
	}
	for o, d := range sdkPublish(t, ctx, pub, "sub.since", 11, 5) {
		held[o] = d
	}
	sdkExpect(t, ctx, since, 5, 15, held)
	// Nothing repeated in between: the very next one is the next published.
	held = sdkPublish(t, ctx, pub, "sub.since", 16, 1)
	sdkExpect(t, ctx, since, 16, 16, held)

	// From the latest position: nothing recovered, and nothing lost.
	upToDate, err := c.Subscribe(ctx, "sub.live.2", &client.Position{Offset: 0, Epoch: latestEpoch(t, ctx, pub, "sub.live.2")})
	if err != nil {
		t.Fatalf("Subscribe from the latest position: %v", err)
	}
	held = sdkPublish(t, ctx, pub, "sub.live.2", 1, 2)
	sdkExpect(t, ctx, upToDate, 1, 2, held)
}

func latestEpoch(t *testing.T, ctx context.Context, c *client.Client, channel string) string {
	t.Helper()
	p, err := c.Latest(ctx, channel)
	if err != nil || p.Epoch == "" {
		t.Fatalf("Latest %s: %+v, %v", channel, p, err)
	}
	return p.Epoch
}

// TestClientRecoveryBeyondTheLimit: a subscription from further back than
// the server recovers at once (1000) gets everything, once, in order, with
// nothing said lost: the client comes back for the rest.
func TestClientRecoveryBeyondTheLimit(t *testing.T) {
	const total = 2500
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 90*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	held := sdkPublishBatches(t, ta.Addr, tok, "far.x", total)
	logger, log := sdkLogger()
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{Logger: logger})
	pub := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	sub, err := c.Subscribe(ctx, "far.x", &client.Position{Offset: 0, Epoch: latestEpoch(t, ctx, pub, "far.x")})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	sdkExpect(t, ctx, sub, 1, total, held)
	live := sdkPublish(t, ctx, pub, "far.x", total+1, 1)
	sdkExpect(t, ctx, sub, total+1, total+1, live)
	// One subscribe per 1000 publications, at least.
	if n := sdkResubscriptions(log); n < 3 {
		t.Errorf("%d subscribes from a position for %d publications; want at least 3\n%s", n, total, log)
	}
}

// TestClientSlowReader: a reader with a buffer of 8 that reads slowly while
// 500 publications arrive loses nothing and sees nothing twice.
func TestClientSlowReader(t *testing.T) {
	const total, publishers = 500, 4
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 90*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	logger, log := sdkLogger()
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{Buffer: 8, Logger: logger})
	sub, err := c.Subscribe(ctx, "slow.x", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	pub := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	var (
		mu   sync.Mutex
		held = map[uint64]string{}
		wg   sync.WaitGroup
		errs = make(chan error, publishers)
	)
	for w := range publishers {
		wg.Go(func() {
			for i := w; i < total; i += publishers {
				d := sdkData(i)
				p, err := pub.Publish(ctx, "slow.x", json.RawMessage(d), "")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				held[p.Offset] = d
				mu.Unlock()
			}
		})
	}
	// The reader starts once 100 are out: its buffer has overflowed.
	servertest.Eventually(t, "100 publications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(held) >= 100
	})
	var got []client.Publication
	for len(got) < total {
		p, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d publications: %v", len(got), err)
		}
		got = append(got, p)
		time.Sleep(time.Millisecond) // a slow reader: the buffer of 8 overflows
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}
	for i, p := range got {
		if p.Offset != uint64(i+1) {
			t.Fatalf("publication %d has offset %d; offsets read: %v", i, p.Offset, offsetsOfPubs(got))
		}
		if string(p.Data) != held[p.Offset] {
			t.Fatalf("offset %d holds %s, want %s", p.Offset, p.Data, held[p.Offset])
		}
	}
	// Still live, and nothing extra queued.
	live := sdkPublish(t, ctx, pub, "slow.x", total, 1)
	sdkExpect(t, ctx, sub, total+1, total+1, live)
	if sdkResubscriptions(log) == 0 {
		t.Errorf("the buffer of 8 never overflowed: no subscribe from a position\n%s", log)
	}
}

func offsetsOfPubs(ps []client.Publication) []uint64 {
	var out []uint64
	for _, p := range ps {
		out = append(out, p.Offset)
	}
	return out
}

// TestClientTrimmedHistory: from a position the history no longer reaches,
// Next says which publications were lost, then yields the ones kept.
func TestClientTrimmedHistory(t *testing.T) {
	ta := servertest.Start(t, server.Config{HistorySize: 10})
	ctx := sdkContext(t, 30*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	pub := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	held := sdkPublish(t, ctx, pub, "trimmed.x", 1, 30)
	epoch := latestEpoch(t, ctx, pub, "trimmed.x")
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{})
	sub, err := c.Subscribe(ctx, "trimmed.x", &client.Position{Offset: 5, Epoch: epoch})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	lost := sdkLost(t, ctx, sub)
	want := client.LostError{Channel: "trimmed.x", After: client.Position{Offset: 5, Epoch: epoch}, Resumed: client.Position{Offset: 20, Epoch: epoch}}
	if *lost != want {
		t.Fatalf("LostError %+v, want %+v", *lost, want)
	}
	if msg := lost.Error(); !strings.Contains(msg, "6 to 20") {
		t.Errorf("LostError message %q does not say 6 to 20", msg)
	}
	sdkExpect(t, ctx, sub, 21, 30, held)
	live := sdkPublish(t, ctx, pub, "trimmed.x", 31, 1)
	sdkExpect(t, ctx, sub, 31, 31, live)
}

// TestClientChannelRemoved: removing a channel changes its epoch; the
// subscription says so and goes on in the new epoch from offset 1.
func TestClientChannelRemoved(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	admin := sdkClient(t, "http://"+ta.Addr, ta.Token("root", service.Permissions{Admin: true}, time.Hour), client.Options{})
	pub := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{})
	sub, err := c.Subscribe(ctx, "removed.x", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	held := sdkPublish(t, ctx, pub, "removed.x", 1, 3)
	sdkExpect(t, ctx, sub, 1, 3, held)
	old := latestEpoch(t, ctx, pub, "removed.x")

	var rm struct {
		Channel string `json:"channel"`
		Offset  uint64 `json:"offset"`
		Epoch   string `json:"epoch"`
	}
	if err := admin.Call(ctx, "channelRemove", map[string]any{"channel": "removed.x"}, &rm); err != nil {
		t.Fatalf("channelRemove: %v", err)
	}
	if rm.Channel != "removed.x" || rm.Offset != 0 || rm.Epoch == "" || rm.Epoch == old {
		t.Fatalf("channelRemove: %+v (old epoch %s)", rm, old)
	}
	lost := sdkLost(t, ctx, sub)
	want := client.LostError{Channel: "removed.x", After: client.Position{Offset: 3, Epoch: old}, Resumed: client.Position{Offset: 0, Epoch: rm.Epoch}}
	if *lost != want {
		t.Fatalf("LostError %+v, want %+v", *lost, want)
	}
	held = sdkPublish(t, ctx, pub, "removed.x", 4, 3)
	for o := range held {
		if o > 3 {
			t.Fatalf("publications after the removal got offsets %v, want 1..3", held)
		}
	}
	sdkExpect(t, ctx, sub, 1, 3, held)
}

// TestClientSubscribeRefusals: a forbidden subscription, and a second one
// to the same channel.
func TestClientSubscribeRefusals(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	c := sdkClient(t, "ws://"+ta.Addr, ta.Token("alice", service.Permissions{Subscribe: []string{"open.>"}}, time.Hour), client.Options{})

	s, err := c.Subscribe(ctx, "secret.x", nil)
	if s != nil {
		t.Fatal("a forbidden Subscribe returned a subscription")
	}
	wantRPCError(t, "a forbidden Subscribe", err, -32003)

	// The client is fine for others, on the same socket.
	open, err := c.Subscribe(ctx, "open.x", nil)
	if err != nil {
		t.Fatalf("Subscribe after a refusal: %v", err)
	}
	if _, err := c.Subscribe(ctx, "open.x", nil); err == nil || !strings.Contains(err.Error(), "open.x") {
		t.Fatalf("a second Subscribe to open.x: %v, want an error naming it", err)
	}
	// The first is still there, and still the only one on the server.
	pr, err := c.Presence(ctx, "open.x")
	if err != nil || len(pr.Members) != 1 {
		t.Fatalf("Presence: %+v, %v; want one member", pr, err)
	}
	if err := open.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := open.Next(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	servertest.Eventually(t, "the closed subscription to leave the channel", func() bool {
		pr, err := c.Presence(ctx, "open.x")
		return err == nil && len(pr.Members) == 0
	})
	// Once closed, the channel may be subscribed to again.
	again, err := c.Subscribe(ctx, "open.x", nil)
	if err != nil {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := open.Close(); err != nil {
		t.Fatalf("closing twice: %v", err)
	}
	pr, err = c.Presence(ctx, "open.x")
	if err != nil || len(pr.Members) != 1 {
		t.Fatalf("Presence after closing the old subscription again: %+v, %v; want the new one", pr, err)
	}
	if _, err := again.Next(sdkContext(t, 50*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on the new subscription after closing the old one again: %v, want it still waiting", err)
	}
}

// TestClientClose: closing the client ends every subscription's Next with
// ErrClosed, a Next already waiting included, and refuses new ones.
func TestClientClose(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{})
	a, err := c.Subscribe(ctx, "close.a", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Subscribe(ctx, "close.b", nil)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := a.Next(ctx)
		waiting <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-waiting:
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("a waiting Next: %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("a waiting Next did not return when the client was closed")
	}
	if _, err := b.Next(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after the client closed: %v, want ErrClosed", err)
	}
	if _, err := c.Subscribe(ctx, "close.c", nil); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	pub := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	servertest.Eventually(t, "the closed client's subscriptions to leave", func() bool {
		pr, err := pub.Presence(ctx, "close.a")
		return err == nil && len(pr.Members) == 0
	})
}

// TestClientCallAfterClose: ErrClosed "is returned by calls on a closed
// Client", says its doc.
func TestClientCallAfterClose(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	c := sdkClient(t, "http://"+ta.Addr, ta.Token("alice", sdkPerms, time.Hour), client.Options{})
	c.Close()
	if err := c.Call(ctx, "serverPing", nil, nil); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Call on a closed client: %v, want ErrClosed", err)
	}
	if _, err := c.Publish(ctx, "closed.x", json.RawMessage(`1`), ""); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Publish on a closed client: %v, want ErrClosed", err)
	}
}

// TestClientCallLeavesSubscriptionsAlone: Call of a WebSocket-only method
// on a client that has subscriptions must not change them behind their
// back: were Call to use the subscriptions' socket, channelSubscribe
// through Call would make a later Subscribe to that channel fail with
// -32009, and channelUnsubscribe through Call would silently stop a
// Subscription for good.
func TestClientCallLeavesSubscriptionsAlone(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	tok := ta.Token("alice", sdkPerms, time.Hour)
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{})
	pub := sdkClient(t, "http://"+ta.Addr, tok, client.Options{})
	a, err := c.Subscribe(ctx, "alone.a", nil)
	if err != nil {
		t.Fatalf("Subscribe alone.a: %v", err)
	}

	t.Run("channelSubscribe", func(t *testing.T) {
		if err := c.Call(ctx, "channelSubscribe", map[string]any{"channel": "alone.b"}, nil); err != nil {
			t.Fatalf("Call channelSubscribe: %v", err)
		}
		b, err := c.Subscribe(ctx, "alone.b", nil)
		if err != nil {
			t.Fatalf("Subscribe alone.b after a Call of channelSubscribe: %v", err)
		}
		held := sdkPublish(t, ctx, pub, "alone.b", 1, 1)
		sdkExpect(t, sdkContext(t, 5*time.Second), b, 1, 1, held)
	})

	t.Run("channelUnsubscribe", func(t *testing.T) {
		if err := c.Call(ctx, "channelUnsubscribe", map[string]any{"channel": "alone.a"}, nil); err != nil {
			t.Logf("Call channelUnsubscribe: %v", err)
		}
		held := sdkPublish(t, ctx, pub, "alone.a", 1, 1)
		p, err := a.Next(sdkContext(t, 5*time.Second))
		if err != nil || p.Offset != 1 || string(p.Data) != held[1] {
			t.Fatalf("Subscription alone.a after a Call of channelUnsubscribe: Next %+v, %v; want publication 1 (or the subscription ended with an error)", p, err)
		}
	})
}

// TestClientTokenExpiry: when the token of a subscription's connection
// expires, the server closes it with 4001 and Next reports the refused
// token rather than reconnect forever.
func TestClientTokenExpiry(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 30*time.Second)
	tok := ta.Token("alice", sdkPerms, 3*time.Second)
	c := sdkClient(t, "ws://"+ta.Addr, tok, client.Options{})
	sub, err := c.Subscribe(ctx, "expiry.x", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	var pubErr error
	for {
		p, err := sub.Next(ctx)
		if err != nil {
			pubErr = err
			break
		}
		t.Fatalf("Next: publication %+v on a channel no one publishes to", p)
	}
	if errors.Is(pubErr, context.DeadlineExceeded) {
		t.Fatalf("Next: still waiting 30s after the token expired")
	}
	wantUnauthorized(t, "Next after the token expired", pubErr)
	if !strings.Contains(pubErr.Error(), "4001") {
		t.Errorf("Next after the token expired: %q does not say 4001", pubErr)
	}
	// The subscription is over: the client does not hold it any more.
	if _, err := sub.Next(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("Next again: %v, want the same end", err)
	}
}

// TestClientSurvivesRestarts: the server restarts under a subscription,
// twice, and publications are made while it is down for the client (right
// after it comes back, before the client has reconnected): Next yields
// every one once, in order, and nothing is said lost.
func TestClientSurvivesRestarts(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	ctx := sdkContext(t, 60*time.Second)
	tok := srv.Token("alice", sdkPerms, time.Hour)
	logger, log := sdkLogger()
	opts := client.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: logger}
	c := sdkClient(t, "ws://"+srv.Addr, tok, opts)
	// The publisher makes a new connection for each call: no idle
	// connection to a stopped server is reused.
	pub := sdkClient(t, "http://"+srv.Addr, tok, client.Options{HTTPClient: &http.Client{
		Timeout:   servertest.IOTimeout,
		Transport: &http.Transport{DisableKeepAlives: true},
	}})
	sub, err := c.Subscribe(ctx, "restart.x", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	// Another client, whose reader's buffer of 4 is full and whose
	// subscription is broken off when the server goes.
	slowOpts := opts
	slowOpts.Logger, slowOpts.Buffer = nil, 4
	slow, err := sdkClient(t, "ws://"+srv.Addr, tok, slowOpts).Subscribe(ctx, "restart.x", nil)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	held := sdkPublish(t, ctx, pub, "restart.x", 1, 5)
	sdkExpect(t, ctx, sub, 1, 5, held)
	sdkExpect(t, ctx, slow, 1, 5, held)
	epoch := latestEpoch(t, ctx, pub, "restart.x")

	next := uint64(6)
	for round := range 2 {
		// Some published before the restart and not read yet, some right
		// after it.
		for o, d := range sdkPublish(t, ctx, pub, "restart.x", int(next), 5) {
			held[o] = d
		}
		srv.Stop()
		srv.Restart()
		for o, d := range sdkPublish(t, ctx, pub, "restart.x", int(next)+5, 10) {
			held[o] = d
		}
		sdkExpect(t, ctx, sub, next, next+14, held)
		sdkExpect(t, ctx, slow, next, next+14, held)
		next += 15
		// Live again, on the new connection.
		for o, d := range sdkPublish(t, ctx, pub, "restart.x", int(next), 1) {
			held[o] = d
		}
		sdkExpect(t, ctx, sub, next, next, held)
		sdkExpect(t, ctx, slow, next, next, held)
		next++
		if e := latestEpoch(t, ctx, pub, "restart.x"); e != epoch {
			t.Fatalf("round %d: the epoch changed across a restart: %s, was %s", round, e, epoch)
		}
	}
	if n := strings.Count(log.String(), `msg="switchboard: reconnected"`); n < 2 {
		t.Errorf("the client reconnected %d times over 2 restarts\n%s", n, log)
	}
}

// TestClientGivesUpOnASilentServer: a server that takes the connection and
// never answers (a proxy whose backend is down) fails calls and
// subscriptions after Options.Timeout instead of holding them forever.
func TestClientGivesUpOnASilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held <- conn // never read, never answered
		}
	}()
	defer func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	// The default HTTP client, which has no timeout of its own; the
	// context is the test's bound, which Options.Timeout must beat.
	c, err := client.New("ws://"+ln.Addr().String(), client.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var connErr *client.ConnectionError
	ctx := sdkContext(t, 5*time.Second)
	if err := c.Call(ctx, "serverPing", nil, nil); !errors.As(err, &connErr) || ctx.Err() != nil {
		t.Errorf("Call to a silent server: %v (context: %v); want a ConnectionError before the context's end", err, ctx.Err())
	}
	ctx = sdkContext(t, 5*time.Second)
	if _, err := c.Subscribe(ctx, "silent", nil); !errors.As(err, &connErr) || ctx.Err() != nil {
		t.Errorf("Subscribe to a silent server: %v (context: %v); want a ConnectionError before the context's end", err, ctx.Err())
	}
}
