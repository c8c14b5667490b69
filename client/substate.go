package client

import (
	"fmt"
	"slices"
)

// subState is where a Subscription is. The events that move it, and from
// which state to which (any other move is a bug, and Subscription.to
// panics on it):
//
//	starting (the supervisor has a socket and subscribes):
//		idle → subscribing
//		behind → subscribing, once the reader has caught up
//		broken → subscribing, once the reader has caught up; it is
//		         unsubscribed first, on the same socket
//	a live publication that pending has no room for, or
//	channelUnsubscribed, while subscribing:
//		subscribing → stale (stale → stale again)
//	the channelSubscribe's reply (subscribed):
//		subscribing, stale → live
//		then live → broken if what it recovered, or pending, left a gap,
//		and always from stale
//	a live publication past the next offset, or the next one finding the
//	reader's buffer full, or channelUnsubscribed, while live (breakOff):
//		live → broken (broken → broken again: a kick if the reader has
//		caught up)
//	the socket lost, or a subscribe failed (detach):
//		subscribing, stale, live → idle
//		broken → behind
//	end (Close, the server's refusal, a refused token, Client.Close):
//		any but ended → ended
type subState int

const (
	stateIdle        subState = iota // to be subscribed on the next socket
	stateBehind                      // idle, but with a gap: the reader is to catch up first
	stateSubscribing                 // a channelSubscribe call is out on sock
	stateStale                       // subscribing, but its outcome may leave a gap: made again once answered
	stateLive                        // subscribed on sock, taking live publications
	stateBroken                      // subscribed on sock, with a gap: taking nothing, and made again once the reader has caught up
	stateEnded                       // for good, with err
)

var subStateNames = [...]string{"idle", "behind", "subscribing", "stale", "live", "broken", "ended"}

func (st subState) String() string {
	if st < 0 || int(st) >= len(subStateNames) {
		return fmt.Sprintf("subState(%d)", int(st))
	}
	return subStateNames[st]
}

// subMoves lists the states each state may move to; see subState.
var subMoves = [...][]subState{
	stateIdle:        {stateSubscribing, stateEnded},
	stateBehind:      {stateSubscribing, stateEnded},
	stateSubscribing: {stateStale, stateLive, stateIdle, stateEnded},
	stateStale:       {stateStale, stateLive, stateIdle, stateEnded},
	stateLive:        {stateBroken, stateIdle, stateEnded},
	stateBroken:      {stateBroken, stateSubscribing, stateBehind, stateEnded},
	stateEnded:       nil, // for good
}

// to moves s to next. s.mu is held.
func (s *Subscription) to(next subState) {
	if !slices.Contains(subMoves[s.state], next) {
		panic(fmt.Sprintf("client: subscription to %q: no move from %v to %v", s.channel, s.state, next))
	}
	s.state = next
}

// subscribedOn reports whether s is subscribed on its socket, whole or
// not. s.mu is held.
func (s *Subscription) subscribedOn() bool {
	return s.state == stateLive || s.state == stateBroken
}

// broken reports whether s has a gap, to be recovered once the reader has
// caught up. s.mu is held.
func (s *Subscription) broken() bool {
	return s.state == stateBroken || s.state == stateBehind
}
