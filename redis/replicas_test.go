package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/redis"
	"github.com/switchboard/switchboard/service"
)

// With WaitReplicas, a publish is acknowledged once a replica has it;
// without the replica, the publish says that only the primary has it,
// and publishing it again under its idempotency key is answered as the
// duplicate it is.
func TestWaitReplicas(t *testing.T) {
	primary := redistest.Start(t, redistest.Options{})
	replica := redistest.Start(t, redistest.Options{ReplicaOf: primary.Addr()})
	poll.Until(t, wait, "the replica in sync", func() bool {
		info, err := replica.Text("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	e := openEngine(t, redis.Options{URL: primary.URL(), Node: "a", WaitReplicas: 1,
		WaitTimeout: 300 * time.Millisecond, IdempotencyWindow: time.Minute})
	ctx := context.Background()
	publish := func(key string) (service.Published, error) {
		return e.Publish(ctx, service.Publication{Channel: "ch", Data: []byte(`{"k":"` + key + `"}`), Time: time.Now()}, key)
	}
	if p, err := publish("one"); err != nil || p.Offset != 1 {
		t.Fatalf("publish with the replica up = %+v, %v", p, err)
	}
	// The reply came after the replica had it: read it there at once.
	if o, err := replica.Text("HGET", "switchboard:{ch}:m", "o"); err != nil || o != "1" {
		t.Fatalf("the replica's offset right after the reply = %q, %v; want 1", o, err)
	}

	replica.Kill()
	start := time.Now()
	_, err := publish("two")
	var serr *service.Error
	if !errors.As(err, &serr) || serr.Code != service.EUNAVAILABLE || !strings.Contains(err.Error(), "at offset 2 on the primary") {
		t.Fatalf("publish with the replica down = %v; want unavailable, saying the primary has offset 2", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("the refusal came after %v, before the wait of 300ms ran out", waited)
	}
	// As the error advises: the same key again is the same publication.
	replica.Restart()
	poll.Until(t, wait, "the replica in sync again", func() bool {
		info, err := replica.Text("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	if p, err := publish("two"); err != nil || !p.Duplicate || p.Offset != 2 {
		t.Fatalf("publishing it again = %+v, %v; want the duplicate at offset 2", p, err)
	}
}
