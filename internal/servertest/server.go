// Package servertest starts the real server in the test's process, as the
// binary wires it, on a random loopback port, and talks to it over HTTP
// and raw WebSockets: the one harness of every package whose tests need a
// whole server (the client, the api, the server's wiring). It imports
// testing; only tests import it.
package servertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// Generous bounds: the tests share a 2-core machine with the race detector.
const (
	IOTimeout   = 10 * time.Second // one request, one read, one dial
	WaitTimeout = 10 * time.Second // for something asynchronous to happen
)

// Server is a running server, or (from At) the address of one running
// elsewhere.
type Server struct {
	T      *testing.T
	Server *server.Server // nil for At's
	Config server.Config
	Addr   string // 127.0.0.1:PORT
	Secret string // the HS256 secret the server verifies tokens with
	Logs   *Buffer
	HTTP   *http.Client
}

// Start builds the server from cfg and serves it on 127.0.0.1:0 until the
// test ends. Unless cfg says otherwise, the data directory is a fresh
// temporary one, the token secret a random one and the version "dev". The server logs at
// debug level into Logs, which is printed when the test fails.
func Start(t *testing.T, cfg server.Config) *Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.TokenSecret == "" {
		cfg.TokenSecret = RandomSecret()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Version == "" {
		cfg.Version = "dev" // as the binary reports when not stamped
	}
	s := &Server{T: t, Config: cfg, Secret: cfg.TokenSecret, Logs: &Buffer{},
		HTTP: &http.Client{Timeout: IOTimeout}}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.HTTP.CloseIdleConnections()
		if s.Server != nil {
			s.Stop()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.Logs.String())
		}
	})
	return s
}

// At is the HTTP and WebSocket helpers of Server aimed at addr, a server
// running elsewhere (in another process).
func At(t *testing.T, addr string) *Server {
	s := &Server{T: t, Addr: addr, HTTP: &http.Client{Timeout: IOTimeout}}
	t.Cleanup(s.HTTP.CloseIdleConnections)
	return s
}

// open builds the server from s.Config and serves it on s.Config.Listen.
// Only listening may fail, which Restart retries; the rest fails the test.
func (s *Server) open() error {
	s.T.Helper()
	logger := slog.New(slog.NewTextHandler(s.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(s.Config, logger)
	if err != nil {
		s.T.Fatalf("server.New: %v", err)
	}
	if err := srv.Open(); err != nil {
		if cerr := srv.Close(context.Background()); cerr != nil {
			s.T.Fatalf("close after a failed open: %v", cerr)
		}
		return err
	}
	s.Server, s.Addr = srv, srv.Addr().String()
	return nil
}

// Stop shuts the server down as serve does on SIGTERM, failing the test
// if that fails or its Serve loops fail or hang.
func (s *Server) Stop() {
	s.T.Helper()
	srv := s.Server
	s.Server = nil
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- srv.Close(ctx) }()
	select {
	case err := <-closed:
		if err != nil {
			s.T.Errorf("shutdown: %v", err)
		}
	case <-time.After(2 * WaitTimeout):
		s.T.Errorf("Serve did not return after Shutdown")
	}
	select {
	case err := <-srv.Failed():
		s.T.Errorf("Serve: %v", err)
	default:
	}
}

// Restart starts the server again, after Stop, on its address and data
// directory, waiting for the address to be free.
func (s *Server) Restart() {
	s.T.Helper()
	s.Config.Listen = s.Addr
	deadline := time.Now().Add(WaitTimeout)
	for {
		err := s.open()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.T.Fatalf("listen on %s again: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RandomSecret is a fresh token secret.
func RandomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// BaseURL is http://ADDR, or https:// when the server serves TLS.
func (s *Server) BaseURL() string { return s.scheme("http") + "://" + s.Addr }

// WSURL is the server's WebSocket endpoint.
func (s *Server) WSURL() string { return s.scheme("ws") + "://" + s.Addr + "/rpc" }

// scheme is plain, or its secure form when the server serves TLS.
func (s *Server) scheme(plain string) string {
	if s.Config.TLSCert != "" {
		return plain + "s"
	}
	return plain
}

// Token issues a token with the server's own authority.
func (s *Server) Token(sub string, perms service.Permissions, ttl time.Duration) string {
	s.T.Helper()
	tok, err := s.Server.Authority().Issue(sub, perms, ttl)
	if err != nil {
		s.T.Fatalf("issue token: %v", err)
	}
	return tok
}

// Buffer is a bytes.Buffer safe for concurrent use, for logs.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ExpiredToken signs, with secret, an HS256 token for sub that expired an
// hour ago: what a real client would hold after its token ran out.
func ExpiredToken(t *testing.T, secret, sub string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now.Add(-2 * time.Hour)),
		ExpiresAt: jwt.NewNumericDate(now.Add(-time.Hour)),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
