package servertest

import (
	"testing"

	"github.com/switchboard/switchboard/internal/poll"
)

// Eventually polls cond until it holds, failing the test after
// WaitTimeout.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, WaitTimeout, what, cond)
}
