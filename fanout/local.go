// Package fanout carries channels' events to the subscribers on this
// node: the channel → receivers table, joins and leaves, the presence of
// local subscribers, and the delivery of committed changes in order.
// Every engine needs it, whatever keeps its history: the embedded engine
// feeds it what its log commits (Published); the Redis engine offers it
// what Pub/Sub delivers (Offer), which may repeat, skip or change epoch,
// subscribing to a channel there only while this node has subscribers to
// it (see Hooks).
package fanout

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/service"
)

// Hooks tell an engine when a channel's local subscribers begin and end,
// as centrifuge subscribes its broker on a channel's first local
// subscriber and unsubscribes it on the last. Both run with the
// channel's lock held, so they alternate for a channel, and no change
// is delivered while First runs: a broker engine subscribes there, then
// reads the channel's position from the broker, and every change it
// delivers after that position reaches the subscriber. They lock only
// their own channel, but whoever delivers to that channel meanwhile waits
// for them, and an engine that delivers every channel from one goroutine
// waits with all of them: a broker engine should deliver each channel on
// its own, or keep First short. They must not call back into Local for
// the channel. Zero fields take DefaultHooks' values.
type Hooks struct {
	// First runs before a channel without local subscribers gets one,
	// with the position Local knows; the channel goes on from the one it
	// returns, which the subscriber is given. An error refuses the
	// subscription.
	First func(ctx context.Context, channel string, pos service.Position) (service.Position, error)
	// Last runs once a channel's last local subscriber has gone, by
	// Unsubscribe or by the channel's removal.
	Last func(channel string)
	// Joined and Left run, with the channel's lock held, as a member
	// joins (Subscribe) or as members leave (Unsubscribe, or the ends of
	// Removed, RemovedElsewhere and Interrupt, before Last): an engine
	// that lists presence elsewhere queues the change there, in the
	// order it happened here. They must not block.
	Joined func(channel string, m service.Member)
	Left   func(channel string, members []service.Member)
}

// DefaultHooks do nothing: for an engine that tells Local of every
// change, whether or not anyone here listens, and whose channels all
// start at offset 0 in the epoch given to New.
var DefaultHooks = Hooks{
	First:  func(_ context.Context, _ string, pos service.Position) (service.Position, error) { return pos, nil },
	Last:   func(string) {},
	Joined: func(string, service.Member) {},
	Left:   func(string, []service.Member) {},
}

func (h Hooks) withDefaults() Hooks {
	if h.First == nil {
		h.First = DefaultHooks.First
	}
	if h.Last == nil {
		h.Last = DefaultHooks.Last
	}
	if h.Joined == nil {
		h.Joined = DefaultHooks.Joined
	}
	if h.Left == nil {
		h.Left = DefaultHooks.Left
	}
	return h
}

// Local is the subscribers on this node of every channel, and each
// channel's position as far as they have been told.
type Local struct {
	epoch    string // of channels never removed
	hooks    Hooks
	brokered bool // hooks.First is set: see idle

	mu       sync.Mutex
	channels map[string]*channel
}

// channel is a channel's live state. Its position moves only as the
// engine reports committed changes, under mu, which Subscribe also
// holds: a receiver that joins sees every publication after the
// position it was given, and none up to it.
type channel struct {
	mu        sync.Mutex
	pos       service.Position
	last      time.Time // the time of the publication at pos, when Offer delivered it
	subs      map[service.Receiver]*subscription
	listeners int  // subscriptions that asked for joins and leaves
	forgotten bool // dropped from the map; see lock
}

type subscription struct {
	member    service.Member
	joinLeave bool
	after     uint64 // Offer skips offsets up to it; see SubscribeAfter
}

// New returns the table for channels whose committed positions are
// known, the others being at offset 0 in epoch.
func New(epoch string, known map[string]service.Position, hooks Hooks) *Local {
	l := &Local{epoch: epoch, hooks: hooks.withDefaults(), brokered: hooks.First != nil, channels: make(map[string]*channel, len(known))}
	for name, p := range known {
		l.channels[name] = newChannel(p)
	}
	return l
}

func newChannel(pos service.Position) *channel {
	return &channel{pos: pos, subs: map[service.Receiver]*subscription{}}
}

// lock returns the named channel's state, created if need be, locked.
// forget may drop the state between the map's lookup and the lock; the
// caller would then change state nobody holds, so lock looks again. It
// does not hold l.mu while it waits for the channel: one busy channel
// must not hold up the others.
func (l *Local) lock(name string) *channel {
	for {
		l.mu.Lock()
		ch := l.channels[name]
		if ch == nil {
			ch = newChannel(service.Position{Epoch: l.epoch})
			l.channels[name] = ch
		}
		l.mu.Unlock()
		ch.mu.Lock()
		if !ch.forgotten {
			return ch
		}
		ch.mu.Unlock()
	}
}

// find returns the named channel's state, or nil, without creating it.
func (l *Local) find(name string) *channel {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.channels[name]
}

// Published moves the channel to pos and delivers p, committed at pos,
// to its subscribers. Changes must come in commit order; receivers get
// them in that order. A channel without state here (no subscribers) is
// left without: its engine has its position, and hands it to the next
// first subscriber through First.
func (l *Local) Published(pos service.Position, p *service.Publication) {
	ch := l.find(p.Channel)
	if ch == nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.forgotten {
		return
	}
	ch.pos = pos
	ev := &service.Event{Kind: service.EventPublication, Channel: p.Channel, Publication: p}
	for r := range ch.subs {
		r.Receive(ev)
	}
}

// Outcome is what Offer did with a publication.
type Outcome int

const (
	Delivered  Outcome = iota // it was the channel's next: delivered
	Stale                     // at or below the channel's offset, or nobody here listens: dropped
	Gap                       // beyond the next: the ones between are missing
	OtherEpoch                // of another epoch than the subscribers were given
)

// Offer delivers p, at pos, when it is the channel's next publication, as
// Published does, and otherwise tells why not. It is for an engine that
// hears of publications from a broker, which may repeat some (a live
// message after the subscriber's position was read), lose some (a dropped
// broker connection) or start a new epoch (a broker that lost the
// channel's data): on Gap the engine reads the missing ones from history
// and offers them first; on OtherEpoch it ends the subscriptions with
// Interrupt. Without local subscribers every publication is Stale.
func (l *Local) Offer(pos service.Position, p *service.Publication) (Outcome, service.Position) {
	ch := l.find(p.Channel)
	if ch == nil {
		return Stale, service.Position{}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	switch {
	case len(ch.subs) == 0 || ch.forgotten:
		return Stale, ch.pos
	case pos.Epoch != ch.pos.Epoch:
		return OtherEpoch, ch.pos
	case pos.Offset <= ch.pos.Offset:
		return Stale, ch.pos
	case pos.Offset > ch.pos.Offset+1:
		return Gap, ch.pos
	}
	ch.pos, ch.last = pos, p.Time
	ev := &service.Event{Kind: service.EventPublication, Channel: p.Channel, Publication: p}
	for r, s := range ch.subs {
		if p.Offset > s.after {
			r.Receive(ev)
		}
	}
	return Delivered, pos
}

// Removed moves the channel to pos, its new epoch at offset 0, and ends
// its subscriptions with EventUnsubscribed and ReasonRemoved. A removal
// it knows of already, to the same epoch, changes nothing: an engine may
// hear of one twice, the second time after new subscribers joined. Like
// Published, it keeps no state for a channel without local subscribers.
func (l *Local) Removed(name string, pos service.Position) {
	ch := l.find(name)
	if ch == nil {
		return
	}
	ch.mu.Lock()
	if !ch.forgotten && ch.pos.Epoch != pos.Epoch {
		ch.pos = pos
		l.end(ch, name, service.ReasonRemoved)
	}
	l.unlock(name, ch)
}

// RemovedElsewhere is Removed for an engine that hears of removals from
// a broker, for every channel.
func (l *Local) RemovedElsewhere(name string, pos service.Position) {
	l.Removed(name, pos)
}

// Interrupt ends the channel's subscriptions with EventUnsubscribed and
// reason, keeping its position: an engine that cannot deliver the
// channel's publications in order tells its subscribers to subscribe
// again and recover.
func (l *Local) Interrupt(name, reason string) {
	ch := l.find(name)
	if ch == nil {
		return
	}
	ch.mu.Lock()
	l.end(ch, name, reason)
	l.unlock(name, ch)
}

// end ends ch's subscriptions. ch.mu is held.
func (l *Local) end(ch *channel, name, reason string) {
	if len(ch.subs) == 0 {
		return
	}
	ev := &service.Event{Kind: service.EventUnsubscribed, Channel: name, Reason: reason}
	members := make([]service.Member, 0, len(ch.subs))
	for r, s := range ch.subs {
		r.Receive(ev)
		members = append(members, s.member)
	}
	clear(ch.subs)
	ch.listeners = 0
	l.hooks.Left(name, members)
	l.hooks.Last(name)
}

// Announce tells the channel's local subscriptions that asked for joins
// and leaves that m, a subscriber on another node, joined (EventJoin) or
// left (EventLeave).
func (l *Local) Announce(name string, kind service.EventKind, m service.Member) {
	ch := l.find(name)
	if ch == nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.announce(kind, name, m)
}

// Has reports whether the connection is subscribed to the channel here.
func (l *Local) Has(name, connectionID string) bool {
	ch := l.find(name)
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, s := range ch.subs {
		if s.member.ConnectionID == connectionID {
			return true
		}
	}
	return false
}

// Seen returns the furthest position this node has given out for the
// channel (its position, or beyond it where SubscribeAfter started a
// subscriber ahead of what was delivered), and the time of the
// publication Offer last delivered, zero if none: what an engine checks
// its broker against, to tell whether the broker went back.
func (l *Local) Seen(name string) (service.Position, time.Time) {
	ch := l.find(name)
	if ch == nil {
		return service.Position{Epoch: l.epoch}, time.Time{}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	pos := ch.pos
	for _, s := range ch.subs {
		pos.Offset = max(pos.Offset, s.after)
	}
	return pos, ch.last
}

// Members calls fn with each channel that has local subscribers and
// their members, for an engine that keeps presence in a broker alive.
func (l *Local) Members(fn func(channel string, members []service.Member)) {
	l.mu.Lock()
	names := make([]string, 0, len(l.channels))
	for name := range l.channels {
		names = append(names, name)
	}
	l.mu.Unlock()
	for _, name := range names {
		if members := l.Presence(name); len(members) > 0 {
			fn(name, members)
		}
	}
}

// Position returns the channel's position without creating its state.
func (l *Local) Position(name string) service.Position {
	ch := l.find(name)
	if ch == nil {
		return service.Position{Epoch: l.epoch}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.pos
}

// Subscribe joins r to the channel and returns the channel's position:
// r receives every change after it. See service.Engine.
func (l *Local) Subscribe(ctx context.Context, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
	return l.SubscribeAfter(ctx, name, r, joinLeave, service.Position{})
}

// SubscribeAfter is Subscribe for an engine whose broker may be ahead of
// what this node has delivered: at, read from the broker before the
// call, is where r starts when the channel is behind it in the same
// epoch. Offer then delivers r only what comes after at, and Subscribe
// returns at, so that a client that saw at through another node is not
// told that history went back. A first subscriber starts where First
// says, which is read later and so is never behind at.
func (l *Local) SubscribeAfter(ctx context.Context, name string, r service.Receiver, joinLeave bool, at service.Position) (service.Position, error) {
	ch := l.lock(name)
	pos, err := l.join(ctx, ch, name, r, joinLeave)
	if err == nil && at.Epoch == pos.Epoch && at.Offset > pos.Offset {
		ch.subs[r].after, pos = at.Offset, at
	}
	// A channel made for a subscription that First refused is forgotten
	// like any idle one.
	idle := err != nil && l.idle(ch)
	ch.mu.Unlock()
	if idle {
		l.forget(name, ch)
	}
	return pos, err
}

// join adds r to ch. ch.mu is held.
func (l *Local) join(ctx context.Context, ch *channel, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
	if _, ok := ch.subs[r]; ok {
		return service.Position{}, service.Errorf(service.ECONFLICT, "already subscribed to %q", name)
	}
	if len(ch.subs) == 0 {
		pos, err := l.hooks.First(ctx, name, ch.pos)
		if err != nil {
			return service.Position{}, err
		}
		ch.pos, ch.last = pos, time.Time{}
	}
	m := r.Member()
	ch.announce(service.EventJoin, name, m)
	ch.subs[r] = &subscription{member: m, joinLeave: joinLeave}
	if joinLeave {
		ch.listeners++
	}
	l.hooks.Joined(name, m)
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

// Unsubscribe takes r off the channel. It reports false when r was not
// subscribed.
func (l *Local) Unsubscribe(name string, r service.Receiver) bool {
	ch := l.find(name)
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
		l.hooks.Left(name, []service.Member{s.member})
		if len(ch.subs) == 0 {
			l.hooks.Last(name)
		}
	}
	l.unlock(name, ch)
	return ok
}

// idle reports that the channel has neither history nor subscribers, nor
// an epoch of its own: its state says nothing that a new one would not.
// With a First hook, the engine (its broker, or the embedded engine's
// sequencer) has the position, and First reads it again for the next
// subscriber: a channel without subscribers is idle. ch.mu is held.
func (l *Local) idle(ch *channel) bool {
	return len(ch.subs) == 0 && (l.brokered || ch.pos.Offset == 0 && ch.pos.Epoch == l.epoch)
}

// unlock unlocks ch, and forgets it if it is idle.
func (l *Local) unlock(name string, ch *channel) {
	idle := l.idle(ch)
	ch.mu.Unlock()
	if idle {
		l.forget(name, ch)
	}
}

// forget drops the state of an idle channel, so that subscribing to
// made-up names does not fill memory.
func (l *Local) forget(name string, ch *channel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if l.channels[name] == ch && l.idle(ch) {
		delete(l.channels, name)
		ch.forgotten = true
	}
}

// Presence lists the channel's local subscribers, longest subscribed
// first.
func (l *Local) Presence(name string) []service.Member {
	members := []service.Member{}
	ch := l.find(name)
	if ch == nil {
		return members
	}
	ch.mu.Lock()
	for _, s := range ch.subs {
		members = append(members, s.member)
	}
	ch.mu.Unlock()
	service.SortMembers(members)
	return members
}

// Channels lists channels as service.Engine's Channels does, from what
// this node knows.
func (l *Local) Channels(prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool) {
	type named struct {
		name string
		ch   *channel
	}
	var found []named
	l.mu.Lock()
	for name, ch := range l.channels {
		if strings.HasPrefix(name, prefix) {
			found = append(found, named{name, ch})
		}
	}
	l.mu.Unlock()
	// Permissions are matched without l.mu: every channel's commits and
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
			return infos, true
		}
		infos = append(infos, info)
	}
	return infos, false
}
