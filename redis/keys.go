package redis

import (
	"context"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// keys are one channel's Redis keys; see scripts.go.
type keys struct {
	meta, history, presence, expiries, events string
	slot                                      string // PREFIX:{name}: for idempotency keys
}

func (e *Engine) keys(name string) keys {
	slot := e.opts.Prefix + ":{" + name + "}:"
	return keys{meta: slot + "m", history: slot + "h", presence: slot + "p", expiries: slot + "z",
		events: slot + "e", slot: slot}
}

func (k keys) idempotency(key string) string { return k.slot + "k:" + key }

// channelOf returns the channel whose events channel is events.
func (e *Engine) channelOf(events string) (string, bool) {
	rest, ok := strings.CutPrefix(events, e.opts.Prefix+":{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "}:e")
}

func (e *Engine) indexKey() string { return e.opts.Prefix + ":channels" }

// index is the sorted set of channel names that channelList pages
// through, and what this node knows to be in it. A channel is added when
// published to or subscribed to; removed channels and those whose
// history expired stay in it, and listing skips them.
type index struct {
	mu    sync.Mutex
	known map[string]string // channel → the epoch it was added in
}

// maxKnown bounds what a node remembers of the index: past it, it starts
// again, and adds each channel once more.
const maxKnown = 100_000

func newIndex() *index { return &index{known: map[string]string{}} }

// add puts name in the index unless this node did so in this epoch:
// Redis that lost its data gave the channel a new one, and lost the
// index too. A failure is logged, not returned: the publication or
// subscription it follows is made, and in a Cluster the index's master
// may be down while the channel's is up. The channel's next publish or
// subscribe adds it.
func (ix *index) add(ctx context.Context, e *Engine, name, epoch string) {
	ix.mu.Lock()
	done := ix.known[name] == epoch
	ix.mu.Unlock()
	if done {
		return
	}
	if err := e.rdb.ZAddNX(ctx, e.indexKey(), zmember(name)).Err(); err != nil {
		e.opts.Logger.Warn("channel not added to the channel index; its next publish or subscribe adds it", "channel", name, "err", err)
		return
	}
	ix.mu.Lock()
	if len(ix.known) >= maxKnown {
		clear(ix.known)
	}
	ix.known[name] = epoch
	ix.mu.Unlock()
}

func zmember(name string) goredis.Z { return goredis.Z{Member: name} }
