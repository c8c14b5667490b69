// Package embedded is the engine a single Switchboard node runs on its
// own: history in a durable log (SQLite), fan-out and presence in the
// process.
package embedded

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/switchboard/switchboard/service"
)

// Log is the durable history the engine fans out from: sqlite.Store.
type Log interface {
	Append(ctx context.Context, p service.Publication, key string) (service.Published, error)
	Read(ctx context.Context, channel string, q service.HistoryQuery) ([]service.Publication, error)
	Remove(ctx context.Context, channel string) (service.Position, error)
	// Positions returns every known channel's committed position; it is
	// called before the first Append.
	Positions() map[string]service.Position
	// Epoch is the epoch of channels that were never removed.
	Epoch() string
	// Watch sets the function told of each committed change, in order.
	Watch(f func(channel string, pos service.Position, p *service.Publication))
}

// Engine implements service.Engine over a Log.
type Engine struct {
	log Log

	mu       sync.Mutex
	channels map[string]*channel
}

// channel is a channel's live state. Its position moves only as the log
// reports commits, under mu, which fan-out also holds: a receiver that
// joins sees every publication after the position it was given.
type channel struct {
	mu        sync.Mutex
	pos       service.Position
	subs      map[service.Receiver]*subscription
	listeners int  // subscriptions that asked for joins and leaves
	forgotten bool // dropped from the engine's map; see lock
}

type subscription struct {
	member    service.Member
	joinLeave bool
}

var _ service.Engine = (*Engine)(nil)

// New returns an engine over log, which it watches from now on. Call it
// before anything is appended to log.
func New(log Log) *Engine {
	pos := log.Positions()
	e := &Engine{log: log, channels: make(map[string]*channel, len(pos))}
	for name, p := range pos {
		e.channels[name] = newChannel(p)
	}
	log.Watch(e.committed)
	return e
}

func newChannel(pos service.Position) *channel {
	return &channel{pos: pos, subs: map[service.Receiver]*subscription{}}
}

// lock returns the named channel's state, created if need be, locked.
// forget may drop the state between the map's lookup and the lock; the
// caller would then change state nobody holds, so lock looks again. It
// does not hold e.mu while it waits for the channel: one busy channel
// must not hold up the others.
func (e *Engine) lock(name string) *channel {
	for {
		e.mu.Lock()
		ch := e.channels[name]
		if ch == nil {
			ch = newChannel(service.Position{Epoch: e.log.Epoch()})
			e.channels[name] = ch
		}
		e.mu.Unlock()
		ch.mu.Lock()
		if !ch.forgotten {
			return ch
		}
		ch.mu.Unlock()
	}
}

// committed fans out what the log committed.
func (e *Engine) committed(name string, pos service.Position, p *service.Publication) {
	ch := e.lock(name)
	defer ch.mu.Unlock()
	ch.pos = pos
	ev := &service.Event{Kind: service.EventPublication, Channel: name, Publication: p}
	if p == nil { // a removal
		ev = &service.Event{Kind: service.EventUnsubscribed, Channel: name, Reason: service.ReasonRemoved}
	}
	for r := range ch.subs {
		r.Receive(ev)
	}
	if p == nil {
		clear(ch.subs)
		ch.listeners = 0
	}
}

// Publish implements service.Engine.
func (e *Engine) Publish(ctx context.Context, p service.Publication, key string) (service.Published, error) {
	return e.log.Append(ctx, p, key)
}

// position returns the channel's position without creating its state.
func (e *Engine) position(name string) service.Position {
	e.mu.Lock()
	ch := e.channels[name]
	e.mu.Unlock()
	if ch == nil {
		return service.Position{Epoch: e.log.Epoch()}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.pos
}

// History implements service.Engine. The publications read are never
// beyond the position returned with them.
func (e *Engine) History(ctx context.Context, name string, q service.HistoryQuery) (service.History, error) {
	for {
		pos := e.position(name)
		rq := q
		if rq.Before == 0 || rq.Before > pos.Offset+1 {
			rq.Before = pos.Offset + 1
		}
		pubs, err := e.log.Read(ctx, name, rq)
		if err != nil {
			return service.History{}, err
		}
		// A removal between the two reads would pass off the new
		// epoch's publications as the old one's.
		if e.position(name).Epoch == pos.Epoch {
			return service.History{Publications: pubs, Position: pos}, nil
		}
	}
}

// Subscribe implements service.Engine.
func (e *Engine) Subscribe(_ context.Context, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
	ch := e.lock(name)
	defer ch.mu.Unlock()
	if _, ok := ch.subs[r]; ok {
		return service.Position{}, service.Errorf(service.ECONFLICT, "already subscribed to %q", name)
	}
	m := r.Member()
	ch.announce(service.EventJoin, name, m)
	ch.subs[r] = &subscription{member: m, joinLeave: joinLeave}
	if joinLeave {
		ch.listeners++
	}
	return ch.pos, nil
}

// announce tells the subscriptions that asked about joins and leaves
// that m joined or left. ch.mu is held.
func (ch *channel) announce(kind service.EventKind, name string, m service.Member) {
	if ch.listeners == 0 {
		return
	}
	ev := &service.Event{Kind: kind, Channel: name, Member: &m}
	for r, s := range ch.subs {
		if s.joinLeave {
			r.Receive(ev)
		}
	}
}

// Unsubscribe implements service.Engine.
func (e *Engine) Unsubscribe(name string, r service.Receiver) bool {
	e.mu.Lock()
	ch := e.channels[name]
	e.mu.Unlock()
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	s, ok := ch.subs[r]
	if ok {
		delete(ch.subs, r)
		if s.joinLeave {
			ch.listeners--
		}
		ch.announce(service.EventLeave, name, s.member)
	}
	idle := len(ch.subs) == 0 && ch.pos.Offset == 0 && ch.pos.Epoch == e.log.Epoch()
	ch.mu.Unlock()
	if idle {
		e.forget(name, ch)
	}
	return ok
}

// forget drops the state of a channel that has neither history nor
// subscribers, so that subscribing to made-up names does not fill memory.
func (e *Engine) forget(name string, ch *channel) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if e.channels[name] == ch && len(ch.subs) == 0 && ch.pos.Offset == 0 && ch.pos.Epoch == e.log.Epoch() {
		delete(e.channels, name)
		ch.forgotten = true
	}
}

// Presence implements service.Engine.
func (e *Engine) Presence(_ context.Context, name string) ([]service.Member, error) {
	e.mu.Lock()
	ch := e.channels[name]
	e.mu.Unlock()
	members := []service.Member{}
	if ch == nil {
		return members, nil
	}
	ch.mu.Lock()
	for _, s := range ch.subs {
		members = append(members, s.member)
	}
	ch.mu.Unlock()
	slices.SortFunc(members, func(a, b service.Member) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.ConnectionID, b.ConnectionID)
	})
	return members, nil
}

// Channels implements service.Engine.
func (e *Engine) Channels(_ context.Context, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool, error) {
	type named struct {
		name string
		ch   *channel
	}
	var found []named
	e.mu.Lock()
	for name, ch := range e.channels {
		if strings.HasPrefix(name, prefix) {
			found = append(found, named{name, ch})
		}
	}
	e.mu.Unlock()
	// Permissions are matched without e.mu: every channel's commits and
	// subscriptions need it.
	found = slices.DeleteFunc(found, func(f named) bool { return !visible(f.name) })
	slices.SortFunc(found, func(a, b named) int { return strings.Compare(a.name, b.name) })
	infos := make([]service.ChannelInfo, 0, min(len(found), limit))
	for _, f := range found {
		f.ch.mu.Lock()
		info := service.ChannelInfo{Name: f.name, Subscribers: len(f.ch.subs), Offset: f.ch.pos.Offset}
		f.ch.mu.Unlock()
		if info.Offset == 0 && info.Subscribers == 0 {
			continue // removed, and nothing since
		}
		if len(infos) == limit {
			return infos, true, nil
		}
		infos = append(infos, info)
	}
	return infos, false, nil
}

// Remove implements service.Engine.
func (e *Engine) Remove(ctx context.Context, name string) (service.Position, error) {
	return e.log.Remove(ctx, name)
}
