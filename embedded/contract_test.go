package embedded_test

import (
	"path/filepath"
	"testing"

	"github.com/switchboard/switchboard/embedded"
	"github.com/switchboard/switchboard/internal/enginetest"
	"github.com/switchboard/switchboard/service"
)

// TestContract runs service.Engine's contract against the embedded
// engine. Only one process opens a history, so another node is the same
// engine. It runs twice: with the default cache of idle channels, and
// with none, so that every channel nothing holds is dropped at once and
// loaded again at its next use: what the contract promises must not
// depend on what stayed in memory.
func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"uncached", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			enginetest.Run(t, func(t *testing.T, opts enginetest.Options) (service.Engine, func() service.Engine) {
				e, err := embedded.Open(filepath.Join(t.TempDir(), "history.db"), embedded.Options{
					MaxPublications: opts.MaxPublications, MaxAge: opts.MaxAge, IdempotencyWindow: opts.IdempotencyWindow,
					CachedChannels: tc.cache})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				return e, func() service.Engine { return e }
			})
		})
	}
}
