package api_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// TestPublishReachesSubscriber is the hub's first promise: a publication
// is acknowledged with its offset and reaches a subscriber, after the
// subscribe reply.
func TestPublishReachesSubscriber(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	sub := ta.HubClient(ta.Token("bob", service.Permissions{Subscribe: []string{"chat.>"}}, time.Hour))
	pub := ta.HubClient(ta.Token("alice", service.Permissions{Publish: []string{"chat.*"}}, time.Hour))

	s := sub.Subscribe(map[string]any{"channel": "chat.lobby"})
	if s.Offset != 0 || s.Epoch == "" || s.Recovered || len(s.Publications) != 0 {
		t.Fatalf("subscribe to a new channel: %+v", s)
	}
	for i := 1; i <= 3; i++ {
		p := pub.Publish("chat.lobby", map[string]int{"n": i})
		if p.Offset != uint64(i) || p.Epoch != s.Epoch || p.Channel != "chat.lobby" {
			t.Fatalf("publication %d: %+v (subscribed in epoch %s)", i, p, s.Epoch)
		}
	}
	for i := 1; i <= 3; i++ {
		n := sub.NextPublication()
		if n.Offset != uint64(i) || n.Publisher != "alice" || string(n.Data) != `{"n":`+string(rune('0'+i))+`}` {
			t.Fatalf("notification %d: %+v data %s", i, n, n.Data)
		}
	}
}
