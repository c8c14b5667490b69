package client

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Subscription is a client's subscription to one channel. Next yields its
// publications once each, in offset order, across reconnections.
//
// The subscription keeps the position of the last publication it queued.
// It takes a publication only when its offset is the next one: an older
// one is a repeat and is dropped; a newer one, or one that finds the
// reader's buffer full, means a gap, and the subscription stops taking
// live publications until its reader has caught up, then subscribes again
// from its position, which recovers the gap from the channel's history.
// The same happens after a reconnection. Only what the history no longer
// holds is lost, and Next says so with a *LostError.
type Subscription struct {
	c       *Client
	channel string
	items   chan item     // the reader's buffer
	first   chan error    // cap 1: the outcome of the first subscribe
	done    chan struct{} // closed when the subscription ends

	mu    sync.Mutex
	state subState // its moves are listed at subState
	sock  *socket  // the socket a subscribe was made on
	// have says pos is meaningful. It is not part of state: a
	// subscription given no since has no position until its first
	// subscribe is answered, whichever states it goes through meanwhile.
	have      bool
	pos       Position      // of the last publication queued
	pending   []Publication // live publications that came before the subscribe reply was handled
	delivered Position      // what Next returned last
	// answered says first has been sent to, by the first subscribe's
	// reply or by the end. It is not part of state either: it holds
	// across the states that every reconnection goes through again.
	answered bool
	err      error // why it ended
}

// item is what Next returns: a publication, or news of lost ones.
type item struct {
	pub   Publication
	epoch string
	lost  *LostError
}

// Subscribe subscribes to channel, from since when it is not nil (and
// recovers what was published after it), or else from now. It returns
// once the server has answered, with the server's *Error if it refused,
// or a *ConnectionError if it could not be reached or refused the token,
// or TokenFunc's error, wrapped;
// if ctx ends first, it closes the subscription and returns ctx's error.
// Afterwards the subscription survives lost connections. A client has at
// most one subscription per channel: a second one is an error, as is any
// Subscribe after Close (ErrClosed).
func (c *Client) Subscribe(ctx context.Context, channel string, since *Position) (*Subscription, error) {
	s := newSubscription(c, channel, since)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := c.subs[channel]; ok {
		c.mu.Unlock()
		return nil, fmt.Errorf("already subscribed to %q", channel)
	}
	c.subs[channel] = s
	if !c.started {
		c.started = true
		go c.supervise()
	}
	c.mu.Unlock()
	c.kick()

	select {
	case err := <-s.first:
		if err != nil {
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

func newSubscription(c *Client, channel string, since *Position) *Subscription {
	s := &Subscription{
		c: c, channel: channel,
		items: make(chan item, c.opts.Buffer),
		first: make(chan error, 1),
		done:  make(chan struct{}),
	}
	if since != nil {
		s.have, s.pos, s.delivered = true, *since, *since
	}
	return s
}

// Channel is the channel subscribed to.
func (s *Subscription) Channel() string { return s.channel }

// Position is where the reader is: the position of the publication Next
// returned last, or where a LostError said it goes on from. Before Next
// has returned either, it is the since given to Subscribe, or without one
// the channel's position when it was subscribed. A program that keeps it
// can subscribe from it after a restart of its own, and miss nothing that
// the channel's history still holds.
func (s *Subscription) Position() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// Next returns the next publication, waiting for it until ctx ends. After
// lost publications, it returns a *LostError once, and then goes on with
// the publications after them. The error of ctx leaves the subscription
// as it is; any other error ends it: ErrClosed after Close (the
// Subscription's or the Client's), a *ConnectionError wrapping
// ErrUnauthorized when the server refused the token (or it expired, and
// there is no TokenFunc to replace it) or ErrDisconnected when an admin
// cut the user off, or the server's *Error if it refused to subscribe
// again. After those last two, Next
// first returns the publications queued before the end; after Close, it
// drops them.
func (s *Subscription) Next(ctx context.Context) (Publication, error) {
	select {
	case <-s.done:
		if s.err == ErrClosed {
			return Publication{}, ErrClosed // as asked: nothing more
		}
	default:
	}
	select {
	case it := <-s.items:
		return s.deliver(it)
	default:
	}
	select {
	case it := <-s.items:
		return s.deliver(it)
	case <-s.done:
		// What was queued before the end is still whole.
		select {
		case it := <-s.items:
			return s.deliver(it)
		default:
		}
		return Publication{}, s.err
	case <-ctx.Done():
		return Publication{}, ctx.Err()
	}
}

func (s *Subscription) deliver(it item) (Publication, error) {
	s.mu.Lock()
	caughtUp := s.broken() && len(s.items) == 0
	if it.lost != nil {
		s.delivered = it.lost.Resumed
	} else {
		s.delivered = Position{Offset: it.pub.Offset, Epoch: it.epoch}
	}
	s.mu.Unlock()
	if caughtUp {
		s.c.kick()
	}
	if it.lost != nil {
		return Publication{}, it.lost
	}
	return it.pub, nil
}

// Close ends the subscription, and, if it is subscribed at the time, tells
// the server, waiting up to a second for its answer. Next then returns
// ErrClosed. Closing again does nothing; the error is always nil.
func (s *Subscription) Close() error {
	sock, live := s.c.endSubscription(s, ErrClosed)
	if live {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		sock.call(ctx, "channelUnsubscribe", channelParams{s.channel}, nil)
	}
	return nil
}

type channelParams struct {
	Channel string `json:"channel"`
}

// end ends s with err, reporting the socket it was subscribed on, if any.
func (s *Subscription) end(err error) (sock *socket, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateEnded {
		return nil, false
	}
	live = s.subscribedOn()
	s.to(stateEnded)
	s.err = err
	close(s.done)
	if !s.answered {
		s.answered = true
		s.first <- err
	}
	return s.sock, live
}

// offer takes a live publication that arrived on sock.
func (s *Subscription) offer(sock *socket, p Publication) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock != sock {
		return
	}
	switch s.state {
	case stateSubscribing, stateStale:
		if len(s.pending) < cap(s.items) {
			s.pending = append(s.pending, p)
		} else {
			s.to(stateStale)
		}
	case stateLive, stateBroken:
		s.accept(p)
	}
}

// accept queues p if it is the next publication. s is live or broken,
// and s.mu is held.
func (s *Subscription) accept(p Publication) {
	switch {
	case s.state == stateBroken || p.Offset <= s.pos.Offset:
	case p.Offset != s.pos.Offset+1 || len(s.items) == cap(s.items):
		s.breakOff()
	default:
		s.items <- item{pub: p, epoch: s.pos.Epoch}
		s.pos.Offset = p.Offset
	}
}

// breakOff stops taking live publications until s is subscribed again.
// s is live or broken, and s.mu is held.
func (s *Subscription) breakOff() {
	s.to(stateBroken)
	if len(s.items) == 0 {
		s.c.kick()
	}
}

// unsubscribed is the server ending the subscription on sock.
func (s *Subscription) unsubscribed(sock *socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock != sock {
		return
	}
	switch s.state {
	case stateLive, stateBroken:
		s.breakOff()
	case stateSubscribing, stateStale:
		// jsonrpc2 reads on while the reply it has just read is being
		// handled, so this may end the subscription being made: make it
		// again. If it was the old one's, that costs one subscribe.
		s.to(stateStale)
	}
}

// starting reports whether s is due a channelSubscribe on sock, and
// if so marks it as under way, returning the position to recover from
// and whether s must first be unsubscribed there.
func (s *Subscription) starting(sock *socket) (due bool, since *Position, resubscribe bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.state == stateIdle, s.state == stateBehind:
	case s.state == stateBroken && s.sock == sock:
		resubscribe = true
	default:
		return false, nil, false
	}
	if s.broken() && len(s.items) > 0 {
		return false, nil, false // wait for the reader to catch up
	}
	if s.have {
		p := s.pos
		since = &p
	}
	s.to(stateSubscribing)
	s.sock, s.pending = sock, nil
	return true, since, resubscribe
}

// waiting reports whether Subscribe still waits for s's first subscribe.
func (s *Subscription) waiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.answered
}

// detach is s losing its socket: it is to be subscribed again on the next.
func (s *Subscription) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateEnded:
		return
	case stateSubscribing, stateStale, stateLive:
		s.to(stateIdle)
	case stateBroken:
		s.to(stateBehind)
	}
	s.sock, s.pending = nil, nil
}

// subscribed applies the answer to a channelSubscribe made from since.
// It reports false when s ended meanwhile.
func (s *Subscription) subscribed(since *Position, res subscribed) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateSubscribing && s.state != stateStale {
		return false
	}
	stale := s.state == stateStale
	s.to(stateLive)
	if !s.answered {
		s.answered = true
		s.first <- nil
	}
	s.recover(since, res)
	pending := s.pending
	s.pending = nil
	for _, p := range pending {
		s.accept(p)
	}
	if stale {
		s.breakOff()
	}
	return true
}

// recover takes what a subscribe reply recovered. s.mu is held.
func (s *Subscription) recover(since *Position, res subscribed) {
	now := Position{Offset: res.Offset, Epoch: res.Epoch}
	if since == nil {
		s.have, s.pos = true, now
		if len(s.items) == 0 && s.delivered == (Position{}) {
			s.delivered = now
		}
		return
	}
	pubs := res.Publications
	// Without everything, the reply may still hold the oldest part of
	// it (a recovery stops at 1000 publications, or 4 MiB): take that,
	// and come back for the rest.
	whole := res.Recovered || res.Epoch == since.Epoch && len(pubs) > 0 && pubs[0].Offset == since.Offset+1
	if !whole {
		resumed := now
		switch {
		case res.Epoch != since.Epoch:
			// Another history: all of it is new to the reader, and what
			// is still kept comes with the next subscribe.
			resumed.Offset = 0
		case len(pubs) > 0:
			resumed.Offset = pubs[0].Offset - 1
		}
		if len(s.items) == cap(s.items) {
			// No room to say so: keep the old position and try again.
			s.breakOff()
			return
		}
		s.items <- item{lost: &LostError{Channel: s.channel, After: *since, Resumed: resumed}}
		s.pos = resumed
	}
	for _, p := range pubs {
		s.accept(p)
	}
	if s.state != stateBroken && s.pos.Offset < res.Offset {
		s.breakOff()
	}
}
