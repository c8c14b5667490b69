package redis_test

import (
	"testing"

	"github.com/switchboard/switchboard/redis"
)

// openEngine opens a Redis engine with opts, closed when t ends.
func openEngine(t testing.TB, opts redis.Options) *redis.Engine {
	t.Helper()
	e, err := redis.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
