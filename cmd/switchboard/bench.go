package main

// switchboard bench: load against one server, measured from the client.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/loadgen"
	"golang.org/x/time/rate"
)

const benchUsage = "bench (rpc | publish | fanout | idle) [flags]"

// benchHelp follows the flags in bench -h.
const benchHelp = `
Modes:
  rpc      --connections WebSockets, each with --depth serverPing calls in
           flight (--batch calls per message): calls/s and their round trip.
  publish  the same with channelPublish to --channel: acknowledged
           publications/s, and the time to each acknowledgement.
  fanout   --subscribers WebSockets subscribed to --channel, then one
           publisher (--depth in flight, --rate at most): deliveries/s and
           the time from each publish to each delivery; lost and duplicated
           deliveries are counted from the offsets.
  idle     --connections WebSockets held open for --duration (--subscribe:
           each subscribed to --channel): how many opened and how long that
           took. What they cost is the server's memory: read its resident
           set (ps -o rss, or process_resident_memory_bytes on /metrics).

The load starts once every connection is open (and subscribed), and runs
for --duration; Ctrl-C ends it early with what was measured. It goes to
--url's host and port only: no proxy, no redirect. stderr has a table for
people; stdout one JSON object (fields in the README, "Measuring a
server"). Exit 1 when a call failed or a delivery was lost, 3 when the
server cannot be reached or refuses a connection.
`

// The bounds of a run, so that a typo cannot load a server for hours or
// open a million sockets. Idle connections cost the client one goroutine
// and a few KiB each; busy ones cost a reader and a writer.
const (
	maxBenchDuration  = 10 * time.Minute
	maxBusyConns      = 10_000  // rpc and publish connections, fanout subscribers
	maxIdleConns      = 100_000 // idle connections
	maxBenchDepth     = 1000
	maxBenchBatch     = 1000
	maxBenchRate      = 1_000_000
	maxBenchPayload   = 1 << 20
	benchDialParallel = 64 // handshakes at once, so that opening does not look like a flood
)

type benchOpts struct {
	connFlags
	duration    time.Duration
	connections int
	depth       int
	batch       int
	subscribers int
	rate        float64
	payload     int
	channel     string
	subscribe   bool
}

func benchFlags(o *benchOpts, stderr io.Writer) *flag.FlagSet {
	fs := clientCommand("bench", &o.connFlags, stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure (idle: to hold the connections), at most 10m")
	fs.IntVar(&o.connections, "connections", 10, "WebSockets making calls (rpc, publish) or held open (idle); at most 10000, or 100000 for idle")
	fs.IntVar(&o.depth, "depth", 1, "calls in flight on each connection (the publisher's, for fanout), at most 1000")
	fs.IntVar(&o.batch, "batch", 1, "rpc, publish: calls in each message, sent as one JSON-RPC batch (the server takes up to its --max-batch, 100 by default), at most 1000")
	fs.IntVar(&o.subscribers, "subscribers", 10, "fanout: WebSockets subscribed to the channel, one each, at most 10000")
	fs.Float64Var(&o.rate, "rate", 0, "calls (publications, for fanout) a second, all connections together; 0 for as fast as replies allow")
	fs.IntVar(&o.payload, "payload", 100, "publish, fanout: bytes of each publication's data, at most 1 MiB (the server's limit is 64 KiB unless configured)")
	fs.StringVar(&o.channel, "channel", "", "publish, fanout, idle --subscribe: the channel; bench.<random> when empty")
	fs.BoolVar(&o.subscribe, "subscribe", false, "idle: subscribe each connection to --channel")
	return fs
}

// check reports the first option that is out of bounds for mode.
func (o *benchOpts) check(mode string) error {
	most := maxBusyConns
	switch mode {
	case "idle":
		most = maxIdleConns
	case "rpc", "publish", "fanout":
	default:
		return usagef("bench: unknown mode %q: want rpc, publish, fanout or idle", mode)
	}
	switch {
	case o.duration <= 0 || o.duration > maxBenchDuration:
		return usagef("--duration must be above 0 and at most %v", maxBenchDuration)
	case o.connections < 1 || o.connections > most:
		return usagef("--connections must be 1 to %d for %s", most, mode)
	case o.depth < 1 || o.depth > maxBenchDepth:
		return usagef("--depth must be 1 to %d", maxBenchDepth)
	case o.batch < 1 || o.batch > maxBenchBatch:
		return usagef("--batch must be 1 to %d", maxBenchBatch)
	case o.subscribers < 1 || o.subscribers > maxBusyConns:
		return usagef("--subscribers must be 1 to %d", maxBusyConns)
	case o.rate < 0 || o.rate > maxBenchRate:
		return usagef("--rate must be 0 to %d", maxBenchRate)
	case o.payload < 0 || o.payload > maxBenchPayload:
		return usagef("--payload must be 0 to %d", maxBenchPayload)
	}
	return nil
}

func benchCmd(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var o benchOpts
	pos, err := parseClientArgs(benchFlags(&o, stderr), args, 1, 1, benchUsage)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, benchHelp)
	}
	if err != nil {
		return err
	}
	mode := pos[0]
	if err := o.check(mode); err != nil {
		return err
	}
	if o.channel == "" {
		o.channel = randomChannel()
	}
	target, err := o.target(ctx)
	if err != nil {
		return err
	}
	// Ctrl-C ends the run early, with what was measured; a second one
	// has its default action again.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	run := map[string]func(context.Context, *benchOpts, *loadgen.Target) (*benchReport, error){
		"rpc": benchRPC, "publish": benchPublish, "fanout": benchFanout, "idle": benchIdle,
	}[mode]
	rep, err := run(ctx, &o, target)
	if rep != nil {
		rep.Interrupted = ctx.Err() != nil
		rep.writeTable(stderr)
		if werr := (jsonOut{stdout, o.pretty}).write(rep); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// target is the server, with the token from --token or, run once, from
// --token-command: a run lasts minutes at most.
func (o *benchOpts) target(ctx context.Context) (*loadgen.Target, error) {
	roots, err := caCertPool(o.cacert)
	if err != nil {
		return nil, err
	}
	tok := o.token
	if o.tokenCommand != "" {
		if tok, err = commandToken(o.tokenCommand)(ctx); err != nil {
			return nil, err
		}
	}
	t, err := loadgen.NewTarget(o.url, tok, roots)
	if err != nil {
		return nil, usageError{err}
	}
	return t, nil
}

// limiter paces a run at --rate calls a second, or not at all. Its burst
// is a hundredth of a second's worth, so that the pace holds over short
// spans too, or a batch when that is more.
func (o *benchOpts) limiter() *rate.Limiter {
	if o.rate == 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(o.rate), max(1, int(o.rate/100), o.batch))
}

func randomChannel() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "bench." + hex.EncodeToString(b)
}

// dialAll makes n of what open makes (a connection, subscribed or not),
// benchDialParallel at a time, after a first one alone: a server that
// cannot be reached, or refuses the token, is then said once, with
// open's error, rather than n times. The others' failures are counted,
// with the first of them. It stops early when ctx ends.
func dialAll[T any](ctx context.Context, n int, open func(context.Context) (T, error)) (made []T, failed int, firstErr error, err error) {
	first, err := open(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	made = append(made, first)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, benchDialParallel)
	for range n - 1 {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := open(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				firstErr = cmp.Or(firstErr, err)
				return
			}
			made = append(made, v)
		})
	}
	wg.Wait()
	return made, failed, firstErr, nil
}

// errStoppedOpening is a run stopped (by Ctrl-C) before its load began.
var errStoppedOpening = errors.New("stopped while opening the connections: nothing was measured")

// connError is a failure to open a connection, which exits with 3.
func connError(t *loadgen.Target, err error) error {
	return &client.ConnectionError{URL: t.URL(), Err: err}
}
