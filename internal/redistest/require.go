package redistest

import "testing"

// Require returns the path of redis-server, for a test that runs it its
// own way, skipping the test (or failing it, under
// SWITCHBOARD_REQUIRE_REDIS) when Redis is not installed.
func Require(t testing.TB) string {
	t.Helper()
	return binary(t)
}
