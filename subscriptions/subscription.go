package subscriptions

import (
	"sync"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// subscription is one session's subscription to a channel: the hub's
// Receiver. Until start it holds notifications back, at most
// Limits.SendQueue of them and SendQueueBytes of their frames, so that
// none reaches the client before the subscribe reply; beyond that the
// client is treated as a slow consumer, as a full send queue would be.
type subscription struct {
	reg   *Registry
	sess  *rpc.Session
	owner *sessionSubs // set by reserve; guarded by reg.mu
	// narrowed is set, under reg.mu, when Narrow took the subscription
	// away, so that a subscribe still under way says why.
	narrowed bool
	channel  string
	member   service.Member

	mu        sync.Mutex
	started   bool
	ended     bool // unsubscribed: nothing more is sent, held or not
	held      []rpc.Notification
	heldBytes int
	final     *rpc.Notification // sent by start after held, for a subscription ended before it started
}

// Member implements service.Receiver.
func (s *subscription) Member() service.Member { return s.member }

// Receive implements service.Receiver.
func (s *subscription) Receive(e *service.Event) {
	n, ok := e.Wire(s.reg.encode).(rpc.Notification)
	if !ok {
		return // cannot happen: events hold only values that came in as JSON
	}
	if e.Kind == service.EventUnsubscribed {
		s.reg.drop(s)
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
	if len(s.held) >= s.reg.limits.SendQueue || s.heldBytes >= s.reg.limits.SendQueueBytes {
		s.sess.CloseSlowConsumer()
		return
	}
	s.held = append(s.held, n)
	s.heldBytes += n.Size()
}

// start sends what was held back and lets later notifications through.
func (s *subscription) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	for _, n := range s.held { // none when ended
		if s.sess.Notify(n) != nil {
			break
		}
	}
	s.held, s.heldBytes = nil, 0
	if s.final != nil {
		s.sess.Notify(*s.final)
		s.final = nil
	}
}

// last sends n, the notification that tells of the end of a subscription
// ended by the server, once the subscribe reply has gone.
func (s *subscription) last(n rpc.Notification) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		s.sess.Notify(n)
		return
	}
	s.final = &n
}

// end stops the subscription's notifications, those held back included:
// none may follow the unsubscribe reply, even when the subscribe reply is
// still on its way.
func (s *subscription) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.held, s.heldBytes = nil, 0
}
