package main

// bench fanout: S subscribers of one channel, one publisher.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/loadgen"
)

// subscriber is one subscribed connection, and what it received.
type subscriber struct {
	conn *websocket.Conn
	base uint64        // the channel's offset when it subscribed
	last atomic.Uint64 // the highest offset received, for the drain
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
		Offset uint64 `json:"offset"`
		Data   struct {
			T int64 `json:"t"`
		} `json:"data"`
	} `json:"params"`
}

// subscribe opens a connection subscribed to channel.
func subscribe(ctx context.Context, t *loadgen.Target, channel string) (*subscriber, error) {
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
	s := &subscriber{conn: c, base: res.Offset}
	s.last.Store(res.Offset)
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
		lat.Record(loadgen.Now() - time.Duration(p.Params.Data.T))
		last := s.last.Load()
		switch o := p.Params.Offset; {
		case o <= last:
			s.duplicates++
		default:
			s.gaps += o - last - 1
			s.delivered++
			s.last.Store(o)
		}
	}
}

func benchFanout(ctx context.Context, o *benchOpts, t *loadgen.Target) (*benchReport, error) {
	subs, failed, firstErr, err := dialAll(ctx, o.subscribers, func(ctx context.Context) (*subscriber, error) {
		return subscribe(ctx, t, o.channel)
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
			s.conn.CloseNow()
		}
		return nil, cmp.Or(err, errStoppedOpening)
	}

	var delivery loadgen.Histogram
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Go(func() { s.read(&delivery) })
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
