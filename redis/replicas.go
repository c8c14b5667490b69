package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/service"
)

// runPublish runs the publish script. With WaitReplicas it sends WAIT
// right behind it, on the same connection to the channel's primary, so
// that the reply waits until that many replicas have the publication: a
// failover then cannot lose it.
func (e *Engine) runPublish(ctx context.Context, keys []string, args ...any) ([]string, error) {
	if e.opts.WaitReplicas <= 0 {
		return publishScript.Run(ctx, e.rdb, keys, args...).StringSlice()
	}
	var primary goredis.Cmdable = e.rdb
	if c, ok := e.rdb.(*goredis.ClusterClient); ok {
		m, err := c.MasterForKey(ctx, keys[0])
		if err != nil {
			return nil, err
		}
		primary = m
	}
	var script *goredis.Cmd
	var acked *goredis.Cmd
	run := func(load bool) {
		primary.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if load {
				script = publishScript.Eval(ctx, p, keys, args...)
			} else {
				script = publishScript.EvalSha(ctx, p, keys, args...)
			}
			acked = p.Do(ctx, "WAIT", e.opts.WaitReplicas, e.opts.WaitTimeout.Milliseconds())
			return nil
		})
	}
	if run(false); isNoScript(script.Err()) {
		run(true) // Redis did not have the script yet: the WAIT waited for nothing
	}
	res, err := script.StringSlice()
	if err != nil {
		return nil, err
	}
	if n, err := acked.Int64(); err != nil || n < int64(e.opts.WaitReplicas) {
		offset := "?"
		if len(res) > 1 {
			offset = res[1]
		}
		return nil, service.Errorf(service.EUNAVAILABLE,
			"the publication is at offset %s on the primary, but %d of the %d replicas asked for confirmed it within %v (%v); publish it again with the same idempotencyKey",
			offset, n, e.opts.WaitReplicas, e.opts.WaitTimeout, errOr(err, "timed out"))
	}
	return res, nil
}

func errOr(err error, otherwise string) any {
	if err != nil {
		return err
	}
	return otherwise
}

// defaultWaitTimeout is how long a publish waits for its replicas when
// WaitReplicas is set without WaitTimeout.
const defaultWaitTimeout = time.Second
