package api

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, the certificate's files are
// looked at again: a stat per handshake would cost more than the
// handshake itself on a busy server.
const certCheckInterval = time.Second

// TLSConfig returns the configuration of a server that serves the key
// pair in certFile and keyFile (PEM), and serves it again from the files
// whenever they change, so that a renewed certificate takes effect
// without a restart. It fails when the pair cannot be loaded now.
//
// It offers HTTP/1.1 alone in ALPN: a WebSocket over HTTP/2 needs RFC
// 8441, which coder/websocket does not implement, and a connection that
// negotiated h2 could not be hijacked for the upgrade.
func TLSConfig(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	c, err := loadCertificate(certFile, keyFile, certCheckInterval, log)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: c.get,
	}, nil
}

// certificate is a key pair read from two files, read again when either
// file's identity, size or modification time changes. Renewal tools
// replace the files in place, by rename, or by moving a symlink; all three
// show in os.Stat (which follows symlinks).
type certificate struct {
	certFile, keyFile string
	every             time.Duration // how often the files are looked at
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	seen    [2]os.FileInfo // the files as last looked at, loaded or not
	checked time.Time
}

// loadCertificate loads the pair, to be looked at again at most once
// every so often.
func loadCertificate(certFile, keyFile string, every time.Duration, log *slog.Logger) (*certificate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &certificate{certFile: certFile, keyFile: keyFile, every: every, log: log}
	cur, err := c.stat()
	if err == nil {
		err = c.load(cur)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// get is tls.Config.GetCertificate: the current pair, after reloading it
// if the files changed. A pair that does not load (a renewal half
// written, say) leaves the previous one in use, and is warned about once.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Sub(c.checked) < c.every {
		return c.cert, nil
	}
	c.checked = now
	cur, err := c.stat()
	switch {
	case err != nil && c.seen[0] == nil:
		return c.cert, nil // still gone, and said so already
	case err != nil:
		c.seen = [2]os.FileInfo{} // so that the files' return reloads them
	case sameFiles(cur, c.seen):
		return c.cert, nil
	default:
		err = c.load(cur)
	}
	if err != nil {
		c.log.Warn("TLS certificate not reloaded; still serving the previous one", "err", err)
	}
	return c.cert, nil
}

// load reads the pair from the files whose stat, taken before, is cur
// and, if the pair is good, serves it from then on. Because the stat
// comes first, a change while the files are read shows at the next check.
func (c *certificate) load(cur [2]os.FileInfo) error {
	c.seen = cur
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", c.certFile, c.keyFile, err)
	}
	if c.cert != nil {
		c.log.Info("TLS certificate reloaded", "file", c.certFile,
			"serial", pair.Leaf.SerialNumber.String(), "notAfter", pair.Leaf.NotAfter)
	}
	c.cert = &pair
	return nil
}

// stat looks at both files.
func (c *certificate) stat() ([2]os.FileInfo, error) {
	var fi [2]os.FileInfo
	var err error
	if fi[0], err = os.Stat(c.certFile); err != nil {
		return fi, fmt.Errorf("TLS certificate: %w", err)
	}
	if fi[1], err = os.Stat(c.keyFile); err != nil {
		return fi, fmt.Errorf("TLS key: %w", err)
	}
	return fi, nil
}

// sameFiles reports whether a and b show the same files, unchanged.
func sameFiles(a, b [2]os.FileInfo) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil || !os.SameFile(a[i], b[i]) ||
			a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()) {
			return false
		}
	}
	return true
}
