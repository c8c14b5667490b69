package subscriptions

import (
	"context"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// pausedSubscribe pauses the first Subscribe before it reaches the engine,
// as the scheduler may pause the goroutine of a channelSubscribe call
// between Registry.subscribe's reserve and the hub's call.
type pausedSubscribe struct {
	service.Engine
	entered, release chan struct{}
}

func (e *pausedSubscribe) Subscribe(ctx context.Context, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
	close(e.entered)
	<-e.release
	return e.Engine.Subscribe(ctx, name, r, joinLeave)
}

// TestUnsubscribeDuringSubscribeLeavesNothing: calls of one connection run
// concurrently. A channelUnsubscribe that runs while channelSubscribe is
// inside the hub finds the subscription, deletes it and asks the
// hub to unsubscribe a receiver that is not subscribed yet. The subscribe
// must then not leave its receiver in the engine, where nothing could
// remove it: unsubscribe would say not found, the connection's end would
// not know it, and a new subscribe would add a second receiver.
func TestUnsubscribeDuringSubscribeLeavesNothing(t *testing.T) {
	ctx := context.Background()
	eng := &receivers{subs: map[service.Receiver]bool{}}
	paused := &pausedSubscribe{Engine: eng, entered: make(chan struct{}), release: make(chan struct{})}
	ss := New(service.NewHub(paused, service.HubLimits{}), Limits{MaxPerSession: 10, SendQueue: 16}, nil)
	sess := rpc.NewSession(rpc.Peer{ID: "conn1", Caller: service.Caller{User: "u", Permissions: service.Permissions{Admin: true}}})

	done := make(chan error, 1)
	go func() {
		_, _, err := ss.subscribe(ctx, sess, "room", nil, false)
		done <- err
	}()
	<-paused.entered
	if err := ss.Unsubscribe(sess, "room"); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	close(paused.release)
	// The unsubscribe came last, so it wins: the subscribe answers a
	// conflict rather than leave a subscription the client asked to end.
	if err := <-done; service.ErrorCode(err) != service.ECONFLICT {
		t.Fatalf("subscribe: %v, want a conflict: the client unsubscribed meanwhile", err)
	}
	// The connection ends: its subscriptions are ended.
	ss.mu.Lock()
	c := ss.sessions[sess]
	ss.mu.Unlock()
	ss.closed(sess, c)

	if n := eng.count(); n != 0 {
		t.Fatalf("the connection ended, yet the engine still holds %d of its receivers", n)
	}
}

// receivers is an engine that only keeps subscriptions, of one channel:
// this package knows no real engine.
type receivers struct {
	service.Engine // the rest is not called
	mu             sync.Mutex
	subs           map[service.Receiver]bool
}

func (e *receivers) Subscribe(_ context.Context, _ string, r service.Receiver, _ bool) (service.Position, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.subs[r] = true
	return service.Position{Epoch: "e"}, nil
}

func (e *receivers) Unsubscribe(_ string, r service.Receiver) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	had := e.subs[r]
	delete(e.subs, r)
	return had
}

func (e *receivers) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}
