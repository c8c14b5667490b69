package main

// bench fanout: S subscribers of one channel, one publisher.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/loadgen"
)

// subscriber is one subscribed connection, and what it received.
type subscriber struct {
	conn *websocket.Conn
	// last is the highest offset received, from the channel's offset
	// when it subscribed; the drain reads it.
	last atomic.Uint64
	// closing is set before the run closes the connection, whose reader
	// then ends without a failure.
	closing atomic.Bool
	// The reader's alone until it has ended:
	delivered, duplicates, gaps uint64
	err                         error // why the reader ended, unless closed
}

// publication is what a subscriber reads of a notification.
type publication struct {
	Method string `json:"method"`
	Params struct {
		Offset uint64          `json:"offset"`
		Data   json.RawMessage `json:"data"`
	} `json:"params"`
}

// sent is the send time bench put in the data, if it is bench's.
func (p *publication) sent() (time.Duration, bool) {
	var d struct {
		T *int64 `json:"t"`
	}
	if json.Unmarshal(p.Params.Data, &d) != nil || d.T == nil {
		return 0, false
	}
	return time.Duration(*d.T), true
}

// subscribe opens a connection subscribed to channel, and starts its
// reader at once: it answers the server's pings while the other
// subscribers are still opening.
func subscribe(ctx context.Context, t *loadgen.Target, channel string, lat *loadgen.Histogram, readers *sync.WaitGroup) (*subscriber, error) {
	c, err := t.Dial(ctx)
	if err != nil {
		return nil, connError(t, err)
	}
	var res struct {
		Offset uint64 `json:"offset"`
	}
	if err := loadgen.Call(ctx, c, "channelSubscribe", map[string]string{"channel": channel}, &res); err != nil {
		c.CloseNow()
		return nil, err
	}
	s := &subscriber{conn: c}
	s.last.Store(res.Offset)
	readers.Go(func() { s.read(lat) })
	return s, nil
}

// read counts the publications until the connection ends. The server
// sends each exactly once, in offset order: an offset not above the last
// is a duplicate, and one past the next leaves a gap of lost ones.
func (s *subscriber) read(lat *loadgen.Histogram) {
	buf := make([]byte, 0, 512)
	for {
		var err error
		if buf, err = loadgen.ReadFrame(context.Background(), s.conn, buf); err != nil {
			if !s.closing.Load() {
				s.err = err
			}
			return
		}
		offset, sent, ok := quickPublication(buf)
		if !ok {
			var p publication
			if err := json.Unmarshal(buf, &p); err != nil {
				s.err = fmt.Errorf("a notification that is not JSON-RPC: %.200q: %w", buf, err)
				return
			}
			if p.Method == "channelUnsubscribed" {
				s.err = fmt.Errorf("the server ended the subscription: %.200s", buf)
				return
			}
			if p.Method != "channelPublication" {
				continue
			}
			// Another's publication to the channel still takes an
			// offset, but says nothing of the delay.
			s.count(p.Params.Offset)
			if t, ok := p.sent(); ok {
				lat.Record(loadgen.Now() - t)
			}
			continue
		}
		lat.Record(loadgen.Now() - time.Duration(sent))
		s.count(offset)
	}
}

// count takes the delivery of offset.
func (s *subscriber) count(offset uint64) {
	last := s.last.Load()
	if offset <= last {
		s.duplicates++
		return
	}
	s.gaps += offset - last - 1
	s.delivered++
	s.last.Store(offset)
}

// The start of a channelPublication as the server writes it: its params
// in order, channel, offset, then data, whose "t" bench put first.
var (
	publicationHead = []byte(`{"jsonrpc":"2.0","method":"channelPublication","params":{"channel":`)
	offsetKey       = []byte(`,"offset":`)
	sentKey         = []byte(`,"data":{"t":`)
)

// quickPublication reads the offset and the send time of a publication
// frame from its first few hundred bytes, without scanning the rest: at
// a hundred thousand deliveries a second, decoding every byte of every
// payload would make the subscribers, not the server, the bottleneck.
// ok is false for any other frame (or another layout), to be decoded in
// full.
func quickPublication(frame []byte) (offset uint64, sent int64, ok bool) {
	rest, found := bytes.CutPrefix(frame, publicationHead)
	if !found {
		return 0, 0, false
	}
	// A channel name has no quotes, so its end is the first ',"offset":',
	// within its 255 characters.
	i := bytes.Index(rest[:min(len(rest), 300)], offsetKey)
	if i < 0 {
		return 0, 0, false
	}
	digits, rest := leadingDigits(rest[i+len(offsetKey):])
	offset, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if rest, found = bytes.CutPrefix(rest, sentKey); !found {
		return 0, 0, false
	}
	digits, _ = leadingDigits(rest)
	sent, err = strconv.ParseInt(string(digits), 10, 64)
	return offset, sent, err == nil
}

func leadingDigits(b []byte) (digits, rest []byte) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return b[:i], b[i:]
}

func benchFanout(ctx context.Context, o *benchOpts, t *loadgen.Target) (*benchReport, error) {
	var delivery loadgen.Histogram
	var readers sync.WaitGroup
	subs, failed, firstErr, err := dialAll(ctx, o.subscribers, func(ctx context.Context) (*subscriber, error) {
		return subscribe(ctx, t, o.channel, &delivery, &readers)
	})
	if err == nil && failed > 0 {
		err = firstErr
	}
	var pub *websocket.Conn
	if err == nil && ctx.Err() == nil {
		if pub, err = t.Dial(ctx); err != nil {
			err = connError(t, err)
		}
	}
	if err != nil || ctx.Err() != nil {
		for _, s := range subs {
			s.closing.Store(true)
			s.conn.CloseNow()
		}
		readers.Wait()
		return nil, cmp.Or(err, errStoppedOpening)
	}
	rep := &benchReport{Mode: "fanout", URL: t.URL(), Channel: o.channel, Connections: o.subscribers + 1, Depth: o.depth, Rate: o.rate}
	var ack loadgen.Histogram
	var lastOffset uint64 // the publisher's reader's, until runPipelines returns
	start := time.Now()
	counts, runErr := runPipelines(ctx, o, []*websocket.Conn{pub}, &ack, appendPublish(o.channel, o.payload), func(r json.RawMessage) {
		var res struct {
			Offset uint64 `json:"offset"`
		}
		if json.Unmarshal(r, &res) == nil {
			lastOffset = max(lastOffset, res.Offset)
		}
	}, rep)
	awaitDeliveries(subs, lastOffset)
	rep.Seconds = time.Since(start).Seconds()
	for _, s := range subs {
		s.closing.Store(true)
		go s.conn.Close(websocket.StatusNormalClosure, "")
	}
	readers.Wait()
	rep.fanoutStats = fanoutTotals(subs, lastOffset, rep)
	rep.fanoutStats.AckLatency = latencyOf(&ack)
	rep.Latency = new(latencyOf(&delivery))
	rep.publishStats = &publishStats{PayloadBytes: o.payload, Publications: counts.OK, PublicationsPerSecond: rep.perSecond(counts.OK)}
	if runErr == nil && rep.Lost > 0 {
		runErr = fmt.Errorf("%d deliveries were lost", rep.Lost)
	}
	return rep, runErr
}

// awaitDeliveries waits, up to loadgen.DrainTimeout, for every
// subscriber still reading to have received the publications up to
// offset.
func awaitDeliveries(subs []*subscriber, offset uint64) {
	deadline := time.Now().Add(loadgen.DrainTimeout)
	for _, s := range subs {
		for s.last.Load() < offset && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// fanoutTotals adds up the subscribers' counts once their readers have
// ended. A subscriber short of offset lost the rest; one whose
// connection failed is counted as an error too.
func fanoutTotals(subs []*subscriber, offset uint64, rep *benchReport) *fanoutStats {
	f := &fanoutStats{Subscribers: len(subs)}
	for _, s := range subs {
		f.Deliveries += s.delivered
		f.Duplicates += s.duplicates
		f.Lost += s.gaps
		if last := s.last.Load(); last < offset {
			f.Lost += offset - last
		}
		if s.err != nil {
			rep.Errors++
			if rep.FirstError == "" {
				rep.FirstError = "a subscriber: " + s.err.Error()
			}
		}
	}
	f.DeliveriesPerSecond = rep.perSecond(f.Deliveries)
	return f
}
