package rpc_test

import (
	"maps"
	"sync"
	"time"
)

// countingObserver records what the server reports, for assertions.
type countingObserver struct {
	mu       sync.Mutex
	opened   int
	closed   map[string]int
	outcomes map[string]int // "method outcome"
	sent     int
	dropped  int
}

func (o *countingObserver) ConnOpened() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened++
}

func (o *countingObserver) ConnClosed(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed == nil {
		o.closed = map[string]int{}
	}
	o.closed[reason]++
}

func (o *countingObserver) CallDone(method, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outcomes == nil {
		o.outcomes = map[string]int{}
	}
	o.outcomes[method+" "+outcome]++
}

func (o *countingObserver) NotificationSent() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sent++
}

func (o *countingObserver) NotificationDropped() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropped++
}

func (o *countingObserver) closedFor(reason string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed[reason]
}

func (o *countingObserver) outcome(method, outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.outcomes[method+" "+outcome]
}

func (o *countingObserver) notifications() (sent, dropped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sent, o.dropped
}

// closedReasons returns a copy of the close counts by reason.
func (o *countingObserver) closedReasons() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.closed)
}
