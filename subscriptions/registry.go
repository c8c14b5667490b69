// Package subscriptions keeps the channel subscriptions of each WebSocket
// session: at most so many of them, one per channel, all ended when the
// session's connection ends. A new subscription holds its notifications
// back until the reply to the call that made it is queued (see
// rpc.AfterReply), so that none overtakes the reply.
//
// It is the state behind the channelSubscribe and channelUnsubscribe
// methods, kept out of the api package, which only binds methods to it.
package subscriptions

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// Registry keeps each session's subscriptions to a hub's channels.
//
// The hub may deliver to a receiver during its Subscribe call, and a
// delivery may take the registry's lock (an unsubscribed event drops the
// subscription), so the lock is never held across a call of the hub.
// Subscribing therefore takes three steps, and an unsubscribe or the
// connection's end may come between any two:
//
//  1. reserve: under the lock, check the session's limits and take the
//     channel's place among its subscriptions for the new one;
//  2. subscribe at the hub, without the lock;
//  3. confirm: under the lock, check that the place is still the
//     subscription's and the connection open. Whoever took it away did
//     so before the hub had the subscription, and so could not take it
//     off the hub: subscribe does, and fails.
type Registry struct {
	hub    *service.Hub
	limits Limits
	encode func(*service.Event) any // see New

	// mu guards sessions and everything in it. One lock serves them all:
	// it is taken to subscribe and unsubscribe, rare next to deliveries,
	// which take only their subscription's own.
	mu       sync.Mutex
	sessions map[*rpc.Session]*sessionSubs
}

// New returns a registry of subscriptions to hub's channels. encode
// renders a hub event as the rpc.Notification sent for it, or nil when
// none is; it is called once per event, however many subscriptions
// receive it (service.Event.Wire).
func New(hub *service.Hub, limits Limits, encode func(*service.Event) any) *Registry {
	return &Registry{hub: hub, limits: limits.withDefaults(), encode: encode, sessions: map[*rpc.Session]*sessionSubs{}}
}

// Subscribe subscribes sess to channel. It must be called in the call of
// a method marked rpc.Method.Notifies (rpc.AfterReply panics elsewhere):
// the subscription's notifications follow that call's reply. The handler
// must return no error once Subscribe has succeeded: rpc runs AfterReply
// hooks only after a result, and a subscription never started holds its
// notifications back until the session is closed as a slow consumer.
func (r *Registry) Subscribe(ctx context.Context, sess *rpc.Session, channel string, since *service.Position, joinLeave bool) (service.Subscribed, error) {
	s, res, err := r.subscribe(ctx, sess, channel, since, joinLeave)
	if err != nil {
		return service.Subscribed{}, err
	}
	rpc.AfterReply(ctx, s.start)
	return res, nil
}

// subscribe makes the subscription, which holds its notifications back
// until its start; see Registry for the steps it takes.
func (r *Registry) subscribe(ctx context.Context, sess *rpc.Session, channel string, since *service.Position, joinLeave bool) (*subscription, service.Subscribed, error) {
	s := &subscription{
		reg:     r,
		sess:    sess,
		channel: channel,
		member:  service.Member{User: sess.Caller().User, ConnectionID: sess.ID, Since: time.Now().UTC()},
	}
	if err := r.reserve(s); err != nil {
		return nil, service.Subscribed{}, err
	}
	res, err := r.hub.Subscribe(ctx, sess.Caller(), channel, since, s, joinLeave)
	if err != nil {
		r.drop(s)
		return nil, service.Subscribed{}, err
	}
	if err := r.confirm(s); err != nil {
		r.hub.Unsubscribe(channel, s)
		return nil, service.Subscribed{}, err
	}
	return s, res, nil
}

// reserve takes s's place among its session's subscriptions, if the
// session may hold one more; for the session's first, it arranges for
// them all to end with its connection.
func (r *Registry) reserve(s *subscription) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss := r.sessions[s.sess]
	if ss == nil {
		ss = &sessionSubs{}
		r.sessions[s.sess] = ss
		sess := s.sess
		sess.AfterClose(func() { r.closed(sess, ss) })
	}
	switch most := r.limits.MaxPerSession; {
	case ss.closed:
		return service.Errorf(service.EUNAVAILABLE, "the connection is closing")
	case ss.get(s.channel) != nil:
		return service.Errorf(service.ECONFLICT, "already subscribed to %q", s.channel)
	case ss.len() >= most:
		return service.Errorf(service.ELIMIT, "a connection may hold at most %d subscriptions", most)
	}
	ss.put(s)
	s.owner = ss
	return nil
}

// confirm checks that s, now subscribed at the hub, still has its place:
// the connection may have ended, or the client unsubscribed, meanwhile.
func (r *Registry) confirm(s *subscription) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case s.owner.closed:
		return service.Errorf(service.EUNAVAILABLE, "the connection is closing")
	case s.narrowed:
		return service.Errorf(service.EFORBIDDEN, "not allowed to subscribe to %q: the token was refreshed meanwhile", s.channel)
	case s.owner.get(s.channel) != s:
		return service.Errorf(service.ECONFLICT, "unsubscribed from %q while subscribing", s.channel)
	case !s.sess.Caller().Permissions.CanSubscribe(s.channel):
		// A refresh narrowed the token after the hub checked the old one,
		// and before Narrow could see the subscription.
		s.owner.remove(s.channel)
		return service.Errorf(service.EFORBIDDEN, "not allowed to subscribe to %q: the token was refreshed meanwhile", s.channel)
	}
	return nil
}

// drop forgets s, if it still has its place.
func (r *Registry) drop(s *subscription) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.owner.get(s.channel) == s {
		s.owner.remove(s.channel)
	}
}

// Unsubscribe ends sess's subscription to channel.
func (r *Registry) Unsubscribe(sess *rpc.Session, channel string) error {
	r.mu.Lock()
	var s *subscription
	if ss := r.sessions[sess]; ss != nil {
		s = ss.remove(channel)
	}
	r.mu.Unlock()
	if s == nil {
		return service.Errorf(service.ENOTFOUND, "not subscribed to %q", channel)
	}
	r.hub.Unsubscribe(channel, s)
	s.end()
	return nil
}

// Narrow ends sess's subscriptions that its caller's permissions no
// longer allow, after sess.SetCaller: at once for publications, none of
// which follows; the channelUnsubscribed notification with reason
// "permission" follows the reply of the call, which must be of a method
// marked rpc.Method.Notifies. A subscription whose own subscribe reply
// is still to come gets it after that reply.
func (r *Registry) Narrow(ctx context.Context, sess *rpc.Session) {
	perms := sess.Caller().Permissions
	var gone []*subscription
	r.mu.Lock()
	if ss := r.sessions[sess]; ss != nil {
		for _, s := range ss.take() {
			if perms.CanSubscribe(s.channel) {
				ss.put(s)
				continue
			}
			gone = append(gone, s)
			s.narrowed = true
		}
	}
	r.mu.Unlock()
	if len(gone) == 0 {
		return
	}
	for _, s := range gone {
		r.hub.Unsubscribe(s.channel, s)
		s.end()
	}
	rpc.AfterReply(ctx, func() {
		for _, s := range gone {
			ev := &service.Event{Kind: service.EventUnsubscribed, Channel: s.channel, Reason: service.ReasonPermission}
			if n, ok := r.encode(ev).(rpc.Notification); ok {
				s.last(n)
			}
		}
	})
}

// closed ends the subscriptions of a session whose connection ended.
func (r *Registry) closed(sess *rpc.Session, ss *sessionSubs) {
	r.mu.Lock()
	delete(r.sessions, sess)
	ss.closed = true
	subs := ss.take()
	r.mu.Unlock()
	for _, s := range subs {
		r.hub.Unsubscribe(s.channel, s)
	}
}
