package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/servertest"
)

// linesInBatch is how many publications each batch of these tests holds.
const linesInBatch = 50

// aBatch is one batch of publications: its body, and each call's id,
// channel and data in the batch's order.
type aBatch struct {
	body     []byte
	ids      []string
	channels []string
	data     []string
}

// newBatch makes the seq-th batch of publisher to channels, recording
// what it sends in l.
func newBatch(l *ledger, via string, publisher, seq int, channels []string) aBatch {
	var b aBatch
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range linesInBatch {
		channel := channels[(publisher+seq+i)%len(channels)]
		data := fmt.Sprintf(`{"via":%q,"publisher":%d,"batch":%d,"call":%d}`, via, publisher, seq, i)
		id := fmt.Sprint(servertest.NextID())
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"jsonrpc":"2.0","id":%s,"method":"channelPublish","params":{"channel":%q,"data":%s}}`, id, channel, data)
		b.ids, b.channels, b.data = append(b.ids, id), append(b.channels, channel), append(b.data, data)
		l.send(channel, data)
	}
	buf.WriteByte(']')
	b.body = buf.Bytes()
	return b
}

// acked records the replies to b in l, and checks that each channel's
// offsets rise along the batch's order.
func (b aBatch) acked(l *ledger, reply []byte) {
	var replies []servertest.Reply
	if err := json.Unmarshal(reply, &replies); err != nil || len(replies) != len(b.ids) {
		l.t.Errorf("batch reply of %d bytes, %d replies for %d calls: %v", len(reply), len(replies), len(b.ids), err)
		return
	}
	byID := map[string]servertest.Reply{}
	for _, r := range replies {
		byID[string(r.ID)] = r
		l.replied()
	}
	last := map[string]uint64{}
	for i, id := range b.ids {
		r, ok := byID[id]
		if !ok {
			l.t.Errorf("batch reply has no reply to id %s", id)
			return
		}
		l.ack(b.channels[i], b.data[i], r)
		var res servertest.PublishResult
		if json.Unmarshal(r.Result, &res) == nil {
			if res.Offset <= last[b.channels[i]] {
				l.t.Errorf("%s: call %d of a batch got offset %d, after %d for an earlier call", b.channels[i], i, res.Offset, last[b.channels[i]])
			}
			last[b.channels[i]] = res.Offset
		}
	}
}

// httpBatches posts count batches, one after another, until the server
// stops answering.
func httpBatches(l *ledger, hc *http.Client, base, tok string, publisher, count int, channels []string) {
	for seq := range count {
		b := newBatch(l, "http", publisher, seq, channels)
		req, _ := http.NewRequest(http.MethodPost, base+"/rpc", bytes.NewReader(b.body))
		req.Header = http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + tok}}
		l.written.Add(linesInBatch)
		resp, err := hc.Do(req)
		if err != nil {
			return // the server was killed
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return
		}
		b.acked(l, body)
	}
}

// wsBatches sends count batches on ws, one after another, until the
// server stops answering.
func wsBatches(l *ledger, ws *websocket.Conn, publisher, count int, channels []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*servertest.WaitTimeout)
	defer cancel()
	defer ws.CloseNow()
	for seq := range count {
		b := newBatch(l, "ws", publisher, seq, channels)
		if ws.Write(ctx, websocket.MessageText, b.body) != nil {
			return // the server was killed
		}
		l.written.Add(linesInBatch)
		_, reply, err := ws.Read(ctx)
		if err != nil {
			return
		}
		b.acked(l, reply)
	}
}

// TestSIGKILLDuringBatchedPublishing kills the server while batches of
// publications are in flight over HTTP and WebSocket, twice, and checks
// after a restart that every acknowledged publication is in the history
// at its offset, that a batch's offsets rose along its order, and that
// what was not acknowledged left no holes.
func TestSIGKILLDuringBatchedPublishing(t *testing.T) {
	channels := []string{"batched.a", "batched.b", "batched.c"}
	dir, secret := t.TempDir(), servertest.RandomSecret()
	tok := durableToken(t, secret)
	l := newLedger(t, channels)
	const publishers, batches = 3, 40 // per transport, and per publisher
	for round := range 2 {
		s := startDurable(t, dir, secret)
		l.replies.Store(0)
		l.threshold = 2 * publishers * batches * linesInBatch / 3
		l.kill = func() { s.cmd.Process.Kill() }
		l.enough = make(chan struct{})
		written, acks := l.written.Load(), l.acks.Load()
		c := s.client()
		hc := &http.Client{Timeout: servertest.WaitTimeout, Transport: &http.Transport{}}
		var wg sync.WaitGroup
		for p := range publishers {
			ws := c.Dial(servertest.Bearer(tok))
			wg.Go(func() { wsBatches(l, ws, round*100+p, batches, channels) })
			wg.Go(func() { httpBatches(l, hc, s.base, tok, round*100+50+p, batches, channels) })
		}
		select {
		case <-l.enough:
		case <-s.exited:
		case <-time.After(servertest.WaitTimeout):
		}
		s.cmd.Process.Kill()
		s.wait()
		wg.Wait()
		hc.CloseIdleConnections()
		if n := l.replies.Load(); n < l.threshold {
			t.Fatalf("round %d: serve ended (%v) or stalled after %d of %d replies", round, s.cmd.ProcessState, n, l.threshold)
		}
		if st := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !st.Signaled() || st.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: serve ended with %v, not by SIGKILL", round, s.cmd.ProcessState)
		}
		if w, a := l.written.Load()-written, l.acks.Load()-acks; a >= w {
			t.Fatalf("round %d: all %d publications written were answered before the kill: nothing was in flight", round, w)
		}
		if t.Failed() {
			return
		}
	}
	s := startDurable(t, dir, secret)
	extra := checkLedger(t, l, s.client(), tok, channels)
	t.Logf("%d publications written in batches of %d, %d acknowledged, %d more kept", l.written.Load(), linesInBatch, l.acks.Load(), extra)
}
