package main

// bench idle: many connections that say nothing, held open.

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/loadgen"
)

// idleConn is one held connection. Its reader answers the server's
// pings, which only a read does: a connection nobody reads is dropped as
// dead after --pong-timeout. It is all a connection costs the client:
// the socket's buffers and one parked goroutine.
type idleConn struct {
	conn    *websocket.Conn
	closing atomic.Bool
}

// idleDrops counts the connections of a run that ended before the run
// closed them, and says the first one's error.
type idleDrops struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (d *idleDrops) add(err error) {
	d.n.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.first == nil {
		d.first = err
	}
}

func (c *idleConn) read(drops *idleDrops) {
	for {
		if _, _, err := c.conn.Read(context.Background()); err != nil {
			if !c.closing.Load() {
				drops.add(fmt.Errorf("a held connection ended: %w", err))
			}
			return
		}
	}
}

func benchIdle(ctx context.Context, o *benchOpts, t *loadgen.Target) (*benchReport, error) {
	var drops idleDrops
	start := time.Now()
	// Opening is bounded too: 100,000 handshakes to a slow server may
	// take long.
	openCtx, cancel := context.WithTimeout(ctx, maxBenchDuration)
	defer cancel()
	conns, failed, firstErr, err := dialAll(openCtx, o.connections, func(ctx context.Context) (*idleConn, error) {
		c, err := t.Dial(ctx)
		if err != nil {
			return nil, connError(t, err)
		}
		if o.subscribe {
			var res struct{}
			if err := loadgen.Call(ctx, c, "channelSubscribe", map[string]string{"channel": o.channel}, &res); err != nil {
				c.CloseNow()
				return nil, err
			}
		}
		ic := &idleConn{conn: c}
		go ic.read(&drops)
		return ic, nil
	})
	if err != nil {
		return nil, err
	}
	opened := time.Since(start)

	hold := time.NewTimer(o.duration)
	defer hold.Stop()
	heldFrom := time.Now()
	select {
	case <-hold.C:
	case <-ctx.Done():
	}
	held := time.Since(heldFrom)
	// Without the closing handshake: 100,000 of them would take longer
	// than the run, and the server takes a closed socket just as well.
	for _, c := range conns {
		c.closing.Store(true)
		c.conn.CloseNow()
	}

	rep := &benchReport{Mode: "idle", URL: t.URL(), Connections: o.connections, Seconds: held.Seconds(),
		idleStats: &idleStats{Subscribe: o.subscribe, Opened: len(conns), Failed: failed, OpenSeconds: opened.Seconds()}}
	if o.subscribe {
		rep.Channel = o.channel
	}
	rep.Errors = uint64(failed) + uint64(drops.n.Load())
	drops.mu.Lock()
	runErr := cmp.Or(firstErr, drops.first)
	drops.mu.Unlock()
	if runErr != nil {
		rep.FirstError = runErr.Error()
	}
	return rep, runErr
}
