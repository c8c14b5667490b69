// Package poll waits in tests for what happens asynchronously. It imports
// nothing of Switchboard's, so that every package's tests can use it, the
// ones that internal/servertest (which imports the whole server) cannot.
package poll

import (
	"testing"
	"time"
)

// Until calls cond every 10 ms until it holds, and fails the test if it
// still does not after timeout: a generous upper bound, never an expected
// duration.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
