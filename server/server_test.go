package server

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAllowedHostsDefault(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true, "127.0.0.2:1": true,
		":8080": false, "0.0.0.0:8080": false, "192.168.1.2:8080": false, "example.com:80": false,
	} {
		if got := allowedHosts(nil, listen) != nil; got != want {
			t.Errorf("--listen %s: a default host check is %v, want %v", listen, got, want)
		}
	}
	if got := allowedHosts([]string{"a.example"}, "127.0.0.1:8080"); len(got) != 1 || got[0] != "a.example" {
		t.Errorf("given hosts replaced by %v", got)
	}
}

// Mistakes in a Config are ConfigErrors, which the binary reports as
// usage errors, and New finds them before it touches the data directory.
func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"cert without key":  {TLSCert: "cert.pem"},
		"key without cert":  {TLSKey: "key.pem"},
		"bad proxy":         {TrustedProxies: []string{"10.0.0.0/33"}},
		"bad proxy header":  {ProxyHeader: "X-Real-IP"},
		"proxy not an addr": {TrustedProxies: []string{"proxy.example"}},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		cfg.DataDir = dir
		_, err := New(cfg, slog.New(slog.DiscardHandler))
		var cfgErr *ConfigError
		if !errors.As(err, &cfgErr) {
			t.Errorf("%s: New returned %v, want a ConfigError", name, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the data directory was created (%v)", name, err)
		}
	}
}

// A server can be closed without having been opened, as serve does when
// it cannot listen; one that was opened serves until Close, after which
// its Serve loops have ended without failing and its address refuses
// connections.
func TestOpenAndClose(t *testing.T) {
	cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), TokenSecret: strings.Repeat("s", 32)}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close without Open: %v", err)
	}

	s, err = New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New again on the same data directory: %v", err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: HTTP %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-s.Failed():
		t.Errorf("a Serve loop failed: %v", err)
	default:
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
}
