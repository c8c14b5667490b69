package api

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// subscriptions keeps each WebSocket session's channel subscriptions, and
// ends them when the session's connection ends.
type subscriptions struct {
	hub *service.Hub
	max int // per session
	// pending and pendingBytes bound the notifications a subscription
	// may hold back; see subscriber.
	pending, pendingBytes int

	mu      sync.Mutex
	clients map[*rpc.Session]*client
}

// client is one session's subscriptions.
type client struct {
	mu     sync.Mutex
	subs   map[string]*subscriber
	closed bool // the connection ended; no more subscriptions
}

func newSubscriptions(hub *service.Hub, cfg HubConfig) *subscriptions {
	cfg = cfg.withDefaults()
	return &subscriptions{hub: hub, max: cfg.MaxSubscriptions, pending: cfg.SendQueue, pendingBytes: cfg.SendQueueBytes,
		clients: map[*rpc.Session]*client{}}
}

// client returns sess's subscriptions, arranging for them to end with
// its connection.
func (ss *subscriptions) client(sess *rpc.Session) *client {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c := ss.clients[sess]
	if c == nil {
		c = &client{subs: map[string]*subscriber{}}
		ss.clients[sess] = c
		sess.AfterClose(func() { ss.closed(sess, c) })
	}
	return c
}

// closed ends the subscriptions of a session whose connection ended.
func (ss *subscriptions) closed(sess *rpc.Session, c *client) {
	ss.mu.Lock()
	delete(ss.clients, sess)
	ss.mu.Unlock()
	c.mu.Lock()
	c.closed = true
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for name, s := range subs {
		ss.hub.Unsubscribe(name, s)
	}
}

// subscribe subscribes sess to channel. The subscription holds its
// notifications back until the reply that starts it is queued: see
// subscriber.start, which the result's AfterReply calls.
func (ss *subscriptions) subscribe(ctx context.Context, sess *rpc.Session, channel string, since *service.Position, joinLeave bool) (*subscriber, service.Subscribed, error) {
	c := ss.client(sess)
	s := &subscriber{
		sess:    sess,
		client:  c,
		channel: channel,
		member:  service.Member{User: sess.Caller.User, ConnectionID: sess.ID, Since: time.Now().UTC()},
		limit:   ss.pending,
		bytes:   ss.pendingBytes,
	}
	// The hub may call s.Receive at once, and Receive takes c.mu, so c.mu
	// is not held across the hub's call: the place is taken first.
	if err := c.reserve(channel, s, ss.max); err != nil {
		return nil, service.Subscribed{}, err
	}
	res, err := ss.hub.Subscribe(ctx, sess.Caller, channel, since, s, joinLeave)
	if err != nil {
		c.drop(channel, s)
		return nil, service.Subscribed{}, err
	}
	// The connection may have ended, or the client unsubscribed, while
	// the hub subscribed us: either took s off the client before the hub
	// had it, and so could not take it off the hub.
	c.mu.Lock()
	closed, kept := c.closed, c.subs[channel] == s
	c.mu.Unlock()
	switch {
	case closed:
		ss.hub.Unsubscribe(channel, s)
		return nil, service.Subscribed{}, service.Errorf(service.EUNAVAILABLE, "the connection is closing")
	case !kept:
		ss.hub.Unsubscribe(channel, s)
		return nil, service.Subscribed{}, service.Errorf(service.ECONFLICT, "unsubscribed from %q while subscribing", channel)
	}
	return s, res, nil
}

// unsubscribe ends sess's subscription to channel.
func (ss *subscriptions) unsubscribe(sess *rpc.Session, channel string) error {
	c := ss.client(sess)
	c.mu.Lock()
	s := c.subs[channel]
	delete(c.subs, channel)
	c.mu.Unlock()
	if s == nil {
		return service.Errorf(service.ENOTFOUND, "not subscribed to %q", channel)
	}
	ss.hub.Unsubscribe(channel, s)
	s.end()
	return nil
}

// reserve takes the client's place for s, a subscription to channel, if
// it may hold one more of at most max.
func (c *client) reserve(channel string, s *subscriber, max int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return service.Errorf(service.EUNAVAILABLE, "the connection is closing")
	case c.subs[channel] != nil:
		return service.Errorf(service.ECONFLICT, "already subscribed to %q", channel)
	case len(c.subs) >= max:
		return service.Errorf(service.ELIMIT, "a connection may hold at most %d subscriptions", max)
	}
	c.subs[channel] = s
	return nil
}

// drop forgets the subscription s, if it is still the client's.
func (c *client) drop(channel string, s *subscriber) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[channel] == s {
		delete(c.subs, channel)
	}
}

// subscriber is one subscription of a session: the hub's Receiver. Until
// start it holds notifications back, at most limit of them and bytes of
// their frames, so that none reaches the client before the subscribe
// reply; beyond that the client is treated as a slow consumer.
type subscriber struct {
	sess         *rpc.Session
	client       *client
	channel      string
	member       service.Member
	limit, bytes int

	mu        sync.Mutex
	started   bool
	ended     bool // unsubscribed: nothing more is sent, held or not
	held      []rpc.Notification
	heldBytes int
}

// Member implements service.Receiver.
func (s *subscriber) Member() service.Member { return s.member }

// Receive implements service.Receiver.
func (s *subscriber) Receive(e *service.Event) {
	n, ok := e.Wire(notificationOf).(rpc.Notification)
	if !ok {
		return // cannot happen: events hold only values that came in as JSON
	}
	if e.Kind == service.EventUnsubscribed {
		s.client.drop(s.channel, s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended:
		return
	case s.started:
		s.sess.Notify(n) // a full queue closes the connection
		return
	}
	if len(s.held) >= s.limit || s.heldBytes >= s.bytes {
		s.sess.CloseSlowConsumer()
		return
	}
	s.held = append(s.held, n)
	s.heldBytes += n.Size()
}

// start sends what was held back and lets later notifications through.
func (s *subscriber) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	if s.ended {
		return
	}
	for _, n := range s.held {
		if s.sess.Notify(n) != nil {
			break
		}
	}
	s.held, s.heldBytes = nil, 0
}

// end stops the subscription's notifications, those held back included:
// none may follow the unsubscribe reply, even when the subscribe reply is
// still on its way.
func (s *subscriber) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.held, s.heldBytes = nil, 0
}
