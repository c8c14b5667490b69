package main

// A few small requests used to make the server hold gigabytes: a batch of
// history reads answered with hundreds of megabytes, four such at once,
// and hundreds of history calls pipelined on a socket that is never read.
// These tests make those requests of the built binary and read its peak
// resident memory (VmHWM) from /proc.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/servertest"
)

const (
	bigPublications = 100
	bigData         = 60 << 10
	// peakBound is what these requests may add to the server's peak RSS.
	// Bounded, they take tens of megabytes; unbounded they took 2.5 GB
	// (one batch) to 7.8 GB (four), so the bound tells the two apart by
	// far, whatever the garbage collector's timing.
	peakBound = 512 << 20
)

// peakRSS returns the most resident memory pid has used, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

func TestBigRepliesAreBounded(t *testing.T) {
	s := startServer(t, nil, "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	tok := s.readAdminToken()
	c := s.client()
	data := `"` + strings.Repeat("x", bigData-2) + `"`
	for range bigPublications {
		servertest.PublishHTTP(t, c, tok, "big.x", data)
	}
	base := peakRSS(t, s.cmd.Process.Pid)

	// One batch: the replies stop at --max-batch-reply-size (8 MiB), and
	// the calls after it are refused, not run.
	checkBoundedBatch(t, c.Post(servertest.Bearer(tok), servertest.HistoryBatch(100, "big.x")).Body)
	t.Logf("after one batch: peak RSS %d MiB", peakRSS(t, s.cmd.Process.Pid)>>20)

	// Four at once.
	var wg sync.WaitGroup
	bodies := make([][]byte, 4)
	for i := range bodies {
		wg.Go(func() { bodies[i] = c.Post(servertest.Bearer(tok), servertest.HistoryBatch(100, "big.x")).Body })
	}
	wg.Wait()
	for _, b := range bodies {
		checkBoundedBatch(t, b)
	}
	t.Logf("after four batches: peak RSS %d MiB", peakRSS(t, s.cmd.Process.Pid)>>20)

	// 400 history calls pipelined on a socket that is never read: the
	// server holds the send queue (4 MiB) and two replies, and stops
	// reading the rest.
	ws := s.client().Dial(servertest.Bearer(tok))
	pipeline(t, ws, 400, "big.x")
	time.Sleep(2 * time.Second) // time for the server to read, run and queue what it will
	if grew := peakRSS(t, s.cmd.Process.Pid) - base; grew > peakBound {
		t.Fatalf("peak RSS grew by %d MiB, want at most %d MiB", grew>>20, peakBound>>20)
	} else {
		t.Logf("peak RSS grew by %d MiB (from %d MiB)", grew>>20, base>>20)
	}
	ws.CloseNow()

	// The server still answers, and the history is whole.
	var h servertest.HistoryResult
	r, _ := c.Call(servertest.Bearer(tok), "channelHistory", map[string]any{"channel": "big.x", "limit": 1, "newestFirst": true})
	r.Decode(t, &h)
	if h.Offset != bigPublications {
		t.Fatalf("latest offset %d, want %d", h.Offset, bigPublications)
	}
}

// checkBoundedBatch checks the reply to servertest.HistoryBatch: the first calls get
// their pages until the replies pass 8 MiB, and every call after that
// gets -32029.
func checkBoundedBatch(t *testing.T, body []byte) {
	t.Helper()
	var replies []servertest.Reply
	if err := json.Unmarshal(body, &replies); err != nil {
		t.Fatalf("batch reply of %d bytes: %v", len(body), err)
	}
	if len(replies) != 100 {
		t.Fatalf("%d replies, want 100", len(replies))
	}
	answered, size := 0, 0
	for i, r := range replies {
		switch {
		case r.Error == nil && answered == i:
			answered++
			size += len(r.Result)
		case r.Error != nil && r.Error.Code == -32029 && answered > 0 && size > 8<<20:
		default:
			t.Fatalf("reply %d (after %d pages, %d bytes): %+v", i, answered, size, r.Error)
		}
	}
	if answered == 100 {
		t.Fatalf("every call was answered: %d bytes in all", len(body))
	}
}

// pipeline writes n channelHistory calls on ws without reading anything.
// The server stops reading once its call slots and send queue are full,
// so the writes are given a moment and then abandoned.
func pipeline(t *testing.T, ws *websocket.Conn, n int, channel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i := range n {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": i, "method": "channelHistory",
			"params": map[string]any{"channel": channel, "limit": 1000}})
		if err := ws.Write(ctx, websocket.MessageText, bytes.TrimSpace(b)); err != nil {
			t.Logf("the server stopped reading after %d calls", i)
			return
		}
	}
}
