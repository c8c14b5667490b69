package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// MaxRevocations bounds the users revoked at once; each costs a line of
// the file, rewritten whole on every change.
const MaxRevocations = 100_000

// Revocations are the users whose tokens are refused: those issued at or
// before the user's revocation, until the revocation ends. Revoking needs
// no list of tokens: a token says when it was issued (iat), and one that
// does not is taken for an old one. The list is kept in a file, so that
// a restart does not forget it.
type Revocations struct {
	path string
	now  func() time.Time

	write sync.Mutex   // held by Revoke, across its write to disk
	mu    sync.RWMutex // guards users, which Revoke swaps whole
	users map[string]Revocation
}

// Revocation is one user's.
type Revocation struct {
	// At is when the user was revoked. Tokens issued in that second or
	// before are refused, as iat counts whole seconds.
	At time.Time `json:"at"`
	// Until is when the revocation ends.
	Until time.Time `json:"until"`
}

// OpenRevocations loads the revocations kept at path, a JSON file, or
// starts none if there is no such file.
func OpenRevocations(path string) (*Revocations, error) {
	r := &Revocations{path: path, now: time.Now, users: map[string]Revocation{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return r, nil
	case err != nil:
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	if err := json.Unmarshal(b, &r.users); err != nil {
		return nil, fmt.Errorf("revocations %s: %w", path, err)
	}
	return r, nil
}

// Revoke refuses user's tokens issued until now, until until; a time not
// after now lifts the user's revocation instead. It returns once the
// change is on disk.
func (r *Revocations) Revoke(user string, until time.Time) error {
	if user == "" {
		return errors.New("revoke: no user")
	}
	// Verifications read users meanwhile: only the swap stops them, not
	// the fsync.
	r.write.Lock()
	defer r.write.Unlock()
	now := r.now()
	r.mu.RLock()
	next := make(map[string]Revocation, len(r.users)+1)
	for u, rev := range r.users {
		if rev.Until.After(now) && u != user {
			next[u] = rev
		}
	}
	r.mu.RUnlock()
	if until.After(now) {
		if len(next) >= MaxRevocations {
			return fmt.Errorf("revoke: %d users are revoked already, the most there may be", len(next))
		}
		next[user] = Revocation{At: now.UTC(), Until: until.UTC()}
	}
	if err := writeFileSync(r.path, next); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	r.mu.Lock()
	r.users = next
	r.mu.Unlock()
	return nil
}

// Refuses reports whether a token of user issued at issuedAt (zero when
// the token does not say) is revoked.
func (r *Revocations) Refuses(user string, issuedAt time.Time) bool {
	r.mu.RLock()
	rev, ok := r.users[user]
	r.mu.RUnlock()
	if !ok || !r.now().Before(rev.Until) {
		return false
	}
	return !issuedAt.After(rev.At.Truncate(time.Second))
}

// writeFileSync replaces the file at path with v as JSON, so that a crash
// leaves the old file or the new one, never a part.
func writeFileSync(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
