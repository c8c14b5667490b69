package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files in the data directory.
const (
	secretFile = "token-secret"
	nodeIDFile = "node-id"
	// HistoryFile is the SQLite database of channel history, with its
	// -wal and -shm companions.
	HistoryFile = "hub.db"
)

// loadOrCreate returns the trimmed contents of name in dir, creating the
// file with n random bytes (hex-encoded) when it does not exist yet. The
// file is written to a temporary name and renamed, so a crash never leaves
// a half-written secret behind.
func loadOrCreate(dir, name string, n int) (value string, created bool, err error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", false, fmt.Errorf("%s is empty; delete it to have a new one generated", path)
		}
		return v, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("create data directory: %w", err)
	}
	raw := make([]byte, n)
	rand.Read(raw)
	v := hex.EncodeToString(raw)
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return "", false, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(v + "\n"); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", false, fmt.Errorf("install %s: %w", path, err)
	}
	return v, true, nil
}

// TokenSecret returns the secret given, or the data directory's, which is
// generated on first use. fromDataDir tells which. The token command
// signs with it as the server verifies.
func TokenSecret(given, dataDir string) (secret []byte, fromDataDir bool, err error) {
	if given != "" {
		return []byte(given), false, nil
	}
	v, _, err := loadOrCreate(dataDir, secretFile, 32)
	if err != nil {
		return nil, false, err
	}
	return []byte(v), true, nil
}
