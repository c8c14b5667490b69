// Package redis is the engine that lets several Switchboard nodes serve
// the same channels: offsets, epochs, history, idempotency keys and
// presence live in Redis, and each node fans out to its own subscribers
// through package fanout what Redis Pub/Sub tells it.
//
// A publication is one Lua script on the channel's keys (see scripts.go):
// the next offset, the stream entry, trimming, the idempotency key and a
// PUBLISH of the event, so that every node hears of a channel's
// publications in offset order. Pub/Sub delivers at most once, so a node
// checks each offset against the last it delivered and reads what it
// missed from the stream before going on (live.go).
//
// The client is go-redis v9 rather than rueidis: its PubSub resubscribes
// by itself after a reconnect and reports each (re)subscription, which is
// what the gap check needs, and one client type covers a single Redis and
// a Cluster. Measured (BENCHMARKS.md, "Several nodes on Redis"), it costs
// about 4 µs more CPU per publish than rueidis at 64 in flight, and gets
// some 15% less through one Redis: the price of that simplicity, and the
// first thing to change when throughput matters more.
package redis

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/fanout"
	"github.com/switchboard/switchboard/service"
)

// Options configure an Engine. Zero fields take DefaultOptions' values;
// for MaxPublications, MaxAge and IdempotencyWindow that is 0: no limit,
// and no keys remembered.
type Options struct {
	// URL is where Redis is: redis://[user:password@]host:port/db, or
	// rediss:// for TLS. With Cluster, further nodes may be given as
	// ?addr=host:port parameters.
	URL     string
	Cluster bool
	// RootCAs are the certificates to trust for rediss://, instead of
	// the system's.
	RootCAs *x509.CertPool
	// Prefix starts every key and Pub/Sub channel name, so that several
	// Switchboard deployments can share one Redis.
	Prefix string
	// Node names this node in join and leave events, so that it skips its
	// own, which fanout announces already.
	Node string

	MaxPublications   int
	MaxAge            time.Duration
	IdempotencyWindow time.Duration
	// PresenceTTL is how long a member stays listed after its node last
	// renewed it: the longest a dead node's subscribers stay in presence.
	// Nodes renew their members every third of it.
	PresenceTTL time.Duration
	// Shards is how many Pub/Sub connections the node shares among its
	// channels.
	Shards int
	// WaitReplicas, when above 0, holds each publish's reply until that
	// many replicas of the channel's primary have the publication (Redis
	// WAIT), for at most WaitTimeout (default 1s, to be kept below
	// Timeout): acknowledged publications then survive a failover. Past
	// it the publish fails with EUNAVAILABLE, though the primary has it.
	WaitReplicas int
	WaitTimeout  time.Duration
	// PoolSize bounds the node's connections to Redis for commands
	// (Pub/Sub has its Shards besides): how many publishes can be in
	// flight at once, each waiting for Redis's fsync with appendfsync
	// always. More in flight share one fsync, up to what Redis can do.
	PoolSize int
	// Timeout bounds each command, so that a Redis that does not answer
	// fails publishes fast instead of holding them.
	Timeout time.Duration
	Logger  *slog.Logger
}

// DefaultOptions are the values of Options' zero fields.
var DefaultOptions = Options{
	Prefix:      "switchboard",
	PresenceTTL: 15 * time.Second,
	Shards:      4,
	PoolSize:    64,
	Timeout:     2 * time.Second,
	Logger:      slog.New(slog.DiscardHandler),
}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	if o.Prefix != "" {
		d.Prefix = o.Prefix
	}
	if o.PresenceTTL > 0 {
		d.PresenceTTL = o.PresenceTTL
	}
	if o.Shards > 0 {
		d.Shards = o.Shards
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = defaultWaitTimeout
	}
	if o.PoolSize > 0 {
		d.PoolSize = o.PoolSize
	}
	if o.Timeout > 0 {
		d.Timeout = o.Timeout
	}
	if o.Logger != nil {
		d.Logger = o.Logger
	}
	o.Prefix, o.PresenceTTL, o.Shards, o.PoolSize, o.Timeout, o.Logger = d.Prefix, d.PresenceTTL, d.Shards, d.PoolSize, d.Timeout, d.Logger
	return o
}

// Engine implements service.Engine over Redis.
type Engine struct {
	opts  Options
	rdb   goredis.UniversalClient
	local *fanout.Local
	live  *live
	pres  *presence
	index *index

	down atomic.Pointer[error] // why Redis is unreachable; nil while it answers
	stop context.CancelFunc
	done chan struct{} // closed when watch ends
}

var _ service.Engine = (*Engine)(nil)

// Open connects to Redis, checks that it answers, and starts following
// it, until Close.
func Open(opts Options) (*Engine, error) {
	opts = opts.withDefaults()
	rdb, err := client(opts)
	if err != nil {
		return nil, err
	}
	// go-redis logs each failed dial on its own; the engine says once
	// that Redis is down, and go-redis's lines go to debug.
	goredis.SetLogger(debugLog{opts.Logger})
	if err := waitForRedis(rdb, opts); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", redactURL(opts.URL, opts.Cluster), err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	e := &Engine{opts: opts, rdb: rdb, stop: stop, done: make(chan struct{}), index: newIndex()}
	e.live = newLive(runCtx, e)
	e.pres = newPresence(e)
	e.local = fanout.New("", nil, fanout.Hooks{First: e.live.first, Last: e.live.last, Joined: e.pres.joined, Left: e.pres.leftAll})
	go e.pres.run(runCtx)
	go e.watch(runCtx)
	return e, nil
}

// startWait is how long Open waits for a Redis that refuses connections
// or is loading its data: one started beside the node may not listen yet.
const startWait = 10 * time.Second

// waitForRedis pings Redis until it answers, for at most startWait while
// it refuses connections or loads; other failures (TLS, a password) are
// final at once.
func waitForRedis(rdb goredis.UniversalClient, opts Options) error {
	deadline := time.Now().Add(startWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
		err := rdb.Ping(ctx).Err()
		cancel()
		waiting := errors.Is(err, syscall.ECONNREFUSED) || err != nil && strings.HasPrefix(err.Error(), "LOADING")
		if !waiting || time.Now().After(deadline) {
			return err
		}
		opts.Logger.Info("waiting for redis", "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// client builds the go-redis client opts ask for. Commands are never
// retried: a publish that may have run must not run twice.
func client(opts Options) (goredis.UniversalClient, error) {
	if opts.Cluster {
		co, err := goredis.ParseClusterURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
		co.MaxRetries, co.DialTimeout, co.ReadTimeout, co.WriteTimeout = -1, opts.Timeout, opts.Timeout, opts.Timeout
		co.ContextTimeoutEnabled, co.PoolSize, co.DialerRetries = true, opts.PoolSize, 1
		// The cluster client retries a command whose connection broke up
		// to MaxRedirects times, whatever MaxRetries says: a publish
		// that ran would run again. A MOVED during resharding then fails
		// the call, which the client may retry with its idempotency key.
		co.MaxRedirects = -1
		if co.TLSConfig != nil && opts.RootCAs != nil {
			co.TLSConfig.RootCAs = opts.RootCAs
		}
		return goredis.NewClusterClient(co), nil
	}
	o, err := goredis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	o.MaxRetries, o.DialTimeout, o.ReadTimeout, o.WriteTimeout = -1, opts.Timeout, opts.Timeout, opts.Timeout
	// One dial per attempt: go-redis would try five times, 100 ms apart,
	// and a Redis that refuses connections is to fail calls at once.
	o.ContextTimeoutEnabled, o.PoolSize, o.DialerRetries = true, opts.PoolSize, 1
	if o.TLSConfig != nil && opts.RootCAs != nil {
		o.TLSConfig.RootCAs = opts.RootCAs
	}
	return goredis.NewClient(o), nil
}

// redactURL is where the URL points, without its password, for
// messages.
func redactURL(u string, cluster bool) string {
	if cluster {
		if o, err := goredis.ParseClusterURL(u); err == nil {
			return strings.Join(o.Addrs, ",")
		}
	} else if o, err := goredis.ParseURL(u); err == nil {
		return o.Addr
	}
	return "the given URL"
}

// watch pings Redis every half second while the engine runs: Err, and so
// /readyz, reports whether it answers.
func (e *Engine) watch(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
		err := e.rdb.Ping(pctx).Err()
		cancel()
		if ctx.Err() != nil {
			return
		}
		e.setDown(err)
	}
}

func (e *Engine) setDown(err error) {
	if err == nil {
		if e.down.Swap(nil) != nil {
			e.opts.Logger.Info("redis answers again")
		}
		return
	}
	if e.down.Swap(&err) == nil {
		e.opts.Logger.Warn("redis does not answer; publishing fails until it does", "err", err)
	}
}

// Err reports why the engine cannot serve: Redis does not answer. It is
// nil while it does.
func (e *Engine) Err() error {
	if err := e.down.Load(); err != nil {
		return fmt.Errorf("redis unreachable: %w", *err)
	}
	return nil
}

// refuse fails a call at once while Redis is known not to answer,
// rather than after the command timeout.
func (e *Engine) refuse() error {
	if err := e.Err(); err != nil {
		return service.Errorf(service.EUNAVAILABLE, "%v", err)
	}
	return nil
}

// unavailable turns a Redis failure into the error callers are given,
// and notes that Redis may be down.
func (e *Engine) unavailable(what string, err error) error {
	var serr *service.Error
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &serr) {
		return err // said already (a WAIT not confirmed, say)
	}
	// A broken connection may be one connection, not Redis: a ping says
	// which, at once rather than at watch's next. Anything else (a
	// script's error, a subscription not confirmed in time) says
	// nothing of whether Redis answers.
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) {
		ctx, cancel := context.WithTimeout(context.Background(), min(e.opts.Timeout, 500*time.Millisecond))
		if perr := e.rdb.Ping(ctx).Err(); perr != nil {
			e.setDown(perr)
		}
		cancel()
	}
	return service.Errorf(service.EUNAVAILABLE, "%s: redis: %v", what, err)
}

// ctx bounds a command by the engine's timeout.
func (e *Engine) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, e.opts.Timeout)
}

// Close stops following Redis and closes the connections.
func (e *Engine) Close() error {
	e.stop()
	<-e.done
	e.pres.wait()
	e.live.close()
	return e.rdb.Close()
}

// Publish implements service.Engine: it returns once Redis has run the
// publish script, which with appendfsync always means once it is on
// Redis's disk.
func (e *Engine) Publish(ctx context.Context, p service.Publication, key string) (service.Published, error) {
	if err := e.refuse(); err != nil {
		return service.Published{}, err
	}
	k := e.keys(p.Channel)
	idem := k.meta
	window := int64(0)
	if key != "" && e.opts.IdempotencyWindow > 0 {
		idem, window = k.idempotency(key), e.opts.IdempotencyWindow.Milliseconds()
	}
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	res, err := e.runPublish(ctx, []string{k.meta, k.history, idem},
		encodeBody(p.Publisher, p.Data), p.Time.UnixMilli(), newEpoch(), window,
		e.opts.MaxPublications, e.opts.MaxAge.Milliseconds(), k.events)
	if err != nil {
		return service.Published{}, e.unavailable("publish", err)
	}
	if len(res) != 4 {
		return service.Published{}, fmt.Errorf("publish script returned %d values", len(res))
	}
	offset, err := strconv.ParseUint(res[1], 10, 64)
	if err != nil {
		return service.Published{}, fmt.Errorf("publish script offset %q: %w", res[1], err)
	}
	pos := service.Position{Offset: offset, Epoch: res[0]}
	e.index.add(ctx, e, p.Channel, pos.Epoch)
	return service.Published{Position: pos, Duplicate: res[3] == "1"}, nil
}

// Remove implements service.Engine: every node's subscribers of the
// channel are told, and it goes on at offset 0 in a new epoch.
func (e *Engine) Remove(ctx context.Context, name string) (service.Position, error) {
	if err := e.refuse(); err != nil {
		return service.Position{}, err
	}
	k := e.keys(name)
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	epoch, err := removeScript.Run(ctx, e.rdb, []string{k.meta, k.history, k.presence, k.expiries}, newEpoch(), k.events).Text()
	if err != nil {
		return service.Position{}, e.unavailable("remove", err)
	}
	pos := service.Position{Epoch: epoch}
	e.local.Removed(name, pos) // at once here, whatever Pub/Sub does
	// The name stays in the index: listing skips channels with neither
	// publications nor subscribers, and taking it out would race with
	// another node's publish adding it back.
	return pos, nil
}

// Subscribe implements service.Engine. The first local subscriber of a
// channel subscribes the node in Redis (live.first); each one is listed
// in presence.
func (e *Engine) Subscribe(ctx context.Context, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
	if err := e.refuse(); err != nil {
		return service.Position{}, err
	}
	// This node may follow the channel already and be behind Redis: the
	// subscriber starts at Redis's position, whatever the node has
	// delivered (fanout.SubscribeAfter).
	at, err := e.position(ctx, name)
	if err != nil {
		return service.Position{}, e.unavailable("subscribe", err)
	}
	pos, err := e.local.SubscribeAfter(ctx, name, r, joinLeave, at)
	if err != nil {
		return pos, err
	}
	e.pres.settled(ctx)
	e.index.add(ctx, e, name, pos.Epoch)
	return pos, nil
}

// Unsubscribe implements service.Engine.
func (e *Engine) Unsubscribe(name string, r service.Receiver) bool {
	return e.local.Unsubscribe(name, r)
}

// position reads the channel's position in Redis, giving it an epoch if
// it has none.
func (e *Engine) position(ctx context.Context, name string) (service.Position, error) {
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	res, err := positionScript.Run(ctx, e.rdb, []string{e.keys(name).meta}, newEpoch()).Slice()
	if err != nil {
		return service.Position{}, err
	}
	return position(res)
}

// newEpoch returns a fresh epoch name.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// encodeBody is how a publication's publisher and data travel and are
// kept: the publisher's length, a colon, the publisher, the data.
func encodeBody(publisher string, data []byte) string {
	return strconv.Itoa(len(publisher)) + ":" + publisher + string(data)
}

// decodeBody undoes encodeBody.
func decodeBody(body string) (publisher string, data []byte, err error) {
	for i := 0; i < len(body) && i < 12; i++ {
		if body[i] != ':' {
			continue
		}
		n, err := strconv.Atoi(body[:i])
		if err != nil || n < 0 || i+1+n > len(body) {
			break
		}
		return body[i+1 : i+1+n], []byte(body[i+1+n:]), nil
	}
	return "", nil, fmt.Errorf("malformed publication body")
}

// debugLog takes go-redis's log lines at debug level. go-redis has one
// logger for the process: the last engine opened gets its lines.
type debugLog struct{ l *slog.Logger }

func (d debugLog) Printf(ctx context.Context, format string, v ...any) {
	d.l.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
