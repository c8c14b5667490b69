package redis_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/internal/enginetest"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/redis"
	"github.com/switchboard/switchboard/service"
)

// TestContract runs service.Engine's contract against the Redis engine:
// each test has a prefix of its own on one Redis, and another node is a
// second engine on the same Redis and prefix.
func TestContract(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	var tests atomic.Int64
	enginetest.Run(t, func(t *testing.T, opts enginetest.Options) (service.Engine, func() service.Engine) {
		o := redis.Options{URL: srv.URL(), Prefix: fmt.Sprint("contract", tests.Add(1)),
			MaxPublications: opts.MaxPublications, MaxAge: opts.MaxAge, IdempotencyWindow: opts.IdempotencyWindow}
		var nodes atomic.Int64
		another := func() service.Engine {
			o.Node = fmt.Sprint("n", nodes.Add(1))
			return openEngine(t, o)
		}
		return another(), another
	})
}
