package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard/switchboard/service"
)

// presence keeps this node's subscribers listed in Redis: it adds and
// removes them as they come and go, announcing it to the other nodes,
// and renews them all every third of PresenceTTL, so that the members
// of a node that died expire after at most PresenceTTL. One goroutine
// owns it: a subscribe or unsubscribe queues its change and goes on.
type presence struct {
	e    *Engine
	ops  chan presenceOp
	done chan struct{}

	mu       sync.Mutex
	queued   uint64        // ops sent to ops, in their order there
	written  uint64        // ops written, in the same order
	progress chan struct{} // closed, and replaced, as written moves
}

type presenceOp struct {
	join    bool
	channel string
	member  service.Member
}

// presenceQueue bounds the joins and leaves waiting to be written. Past
// it they are dropped: the next renewal lists a dropped join, and a
// dropped leave expires.
const presenceQueue = 4096

// newPresence returns the engine's presence, to be run once the engine
// is whole.
func newPresence(e *Engine) *presence {
	return &presence{e: e, ops: make(chan presenceOp, presenceQueue), done: make(chan struct{}), progress: make(chan struct{})}
}

// joined is fanout's Joined hook.
func (p *presence) joined(channel string, m service.Member) {
	p.queue(presenceOp{join: true, channel: channel, member: m})
}

// leftAll is fanout's Left hook.
func (p *presence) leftAll(channel string, members []service.Member) {
	for _, m := range members {
		p.queue(presenceOp{channel: channel, member: m})
	}
}

func (p *presence) queue(op presenceOp) {
	p.mu.Lock() // so that queued counts ops in their order in the channel
	defer p.mu.Unlock()
	select {
	case p.ops <- op:
		p.queued++
	default:
		p.e.opts.Logger.Debug("presence queue full; a join or leave waits for the renewal or expiry", "channel", op.channel)
	}
}

// wrote counts one op written.
func (p *presence) wrote() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.written++
	close(p.progress)
	p.progress = make(chan struct{})
}

// settled waits until what was queued before the call is written, for
// at most the engine's timeout: a subscribe is answered once its join
// went out, so that a subscriber who joins through another node after
// that reply is not told of it as news.
func (p *presence) settled(ctx context.Context) {
	p.mu.Lock()
	target := p.queued
	p.mu.Unlock()
	t := time.NewTimer(p.e.opts.Timeout)
	defer t.Stop()
	for {
		p.mu.Lock()
		if p.written >= target {
			p.mu.Unlock()
			return
		}
		progress := p.progress
		p.mu.Unlock()
		select {
		case <-progress:
		case <-ctx.Done():
			return
		case <-t.C:
			return
		}
	}
}

// wait returns once run has ended, after Close cancelled its context.
func (p *presence) wait() { <-p.done }

func (p *presence) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.e.opts.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.drain()
			return
		case op := <-p.ops:
			p.write(ctx, op)
			p.wrote()
		case <-t.C:
			p.renew(ctx)
		}
	}
}

// drain writes what is queued when the engine closes, within a second:
// the leaves of the connections that closed as the node shut down.
func (p *presence) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case op := <-p.ops:
			p.write(ctx, op)
			p.wrote()
		default:
			return
		}
	}
}

// write adds or removes one member and announces it.
func (p *presence) write(ctx context.Context, op presenceOp) {
	e := p.e
	k := e.keys(op.channel)
	b, _ := json.Marshal(wireOf(op.member))
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	var err error
	if op.join {
		err = presenceScript.Run(ctx, e.rdb, []string{k.presence, k.expiries},
			e.opts.PresenceTTL.Milliseconds(), k.events, e.opts.Node, op.member.ConnectionID, b).Err()
	} else {
		err = leaveScript.Run(ctx, e.rdb, []string{k.presence, k.expiries},
			op.member.ConnectionID, k.events, "l "+e.opts.Node+" "+string(b)).Err()
	}
	if err != nil && !isNil(err) {
		e.opts.Logger.Debug("presence write failed; the renewal or expiry sees to it", "channel", op.channel, "err", err)
	}
}

// renew lists every local member again with a new expiry, one script
// per channel.
func (p *presence) renew(ctx context.Context) {
	e := p.e
	e.local.Members(func(channel string, members []service.Member) {
		if ctx.Err() != nil {
			return
		}
		k := e.keys(channel)
		args := []any{e.opts.PresenceTTL.Milliseconds(), k.events, "-"}
		for _, m := range members {
			b, _ := json.Marshal(wireOf(m))
			args = append(args, m.ConnectionID, b)
		}
		cctx, cancel := e.ctx(ctx)
		defer cancel()
		if err := presenceScript.Run(cctx, e.rdb, []string{k.presence, k.expiries}, args...).Err(); err != nil && !isNil(err) {
			e.opts.Logger.Debug("presence renewal failed", "channel", channel, "err", err)
		}
	})
}

// Presence implements service.Engine: the members every node keeps
// alive, longest subscribed first.
func (e *Engine) Presence(ctx context.Context, name string) ([]service.Member, error) {
	if err := e.refuse(); err != nil {
		return nil, err
	}
	k := e.keys(name)
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	res, err := membersScript.Run(ctx, e.rdb, []string{k.presence, k.expiries}, "", k.events).Slice()
	if err != nil {
		return nil, e.unavailable("presence", err)
	}
	members := make([]service.Member, 0, max(len(res)-1, 0))
	for _, v := range res[min(1, len(res)):] {
		s, _ := v.(string)
		var m wireMember
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("presence of %q: %w", name, err)
		}
		members = append(members, m.member())
	}
	service.SortMembers(members)
	return members, nil
}

// wireMember is a member as presence keeps it in Redis.
type wireMember struct {
	User  string `json:"u"`
	Conn  string `json:"c"`
	Since int64  `json:"s"` // Unix ms
}

func wireOf(m service.Member) wireMember {
	return wireMember{User: m.User, Conn: m.ConnectionID, Since: m.Since.UnixMilli()}
}

func (w wireMember) member() service.Member {
	return service.Member{User: w.User, ConnectionID: w.Conn, Since: time.UnixMilli(w.Since)}
}
