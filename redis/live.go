package redis

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/fanout"
	"github.com/switchboard/switchboard/service"
)

// live follows, in Redis Pub/Sub, the channels that have subscribers on
// this node, over a fixed number of shared connections (shards): a
// channel always goes through the same shard, whose one goroutine
// delivers its events in the order Redis sent them.
type live struct {
	e      *Engine
	shards []*shard
	wg     sync.WaitGroup
}

// queueSize bounds a shard's events waiting for delivery. Past it,
// messages are dropped and their channels caught up from Redis (see
// enqueue).
const queueSize = 4096

// shard is one Pub/Sub connection and the two goroutines that own it:
// receive reads it and answers subscriptions; deliver hands events to
// fanout, reading history to fill gaps, which receive must not wait for.
type shard struct {
	e     *Engine
	queue chan item

	mu         sync.Mutex
	ps         *goredis.PubSub
	subscribed map[string]bool          // events channels this node follows here
	waiting    map[string]chan struct{} // closed when Redis confirms the subscription
	missed     map[string]bool          // events channels to catch up on the next tick: a dropped message, a failed catch-up
}

// item is an event for deliver: a message, or a check that nothing was
// missed while the connection was down.
type item struct {
	events  string
	payload string
	check   bool
}

func newLive(ctx context.Context, e *Engine) *live {
	l := &live{e: e}
	for range e.opts.Shards {
		sh := &shard{e: e, queue: make(chan item, queueSize), ps: e.rdb.Subscribe(ctx),
			subscribed: map[string]bool{}, waiting: map[string]chan struct{}{}, missed: map[string]bool{}}
		l.shards = append(l.shards, sh)
		l.wg.Add(2)
		go func() { defer l.wg.Done(); sh.receive(ctx) }()
		go func() { defer l.wg.Done(); sh.deliver(ctx) }()
	}
	return l
}

func (l *live) shard(name string) *shard {
	h := fnv.New32a()
	h.Write([]byte(name))
	return l.shards[h.Sum32()%uint32(len(l.shards))]
}

// close ends the shards; the engine's context is cancelled already.
func (l *live) close() {
	for _, sh := range l.shards {
		sh.mu.Lock()
		sh.ps.Close()
		sh.mu.Unlock()
	}
	l.wg.Wait()
}

// first is fanout's First hook: it joins the channel's events in Redis,
// waits until Redis confirms, and only then reads the position, so that
// every publication after it reaches this node (those at or below it
// that arrive all the same are dropped by fanout.Offer).
func (l *live) first(ctx context.Context, name string, _ service.Position) (service.Position, error) {
	e := l.e
	k := e.keys(name)
	sh := l.shard(name)
	confirmed := make(chan struct{})
	sh.mu.Lock()
	sh.waiting[k.events] = confirmed
	sh.subscribed[k.events] = true
	err := sh.ps.Subscribe(ctx, k.events)
	sh.mu.Unlock()
	if err == nil {
		t := time.NewTimer(e.opts.Timeout)
		select {
		case <-confirmed:
		case <-t.C:
			err = errors.New("no confirmation of the subscription in time")
		case <-ctx.Done():
			err = ctx.Err()
		}
		t.Stop()
	}
	if err == nil {
		var pos service.Position
		if pos, err = e.position(ctx, name); err == nil {
			return pos, nil
		}
	}
	l.last(name)
	return service.Position{}, e.unavailable("subscribe", err)
}

// last is fanout's Last hook: the node stops following the channel.
func (l *live) last(name string) {
	e := l.e
	events := e.keys(name).events
	sh := l.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.subscribed, events)
	delete(sh.waiting, events)
	ctx, cancel := e.ctx(context.Background())
	defer cancel()
	if err := sh.ps.Unsubscribe(ctx, events); err != nil {
		// The connection is down; when it comes back, it is without
		// this channel (see renew) or Offer drops what comes.
		e.opts.Logger.Debug("redis unsubscribe failed", "channel", name, "err", err)
	}
}

// receive reads the shard's connection until ctx ends. go-redis
// reconnects by itself after an error and subscribes again to every
// channel; a subscription confirmed that nobody waits for is such a
// resubscription, after which deliver checks for missed publications.
func (sh *shard) receive(ctx context.Context) {
	const quiet = time.Second // ping after this long without a word
	pinged, backoff := false, 50*time.Millisecond
	for ctx.Err() == nil {
		sh.mu.Lock()
		ps := sh.ps
		sh.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, quiet)
		if ctx.Err() != nil {
			return
		}
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			if pinged { // nothing, not even the pong: the connection is dead
				sh.renew(ctx)
				pinged = false
			} else {
				pinged = ps.Ping(ctx) == nil
			}
			continue
		case err != nil:
			sleep(ctx, backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		pinged, backoff = false, 50*time.Millisecond
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				sh.confirmed(m.Channel)
			}
		case *goredis.Message:
			sh.enqueue(item{events: m.Channel, payload: m.Payload})
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// enqueue hands it to deliver. receive must never wait for deliver,
// which may wait for a channel's lock held by First, which waits for
// receive to read its confirmation: a full queue drops the message, and
// deliver catches the channel up from Redis on its next tick.
func (sh *shard) enqueue(it item) {
	select {
	case sh.queue <- it:
	default:
		sh.miss(it.events)
	}
}

// miss has deliver catch the channel of events up on its next tick.
func (sh *shard) miss(events string) {
	sh.mu.Lock()
	sh.missed[events] = true
	sh.mu.Unlock()
}

// catchUpMissed catches up the channels marked by miss: a dropped message, a failed catch-up.
func (sh *shard) catchUpMissed(ctx context.Context) {
	sh.mu.Lock()
	if len(sh.missed) == 0 {
		sh.mu.Unlock()
		return
	}
	missed := sh.missed
	sh.missed = map[string]bool{}
	sh.mu.Unlock()
	for events := range missed {
		if name, ok := sh.e.channelOf(events); ok {
			sh.catchUp(ctx, name)
		}
	}
}

// confirmed takes Redis's confirmation of a subscription to events.
func (sh *shard) confirmed(events string) {
	sh.mu.Lock()
	w, following := sh.waiting[events], sh.subscribed[events]
	delete(sh.waiting, events)
	sh.mu.Unlock()
	switch {
	case w != nil:
		close(w)
	case following:
		sh.enqueue(item{events: events, check: true})
	}
}

// renew replaces a connection that stopped answering with a new one,
// subscribed to the same channels; each confirmation leads to a check.
func (sh *shard) renew(ctx context.Context) {
	sh.e.opts.Logger.Warn("redis pub/sub connection stopped answering; reconnecting")
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.ps.Close()
	sh.ps = sh.e.rdb.Subscribe(ctx)
	if len(sh.subscribed) == 0 {
		return
	}
	channels := make([]string, 0, len(sh.subscribed))
	for c := range sh.subscribed {
		channels = append(channels, c)
	}
	sctx, cancel := sh.e.ctx(ctx)
	defer cancel()
	if err := sh.ps.Subscribe(sctx, channels...); err != nil {
		sh.e.opts.Logger.Debug("redis resubscribe failed; retrying on the next read", "err", err)
	}
}

// deliver hands the shard's events to fanout, in order, until ctx ends.
func (sh *shard) deliver(ctx context.Context) {
	// Channels with a dropped message, or whose catch-up failed (Redis
	// still loading, say), are seen to on a tick, busy queue or not.
	retry := time.NewTicker(250 * time.Millisecond)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			sh.catchUpMissed(ctx)
		case it := <-sh.queue:
			name, ok := sh.e.channelOf(it.events)
			if !ok {
				continue
			}
			if it.check {
				sh.catchUp(ctx, name)
			} else {
				sh.event(ctx, name, it.payload)
			}
		}
	}
}

// later has catchUp try the channel again on the next tick.
func (sh *shard) later(name string) { sh.miss(sh.e.keys(name).events) }

// event delivers one message of a channel's events channel.
func (sh *shard) event(ctx context.Context, name, payload string) {
	e := sh.e
	kind, rest, _ := strings.Cut(payload, " ")
	switch kind {
	case "p":
		pos, p, err := decodeEvent(name, rest)
		if err != nil {
			e.opts.Logger.Error("malformed publication event", "channel", name, "err", err)
			return
		}
		sh.offer(ctx, pos, p)
	case "r":
		e.local.RemovedElsewhere(name, service.Position{Epoch: rest})
	case "j", "l":
		node, member, _ := strings.Cut(rest, " ")
		if node == e.opts.Node {
			return // fanout announced it already
		}
		var m wireMember
		if json.Unmarshal([]byte(member), &m) != nil {
			return
		}
		// From no node ("-": an expiry, or a renewal listing a member
		// again): about a member subscribed here, it is late news of a
		// renewal, not a change, and fanout announced its join already.
		if node == "-" && e.local.Has(name, m.Conn) {
			return
		}
		k := service.EventJoin
		if kind == "l" {
			k = service.EventLeave
		}
		e.local.Announce(name, k, m.member())
	}
}

// offer delivers p, first reading from history any publications that
// Pub/Sub lost before it.
func (sh *shard) offer(ctx context.Context, pos service.Position, p *service.Publication) {
	outcome, at := sh.e.local.Offer(pos, p)
	switch outcome {
	case fanout.Gap:
		if sh.fill(ctx, p.Channel, at, pos.Offset-1) {
			sh.e.local.Offer(pos, p)
		}
	case fanout.OtherEpoch:
		// Either Redis lost the channel's data, or p is of the epoch
		// before a removal that this node made and told its subscribers
		// of at once, still on its way: Redis's position says which.
		sh.catchUp(ctx, p.Channel)
	}
}

// catchUp delivers what the channel's subscribers missed while the
// connection was down, or ends their subscriptions when Redis has the
// channel in another epoch than they were given.
func (sh *shard) catchUp(ctx context.Context, name string) {
	e := sh.e
	at := e.local.Position(name)
	if at.Epoch == "" {
		return // nobody here follows it any more
	}
	seen, last := e.local.Seen(name)
	now, err := e.position(ctx, name)
	if err == nil && now.Epoch == seen.Epoch {
		var back bool
		if back, err = sh.wentBack(ctx, name, at, seen, last, now); err == nil && back {
			now, err = e.rewind(ctx, name, seen)
		}
	}
	switch {
	case err != nil:
		// Redis answers the subscription but not yet commands (it loads
		// its data, which may be older): ending the subscriptions now
		// would let the next subscriber miss that. Try again.
		e.opts.Logger.Debug("catching up failed; trying again", "channel", name, "err", err)
		sh.later(name)
	case now.Epoch != at.Epoch:
		sh.interrupt(name, "redis lost the channel's data, or went back to an older copy of it")
	case now.Offset > at.Offset:
		sh.fill(ctx, name, at, now.Offset)
	}
}

// wentBack tells whether Redis, now at now in the epoch this node saw,
// went back to an older copy of the channel: below the furthest offset
// given out (seen: a subscriber may have been started beyond what this
// node delivered), or with another publication at the offset delivered
// last (at, whose time was last): other nodes may have published the
// new timeline past seen before this node looked.
func (sh *shard) wentBack(ctx context.Context, name string, at, seen service.Position, last time.Time, now service.Position) (bool, error) {
	if now.Offset < seen.Offset {
		return true, nil
	}
	if last.IsZero() || at.Offset == 0 {
		return false, nil
	}
	h, err := sh.e.history(ctx, name, service.HistoryQuery{After: at.Offset - 1, Before: at.Offset + 1, Limit: 1})
	if err != nil {
		return false, err
	}
	return len(h.Publications) == 1 && !h.Publications[0].Time.Equal(last), nil // trimmed: cannot tell
}

// rewind gives a channel that Redis took back to before at a new epoch,
// so that clients holding later positions learn that they cannot
// recover (see rewindScript).
func (e *Engine) rewind(ctx context.Context, name string, at service.Position) (service.Position, error) {
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	res, err := rewindScript.Run(ctx, e.rdb, []string{e.keys(name).meta}, at.Epoch, newEpoch()).Slice()
	if err != nil {
		return service.Position{}, err
	}
	return position(res)
}

// fillPage is how many publications fill reads at a time.
const fillPage = 500

// fill delivers the channel's publications after from up to offset to,
// from history. When history no longer has them all, or the channel's
// epoch changed, it ends the subscriptions so that their clients
// recover, and reports false.
func (sh *shard) fill(ctx context.Context, name string, from service.Position, to uint64) bool {
	e := sh.e
	for from.Offset < to {
		h, err := e.history(ctx, name, service.HistoryQuery{After: from.Offset, Before: to + 1, Limit: fillPage})
		switch {
		case err != nil:
			// Redis may be loading or unreachable: what was missed is
			// still there once it answers.
			sh.e.opts.Logger.Debug("filling a gap failed; trying again", "channel", name, "err", err)
			sh.later(name)
			return false
		case h.Position.Epoch != from.Epoch:
			sh.interrupt(name, "redis lost the channel's data")
			return false
		case len(h.Publications) == 0 || h.Publications[0].Offset != from.Offset+1:
			sh.interrupt(name, "publications missed by this node are no longer in the history")
			return false
		}
		for i := range h.Publications {
			p := &h.Publications[i]
			at := service.Position{Offset: p.Offset, Epoch: from.Epoch}
			if outcome, _ := e.local.Offer(at, p); outcome != fanout.Delivered && outcome != fanout.Stale {
				sh.interrupt(name, "history did not continue the live stream")
				return false
			}
			from = at
		}
	}
	return true
}

// interrupt ends the channel's subscriptions on this node, telling their
// clients to subscribe again and recover what they can.
func (sh *shard) interrupt(name, why string) {
	sh.e.opts.Logger.Warn("ending a channel's subscriptions on this node so that their clients recover", "channel", name, "why", why)
	sh.e.local.Interrupt(name, service.ReasonInterrupted)
}

// decodeEvent reads "EPOCH OFFSET TIME BODY".
func decodeEvent(name, s string) (service.Position, *service.Publication, error) {
	parts := strings.SplitN(s, " ", 4)
	if len(parts) != 4 {
		return service.Position{}, nil, errors.New("too few fields")
	}
	offset, err1 := strconv.ParseUint(parts[1], 10, 64)
	ms, err2 := strconv.ParseInt(parts[2], 10, 64)
	publisher, data, err3 := decodeBody(parts[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		return service.Position{}, nil, err
	}
	pos := service.Position{Offset: offset, Epoch: parts[0]}
	return pos, &service.Publication{Channel: name, Offset: offset, Data: data, Publisher: publisher, Time: time.UnixMilli(ms)}, nil
}
