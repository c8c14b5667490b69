package main

// Durability tests of the built binary: an acknowledged publication
// survives SIGKILL and restarts with its offset, data and epoch, and a
// lost history shows as a new epoch.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// startDurable starts the binary on dir with secret and no history limits,
// so that nothing these tests check is trimmed.
func startDurable(t *testing.T, dir, secret string, extra ...string) *serverProc {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--data", dir, "--token-secret", secret,
		"--history-size", "0", "--history-ttl", "0"}, extra...)
	return startServer(t, nil, args...)
}

// durableToken is a token of user "durable", signed with secret, that may
// publish and subscribe to every channel.
func durableToken(t *testing.T, secret string) string {
	t.Helper()
	return tokenOf(t, secret, "durable", service.Permissions{Publish: []string{">"}, Subscribe: []string{">"}})
}

// tokenOf is a token of user with perms, signed with secret, valid for
// an hour.
func tokenOf(t *testing.T, secret, user string, perms service.Permissions) string {
	t.Helper()
	a, err := auth.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Issue(user, perms, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// readHistory reads channel's whole history a page at a time, each page
// since the previous one's last offset, and returns it with the channel's
// offset and epoch.
func readHistory(t *testing.T, c *servertest.Server, tok, channel string) (pubs []servertest.PublicationNote, offset uint64, epoch string) {
	t.Helper()
	params := map[string]any{"channel": channel, "limit": 1000}
	for page := 0; page < 100; page++ {
		r, _ := c.Call(servertest.Bearer(tok), "channelHistory", params)
		var h servertest.HistoryResult
		r.Decode(t, &h)
		if page > 0 && h.Epoch != epoch {
			t.Fatalf("history of %s: epoch changed from %q to %q between pages", channel, epoch, h.Epoch)
		}
		epoch, offset = h.Epoch, h.Offset
		if len(h.Publications) == 0 {
			return pubs, offset, epoch
		}
		pubs = append(pubs, h.Publications...)
		params["since"] = map[string]any{"offset": h.Publications[len(h.Publications)-1].Offset, "epoch": h.Epoch}
	}
	t.Fatalf("history of %s does not end", channel)
	return nil, 0, ""
}

// ledger records what publishers sent and what was acknowledged, for
// checkLedger.
type ledger struct {
	t       *testing.T
	mu      sync.Mutex
	sent    map[string]string            // data → channel, for every publication sent
	acked   map[string]map[uint64]string // channel → offset → data
	epochs  map[string]string            // channel → epoch of its acknowledgements
	twice   map[string]int               // channel → offsets acknowledged twice
	written atomic.Int64                 // publications handed to the network
	acks    atomic.Int64                 // successful replies

	// This round's kill: on reading the threshold-th reply, kill is
	// called and enough closed.
	replies   atomic.Int64
	threshold int64
	kill      func()
	enough    chan struct{}
}

// replied counts a reply just read, before it is decoded, and on the
// threshold-th kills the server at once: were publications acknowledged
// before their commit, the one just read would most likely be lost.
func (l *ledger) replied() {
	if l.replies.Add(1) == l.threshold {
		l.kill()
		close(l.enough)
	}
}

// brief is data without the padding of wsPublish, for messages.
func brief(data string) string {
	if i := strings.Index(data, `,"pad":`); i >= 0 {
		return data[:i] + ",…}"
	}
	return data
}

func (l *ledger) send(channel, data string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[data] = channel
}

// ack records the server's reply to the publication of data to channel.
func (l *ledger) ack(channel, data string, r servertest.Reply) {
	var res servertest.PublishResult
	if r.Error != nil || json.Unmarshal(r.Result, &res) != nil {
		l.t.Errorf("publish to %s: reply %+v %s", channel, r.Error, r.Result)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if res.Channel != channel || res.Offset == 0 || res.Duplicate {
		l.t.Errorf("publish to %s: result %+v", channel, res)
	}
	if prev, ok := l.acked[channel][res.Offset]; ok {
		if l.twice[channel]++; l.twice[channel] == 1 {
			l.t.Errorf("%s: offset %d acknowledged for %s, then again for %s: the first was lost", channel, res.Offset, brief(prev), brief(data))
		}
	}
	l.acked[channel][res.Offset] = data
	if e, ok := l.epochs[channel]; ok && e != res.Epoch {
		l.t.Errorf("%s: acknowledged in epochs %q and %q", channel, e, res.Epoch)
	}
	l.epochs[channel] = res.Epoch
	l.acks.Add(1)
}

// wsWindow is how many publications a WebSocket publisher keeps
// unanswered: few enough that replies are read as the server sends them.
const wsWindow = 32

// wsPublish pipelines count publications on ws, recording them in l,
// until every one is answered or the connection fails.
func wsPublish(l *ledger, ws *websocket.Conn, conn, count int, channels []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*servertest.WaitTimeout)
	defer cancel()
	type pending struct{ channel, data string }
	waiting := map[string]pending{}  // by id; only the reader uses it once it runs
	pad := strings.Repeat("x", 4096) // so that commits take a while, as real ones do
	bodies := make([][]byte, count)
	for seq := range count {
		channel := channels[(conn+seq)%len(channels)]
		data := fmt.Sprintf(`{"via":"ws","conn":%d,"seq":%d,"text":"caf\u00e9 \"%d\" é","pad":"%s"}`, conn, seq, seq, pad)
		id := servertest.NextID()
		bodies[seq] = fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"channelPublish","params":{"channel":%q,"data":%s}}`, id, channel, data)
		waiting[fmt.Sprint(id)] = pending{channel, data}
		l.send(channel, data)
	}
	window := make(chan struct{}, wsWindow)
	done := make(chan struct{})
	go func() { // the reader
		defer close(done)
		for range count {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return // the server was killed
			}
			l.replied()
			var r servertest.Reply
			if err := json.Unmarshal(b, &r); err != nil {
				l.t.Errorf("conn %d: frame %s: %v", conn, b, err)
				return
			}
			p, ok := waiting[string(r.ID)]
			delete(waiting, string(r.ID))
			if !ok {
				l.t.Errorf("conn %d: reply to unknown id %s", conn, r.ID)
				return
			}
			l.ack(p.channel, p.data, r)
			<-window
		}
	}()
writing:
	for _, body := range bodies {
		select {
		case window <- struct{}{}:
		case <-done:
			break writing
		}
		if ws.Write(ctx, websocket.MessageText, body) != nil {
			break // the server was killed
		}
		l.written.Add(1)
	}
	<-done
	ws.CloseNow()
}

// httpPublish publishes count publications one after another over POST
// /rpc until the server stops answering.
func httpPublish(l *ledger, hc *http.Client, base, tok string, worker, count int, channels []string) {
	for seq := range count {
		channel := channels[(worker+seq)%len(channels)]
		data := fmt.Sprintf(`{"via":"http","worker":%d,"seq":%d}`, worker, seq)
		body, id := servertest.Request("channelPublish", map[string]any{"channel": channel, "data": json.RawMessage(data)})
		req, _ := http.NewRequest(http.MethodPost, base+"/rpc", bytes.NewReader(body))
		req.Header = http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + tok}}
		l.send(channel, data)
		l.written.Add(1)
		resp, err := hc.Do(req)
		if err != nil {
			return // the server was killed
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return
		}
		l.replied()
		var r servertest.Reply
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil || string(r.ID) != fmt.Sprint(id) {
			l.t.Errorf("HTTP publish: status %d, body %s", resp.StatusCode, b)
			return
		}
		l.ack(channel, data, r)
	}
}

// TestSIGKILLLosesNoAcknowledgedPublication kills the server twice while
// thousands of publications are in flight, and checks after a restart that
// every acknowledged one is in the history, at its offset, with its data,
// in its epoch, and that the unacknowledged ones left no holes.
func TestSIGKILLLosesNoAcknowledgedPublication(t *testing.T) {
	channels := []string{"durable.a", "durable.b", "durable.c"}
	dir, secret := t.TempDir(), servertest.RandomSecret()
	tok := durableToken(t, secret)
	l := newLedger(t, channels)
	// The second round publishes on top of what the first one's crash
	// left, and gives a lost acknowledgement a second chance to show.
	for round := range 2 {
		s := startDurable(t, dir, secret, "--max-concurrent-calls", "64")
		if killWhilePublishing(t, l, s, tok, round, channels); t.Failed() {
			return
		}
	}

	s := startDurable(t, dir, secret)
	extra := checkLedger(t, l, s.client(), tok, channels)
	t.Logf("%d publications written, %d acknowledged, %d more kept", l.written.Load(), l.acks.Load(), extra)
}

// newLedger is an empty ledger of publications to channels.
func newLedger(t *testing.T, channels []string) *ledger {
	l := &ledger{t: t, sent: map[string]string{}, acked: map[string]map[uint64]string{}, epochs: map[string]string{}, twice: map[string]int{}}
	for _, ch := range channels {
		l.acked[ch] = map[uint64]string{}
	}
	return l
}

// checkLedger reads the channels' history through c and checks that
// every acknowledged publication is in it, at its offset, with its data,
// in its epoch, and that the unacknowledged ones left no holes. It then
// checks that each channel goes on from where its history ends, in its
// epoch, with a publication it adds to l. It returns how many
// publications were kept without an acknowledgement.
func checkLedger(t *testing.T, l *ledger, c *servertest.Server, tok string, channels []string) (extra int) {
	t.Helper()
	for _, ch := range channels {
		pubs, offset, epoch := readHistory(t, c, tok, ch)
		if epoch != l.epochs[ch] {
			t.Errorf("%s: history in epoch %q, but publications were acknowledged in %q", ch, epoch, l.epochs[ch])
		}
		if offset != uint64(len(pubs)) {
			t.Errorf("%s: offset %d, but the history holds %d publications", ch, offset, len(pubs))
		}
		seen := map[string]bool{}
		for i, p := range pubs {
			if p.Offset != uint64(i+1) {
				t.Fatalf("%s: publication %d of the history has offset %d: the history has a hole or is out of order", ch, i+1, p.Offset)
			}
			if d := string(p.Data); p.Channel != ch || p.Publisher != "durable" || l.sent[d] != ch || seen[d] {
				t.Errorf("%s: offset %d is %s by %q in %s: not sent to this channel, or there twice", ch, p.Offset, brief(d), p.Publisher, p.Channel)
			}
			seen[string(p.Data)] = true
		}
		lost := 0
		for off, d := range l.acked[ch] {
			switch {
			case off > uint64(len(pubs)):
				lost++
			case string(pubs[off-1].Data) != d:
				t.Errorf("%s: offset %d holds %s, but was acknowledged for %s", ch, off, brief(string(pubs[off-1].Data)), brief(d))
			}
		}
		if lost > 0 {
			t.Errorf("%s: %d acknowledged publications lost: the history ends at %d", ch, lost, len(pubs))
		}
		extra += len(pubs) - len(l.acked[ch])

		// Recorded, so that a later check through another node counts it.
		data := fmt.Sprintf(`{"after":%d}`, servertest.NextID())
		l.send(ch, data)
		r, _ := c.Call(servertest.Bearer(tok), "channelPublish", map[string]any{"channel": ch, "data": json.RawMessage(data)})
		var res servertest.PublishResult
		r.Decode(t, &res)
		if res.Offset != offset+1 || res.Epoch != l.epochs[ch] {
			t.Errorf("%s: publish after the check got %d in %q, want %d in %q", ch, res.Offset, res.Epoch, offset+1, l.epochs[ch])
		}
		l.ack(ch, data, r)
	}
	return extra
}

// killWhilePublishing publishes to channels through s from 8 WebSockets
// and 2 HTTP clients, and SIGKILLs s on the reply that makes a third of
// what they would publish.
func killWhilePublishing(t *testing.T, l *ledger, s *serverProc, tok string, round int, channels []string) {
	t.Helper()
	const (
		conns, perConn       = 8, 500
		httpWorkers, perHTTP = 2, 250
	)
	l.replies.Store(0)
	l.threshold = (conns*perConn + httpWorkers*perHTTP) / 3
	l.kill = func() { s.cmd.Process.Kill() }
	l.enough = make(chan struct{})
	written, acks := l.written.Load(), l.acks.Load()

	c := s.client()
	sockets := make([]*websocket.Conn, conns)
	for i := range sockets {
		sockets[i] = c.Dial(servertest.Bearer(tok))
	}
	var wg sync.WaitGroup
	for i, ws := range sockets {
		wg.Go(func() { wsPublish(l, ws, round*100+i, perConn, channels) })
	}
	hc := &http.Client{Timeout: servertest.WaitTimeout, Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	for w := range httpWorkers {
		wg.Go(func() { httpPublish(l, hc, s.base, tok, round*100+w, perHTTP, channels) })
	}
	select {
	case <-l.enough:
	case <-s.exited: // killed just now, or crashed
	case <-time.After(servertest.WaitTimeout):
	}
	s.cmd.Process.Kill() // in case it was not killed yet
	s.wait()
	wg.Wait()
	if n := l.replies.Load(); n < l.threshold {
		t.Fatalf("round %d: serve ended (%v) or stalled after %d of %d replies", round, s.cmd.ProcessState, n, l.threshold)
	}
	if st := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !st.Signaled() || st.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: serve ended with %v, not by SIGKILL", round, s.cmd.ProcessState)
	}
	for ch, n := range l.twice {
		t.Errorf("%s: %d offsets acknowledged twice", ch, n)
	}
	if w, a := l.written.Load()-written, l.acks.Load()-acks; a >= w {
		t.Fatalf("round %d: all %d publications written were answered before the kill: nothing was in flight", round, w)
	}
}

// TestRecoveryAcrossRestart checks that a subscriber can recover, from
// its last offset and epoch, what it missed while the server restarted.
func TestRecoveryAcrossRestart(t *testing.T) {
	const channel = "recover.room"
	dir, secret := t.TempDir(), servertest.RandomSecret()
	tok := durableToken(t, secret)
	data := func(i int) string { return fmt.Sprintf(`{"n":%d,"text":"message %d"}`, i, i) }

	s1 := startDurable(t, dir, secret)
	c1 := s1.client()
	sub := c1.HubClient(tok)
	first := sub.Subscribe(map[string]any{"channel": channel})
	epoch := first.Epoch
	if first.Offset != 0 || epoch == "" {
		t.Fatalf("new channel: subscribed at %d in %q", first.Offset, epoch)
	}
	for i := 1; i <= 5; i++ {
		if res := servertest.PublishHTTP(t, c1, tok, channel, data(i)); res.Offset != uint64(i) || res.Epoch != epoch {
			t.Fatalf("publish %d: offset %d epoch %q", i, res.Offset, res.Epoch)
		}
	}
	for i := 1; i <= 5; i++ {
		if p := sub.NextPublication(); p.Offset != uint64(i) || string(p.Data) != data(i) {
			t.Fatalf("publication %d: offset %d data %s", i, p.Offset, p.Data)
		}
	}
	const last = 5 // where the subscriber left off
	if code := s1.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("first server exited %d", code)
	}

	s2 := startDurable(t, dir, secret)
	c2 := s2.client()
	for i := 6; i <= 12; i++ {
		if res := servertest.PublishHTTP(t, c2, tok, channel, data(i)); res.Offset != uint64(i) || res.Epoch != epoch {
			t.Fatalf("publish %d after the restart: offset %d epoch %q, want %d %q", i, res.Offset, res.Epoch, i, epoch)
		}
	}
	sub2 := c2.HubClient(tok)
	got := sub2.Subscribe(map[string]any{"channel": channel, "since": map[string]any{"offset": last, "epoch": epoch}})
	if !got.Recovered || got.Epoch != epoch || got.Offset != 12 {
		t.Errorf("subscribe since %d: recovered %v, offset %d, epoch %q; want recovered at 12 in %q", last, got.Recovered, got.Offset, got.Epoch, epoch)
	}
	if len(got.Publications) != 7 {
		t.Fatalf("recovered %d publications, want the 7 missed (6..12)", len(got.Publications))
	}
	for i, p := range got.Publications {
		if want := i + 6; p.Offset != uint64(want) || string(p.Data) != data(want) || p.Channel != channel {
			t.Errorf("recovered publication %d: %s offset %d data %s; want offset %d data %s", i, p.Channel, p.Offset, p.Data, want, data(want))
		}
	}
	// Live publications follow the recovered ones.
	servertest.PublishHTTP(t, c2, tok, channel, data(13))
	if p := sub2.NextPublication(); p.Offset != 13 || string(p.Data) != data(13) {
		t.Errorf("live publication after recovery: offset %d data %s, want 13 %s", p.Offset, p.Data, data(13))
	}
}

// TestLostHistoryChangesEpoch deletes the history database between runs:
// the channel starts again in a new epoch, and old positions recover
// nothing.
func TestLostHistoryChangesEpoch(t *testing.T) {
	const channel = "lost.room"
	dir, secret := t.TempDir(), servertest.RandomSecret()
	tok := durableToken(t, secret)

	s1 := startDurable(t, dir, secret)
	c1 := s1.client()
	var old servertest.PublishResult
	for i := 1; i <= 3; i++ {
		old = servertest.PublishHTTP(t, c1, tok, channel, fmt.Sprintf(`{"n":%d}`, i))
	}
	if old.Offset != 3 || old.Epoch == "" {
		t.Fatalf("third publication: %+v", old)
	}
	if code := s1.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("first server exited %d", code)
	}
	for _, f := range []string{"hub.db", "hub.db-wal", "hub.db-shm"} { // hub.db must be there
		if err := os.Remove(filepath.Join(dir, f)); err != nil && (f == "hub.db" || !errors.Is(err, os.ErrNotExist)) {
			t.Fatalf("remove the history: %v", err)
		}
	}

	s2 := startDurable(t, dir, secret)
	c2 := s2.client()
	pubs, offset, epoch := readHistory(t, c2, tok, channel)
	if epoch == "" || epoch == old.Epoch || offset != 0 || len(pubs) != 0 {
		t.Fatalf("after losing the history: epoch %q (was %q), offset %d, %d publications; want a new epoch at 0, empty", epoch, old.Epoch, offset, len(pubs))
	}
	since := map[string]any{"offset": old.Offset, "epoch": old.Epoch}
	r, _ := c2.Call(servertest.Bearer(tok), "channelHistory", map[string]any{"channel": channel, "since": since})
	if r.Error == nil || r.Error.Code != rpc.CodeConflict {
		t.Errorf("history since the lost epoch: %+v %s, want error %d", r.Error, r.Result, rpc.CodeConflict)
	}
	sub := c2.HubClient(tok)
	got := sub.Subscribe(map[string]any{"channel": channel, "since": since})
	if got.Recovered || got.Epoch != epoch || got.Offset != 0 || len(got.Publications) != 0 {
		t.Errorf("subscribe since the lost epoch: recovered %v, offset %d, epoch %q, %d publications; want not recovered, at 0 in %q",
			got.Recovered, got.Offset, got.Epoch, len(got.Publications), epoch)
	}
	if res := servertest.PublishHTTP(t, c2, tok, channel, `{"n":1}`); res.Offset != 1 || res.Epoch != epoch {
		t.Errorf("first publication in the new history: offset %d epoch %q, want 1 %q", res.Offset, res.Epoch, epoch)
	}
	if p := sub.NextPublication(); p.Offset != 1 {
		t.Errorf("live publication in the new epoch: offset %d, want 1", p.Offset)
	}
}
