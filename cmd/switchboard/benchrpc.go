package main

// bench rpc and bench publish: pipelined calls on N connections.

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/loadgen"
)

func benchRPC(ctx context.Context, o *benchOpts, t *loadgen.Target) (*benchReport, error) {
	conns, err := openBusy(ctx, t, o.connections)
	if err != nil {
		return nil, err
	}
	rep := &benchReport{Mode: "rpc", URL: t.URL(), Connections: o.connections, Depth: o.depth, Batch: o.batch, Rate: o.rate}
	var lat loadgen.Histogram
	counts, err := runPipelines(ctx, o, conns, &lat, appendPing, nil, rep)
	rep.callStats = &callStats{Calls: counts.OK, CallsPerSecond: rep.perSecond(counts.OK)}
	return rep, err
}

func benchPublish(ctx context.Context, o *benchOpts, t *loadgen.Target) (*benchReport, error) {
	conns, err := openBusy(ctx, t, o.connections)
	if err != nil {
		return nil, err
	}
	rep := &benchReport{Mode: "publish", URL: t.URL(), Channel: o.channel, Connections: o.connections, Depth: o.depth, Batch: o.batch, Rate: o.rate}
	var lat loadgen.Histogram
	counts, err := runPipelines(ctx, o, conns, &lat, appendPublish(o.channel, o.payload), nil, rep)
	rep.publishStats = &publishStats{PayloadBytes: o.payload, Publications: counts.OK, PublicationsPerSecond: rep.perSecond(counts.OK)}
	return rep, err
}

// openBusy opens the n connections of a run that needs them all.
func openBusy(ctx context.Context, t *loadgen.Target, n int) ([]*websocket.Conn, error) {
	conns, failed, firstErr, err := dialAll(ctx, n, func(ctx context.Context) (*websocket.Conn, error) {
		c, err := t.Dial(ctx)
		if err != nil {
			return nil, connError(t, err)
		}
		return c, nil
	})
	if err == nil && failed > 0 {
		err = firstErr
	}
	if err == nil && ctx.Err() != nil {
		err = errStoppedOpening
	}
	if err != nil {
		for _, c := range conns {
			c.CloseNow()
		}
		return nil, err
	}
	return conns, nil
}

// runPipelines runs a pipeline on each connection for --duration (or
// until ctx ends), and fills rep's common fields: the time, the errors,
// the latency. Its error is the first connection's failure, or else the
// first JSON-RPC error answered, so that the exit code says the run was
// not clean.
func runPipelines(ctx context.Context, o *benchOpts, conns []*websocket.Conn, lat *loadgen.Histogram,
	appendReq func(dst []byte, id int, sent time.Duration) []byte, result func(json.RawMessage), rep *benchReport) (loadgen.Counts, error) {
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	limiter := o.limiter()
	var (
		mu      sync.Mutex
		total   loadgen.Counts
		connErr error
		wg      sync.WaitGroup
	)
	start := time.Now()
	for _, c := range conns {
		p := &loadgen.Pipeline{Conn: c, Depth: o.depth, Batch: o.batch, Limiter: limiter, Append: appendReq, Result: result, Latency: lat}
		wg.Go(func() {
			counts, err := p.Run(runCtx)
			mu.Lock()
			defer mu.Unlock()
			total.OK += counts.OK
			total.Failed += counts.Failed
			if total.FirstFailure == nil {
				total.FirstFailure = counts.FirstFailure
			}
			if err != nil {
				rep.Errors++
				if connErr == nil {
					connErr = err
				}
			}
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	rep.Errors += total.Failed
	rep.Latency = new(latencyOf(lat))
	switch {
	case connErr != nil:
		rep.FirstError = connErr.Error()
		return total, connErr
	case total.FirstFailure != nil:
		rep.FirstError = total.FirstFailure.Error()
		return total, total.FirstFailure
	}
	return total, nil
}

// appendPing appends a serverPing call: the cheapest method, so that
// what is measured is the server's handling of calls and the network.
func appendPing(dst []byte, id int, _ time.Duration) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	return append(dst, `,"method":"serverPing"}`...)
}

// appendPublish returns the appender of channelPublish calls to channel
// whose data, of about payload bytes, is {"t":SENT,"p":"xxx…"}: SENT,
// the send time from loadgen.Now, is what fanout's subscribers measure
// the delivery from.
func appendPublish(channel string, payload int) func(dst []byte, id int, sent time.Duration) []byte {
	quoted, _ := json.Marshal(channel)
	prefix := `,"method":"channelPublish","params":{"channel":` + string(quoted) + `,"data":{"t":`
	pad := strings.Repeat("x", payload)
	return func(dst []byte, id int, sent time.Duration) []byte {
		dst = append(dst, `{"jsonrpc":"2.0","id":`...)
		dst = strconv.AppendInt(dst, int64(id), 10)
		dst = append(dst, prefix...)
		n := len(dst)
		dst = strconv.AppendInt(dst, int64(sent), 10)
		// {"t":  SENT  ,"p":"  pad  "}
		fixed := len(`{"t":`) + len(dst) - n + len(`,"p":""}`)
		dst = append(dst, `,"p":"`...)
		dst = append(dst, pad[:max(payload-fixed, 0)]...)
		return append(dst, `"}}}`...)
	}
}
