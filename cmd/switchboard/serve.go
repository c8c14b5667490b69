package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/redis"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/subscriptions"
)

// serveConfig is everything serve can be told: the server's Config, and
// what only the binary does with signals and logs.
type serveConfig struct {
	server.Config
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
}

func serveFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	d := rpc.DefaultLimits
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address to listen on; use :8080 to accept connections from other machines")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS and WSS, with --tls-key; read again when it changes")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve /metrics on this address instead, to anyone who reaches it (default: on --listen, to admin tokens)")
	fs.StringVar(&cfg.DataDir, "data", "switchboard-data", "data directory: token secret, node id, channel history (hub.db)")
	fs.StringVar(&cfg.TokenSecret, "token-secret", "", "HS256 secret for access tokens, at least 32 bytes (default: generated and kept in the data directory)")
	t := &cfg.Tokens
	fs.Var((*listFlag)(&t.PublicKeyFiles), "token-public-key", "PEM file of public keys (RSA, ECDSA P-256/P-384, Ed25519) that verify tokens issued elsewhere, chosen by kid (a block's kid header); repeatable")
	fs.StringVar(&t.JWKSURL, "token-jwks-url", "", "https URL of an identity provider's JWK Set whose keys verify tokens, by kid; fetched at start (a failure stops the start) and on an unknown kid")
	fs.DurationVar(&t.JWKSMinRefresh, "token-jwks-refresh", auth.DefaultJWKS.MinRefresh, "least time between two fetches of --token-jwks-url for an unknown kid")
	fs.DurationVar(&t.JWKSTimeout, "token-jwks-timeout", auth.DefaultJWKS.Timeout, "longest time one fetch of --token-jwks-url may take")
	fs.StringVar(&t.Issuer, "token-issuer", "", "the iss that tokens verified by a public key or the JWKS must have (default: not checked)")
	fs.StringVar(&t.Audience, "token-audience", "", "a value that the aud of tokens verified by a public key or the JWKS must hold (default: not checked)")
	fs.DurationVar(&t.Leeway, "token-leeway", auth.DefaultLeeway, "clock skew allowed for exp, nbf and iat; negative allows none")
	fs.StringVar(&t.Claims.Publish, "token-claim-publish", auth.DefaultClaimNames.Publish, "name of the publish permission claim in tokens verified by a public key or the JWKS; - for none")
	fs.StringVar(&t.Claims.Subscribe, "token-claim-subscribe", auth.DefaultClaimNames.Subscribe, "name of the subscribe permission claim in tokens verified by a public key or the JWKS; - for none")
	fs.StringVar(&t.Claims.Admin, "token-claim-admin", auth.DefaultClaimNames.Admin, "name of the admin claim in tokens verified by a public key or the JWKS; - for none")
	fs.DurationVar(&cfg.Limits.ExpiryNotice, "token-expiry-notice", d.ExpiryNotice, "how long before its token expires a WebSocket client gets sessionExpiring (halfway through a shorter token's life)")
	fs.Var((*listFlag)(&cfg.AllowedOrigins), "allowed-origins", "comma-separated origin host patterns allowed to open WebSockets, besides the server's own host (e.g. app.example.com,*.example.com)")
	fs.Var((*listFlag)(&cfg.AllowedHosts), "allowed-hosts", "comma-separated host patterns the Host header must match, besides IP addresses; * for any (default: on a loopback --listen, localhost and *.localhost; otherwise any)")
	fs.Var((*listFlag)(&cfg.TrustedProxies), "trusted-proxies", "comma-separated addresses or CIDR ranges of the proxies in front of the server, whose Forwarded and X-Forwarded-For headers say who the client is (default: none; the client is the peer)")
	fs.StringVar(&cfg.ProxyHeader, "trusted-proxy-header", api.XForwardedFor, "the header the trusted proxies write the client's address in: X-Forwarded-For or Forwarded")
	fs.BoolVar(&cfg.Anonymous, "anonymous", false, "let callers without a token in, with the anonymous permissions")
	fs.Var((*listFlag)(&cfg.AnonymousPublish), "anonymous-publish", "channel patterns anonymous callers may publish to")
	fs.Var((*listFlag)(&cfg.AnonymousSubscribe), "anonymous-subscribe", "channel patterns anonymous callers may subscribe to")
	fs.Int64Var(&cfg.Limits.MaxMessageSize, "max-message-size", d.MaxMessageSize, "largest incoming message in bytes (WebSocket: close 1009; HTTP: 413)")
	fs.IntVar(&cfg.Limits.MaxBatch, "max-batch", d.MaxBatch, "most calls in one batch")
	fs.IntVar(&cfg.Limits.MaxConcurrentCalls, "max-concurrent-calls", d.MaxConcurrentCalls, "calls one connection may run at once")
	fs.IntVar(&cfg.Limits.SendQueue, "send-queue", d.SendQueue, "messages queued for a slow client before it is closed with 4000")
	fs.IntVar(&cfg.Limits.SendQueueBytes, "send-queue-bytes", d.SendQueueBytes, "bytes of messages queued for a slow client before it is closed with 4000")
	fs.IntVar(&cfg.Limits.MaxBatchReplySize, "max-batch-reply-size", d.MaxBatchReplySize, "bytes of replies to one batch; once they pass it, the batch's remaining calls get -32029")
	fs.IntVar(&cfg.Limits.MaxHeavyCalls, "max-heavy-calls", d.MaxHeavyCalls, "history reads, recoveries and presence lists running at once on the server; more wait")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", api.DefaultReadTimeout, "longest time to read one HTTP request, body included (WebSockets are free of it once open)")
	fs.DurationVar(&cfg.Limits.WriteTimeout, "write-timeout", d.WriteTimeout, "longest time one write to a client may take")
	fs.DurationVar(&cfg.Limits.WriteDelay, "write-delay", d.WriteDelay, "longest a notification waits for more to the same client, to be written together in one system call; 0 writes each at once (replies never wait)")
	fs.DurationVar(&cfg.Limits.ParkAfter, "park-after", d.ParkAfter, "how long a connection may wait for its client's next message before its goroutines end until the client sends again (Linux, plain TCP); 0 never")
	fs.DurationVar(&cfg.Limits.PingInterval, "ping-interval", d.PingInterval, "how often to ping each client")
	fs.DurationVar(&cfg.Limits.PongTimeout, "pong-timeout", d.PongTimeout, "how long a ping may go unanswered before the client is dropped")
	fs.StringVar(&cfg.Engine, "engine", server.EngineEmbedded, "where channels live: embedded (SQLite in the data directory, one node) or redis (shared by every node on --redis-url)")
	fs.StringVar(&cfg.Redis.URL, "redis-url", "", "Redis of --engine redis: redis://[user:password@]host:port/db, or rediss:// for TLS")
	fs.BoolVar(&cfg.Redis.Cluster, "redis-cluster", false, "--redis-url is a node of a Redis Cluster; name more with ?addr=host:port&addr=...")
	fs.StringVar(&cfg.Redis.CACertFile, "redis-cacert", "", "PEM file of the CA certificates to trust for a rediss:// --redis-url, instead of the system's")
	fs.StringVar(&cfg.Redis.Prefix, "redis-prefix", redis.DefaultOptions.Prefix, "start of every Redis key and Pub/Sub channel, so that deployments can share a Redis")
	fs.IntVar(&cfg.Redis.WaitReplicas, "redis-wait-replicas", 0, "with --engine redis, acknowledge a publish only once this many replicas have it (Redis WAIT), so that a failover loses none; 0 for none")
	fs.DurationVar(&cfg.Redis.WaitTimeout, "redis-wait-timeout", time.Second, "longest a publish waits for --redis-wait-replicas; past it the publish fails with -32013, though the primary has it")
	fs.DurationVar(&cfg.Redis.PresenceTTL, "presence-ttl", redis.DefaultOptions.PresenceTTL, "with --engine redis, the longest a node that died stays in presence (it renews its members every third of this)")
	fs.IntVar(&cfg.HistorySize, "history-size", 1000, "most publications kept per channel; 0 keeps all")
	fs.DurationVar(&cfg.HistoryTTL, "history-ttl", 24*time.Hour, "how long publications are kept; 0 keeps them until history-size trims them")
	fs.DurationVar(&cfg.IdempotencyWindow, "idempotency-window", 5*time.Minute, "how long a publication's idempotencyKey is remembered; 0 ignores keys")
	fs.IntVar(&cfg.MaxDataSize, "max-data-size", service.DefaultHubLimits.MaxDataSize, "largest publication data in bytes of JSON")
	fs.IntVar(&cfg.ConnLimits.Total, "max-connections", 0, "most WebSocket connections open at once; 0: the file descriptor limit less a reserve")
	fs.IntVar(&cfg.ConnLimits.PerUser, "max-connections-per-user", 0, "most WebSocket connections one user (token subject) may hold; 0: no limit")
	fs.IntVar(&cfg.ConnLimits.PerIP, "max-connections-per-ip", 0, "most WebSocket connections one client address (IPv6: its /64) may hold; 0: no limit")
	fs.Float64Var(&cfg.Limits.CallRate, "rate-calls", 0, "calls a second one connection (or one client address over HTTP) may make; more get -32029; 0: no limit")
	fs.IntVar(&cfg.Limits.CallBurst, "rate-calls-burst", 0, "calls one connection may make at once above --rate-calls; 0: one second's worth")
	fs.Float64Var(&cfg.PublishRate, "rate-publish", 0, "publications a second one user may make; more get -32029; 0: no limit")
	fs.IntVar(&cfg.PublishBurst, "rate-publish-burst", 0, "publications one user may make at once above --rate-publish; 0: one second's worth")
	fs.Float64Var(&cfg.HandshakeRate, "rate-handshakes", 0, "WebSocket handshakes a second one client address may make; more get HTTP 429; 0: no limit")
	fs.IntVar(&cfg.HandshakeBurst, "rate-handshakes-burst", 0, "handshakes one client address may make at once above --rate-handshakes; 0: one second's worth")
	fs.IntVar(&cfg.MaxSubscriptions, "max-subscriptions", subscriptions.DefaultLimits.MaxPerSession, "most channels one connection may subscribe to")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight calls get to finish on SIGINT/SIGTERM")
	fs.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "how long to keep serving with /readyz failing before draining")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text or json")
	withEnvHelp(fs)
	return fs
}

func serve(args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := serveFlags(&cfg)
	fs.SetOutput(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Limits.WriteDelay == 0 {
		cfg.Limits.WriteDelay = -1 // 0 is the Limits' default, not none
	}
	if cfg.Limits.ParkAfter == 0 {
		cfg.Limits.ParkAfter = -1
	}
	logger, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	cfg.Version = version
	s, err := server.New(cfg.Config, logger)
	var cfgErr *server.ConfigError
	if errors.As(err, &cfgErr) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	// Catch signals before saying we listen: a supervisor may send SIGTERM
	// as soon as it reads the banner.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := s.Open(); err != nil {
		s.Close(context.Background())
		return err
	}
	if err := banner(stdout, s); err != nil {
		s.Close(context.Background())
		return err
	}
	logger.Info("serving", "addr", s.Addr().String(), "tls", s.TLS(), "version", version, "node", s.Node().ID)

	select {
	case err := <-s.Failed():
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the usual way
	logger.Info("shutting down", "timeout", cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownDelay+cfg.shutdownTimeout)
	defer cancel()
	if err := s.Close(sctx); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// banner tells the person who started the server how to reach it and its
// console. When the secret is the data directory's, it also prints an
// admin token, so that a first run needs no setup.
func banner(w io.Writer, s *server.Server) error {
	web, ws := "http", "ws"
	if s.TLS() {
		web, ws = "https", "wss"
	}
	addr := s.Addr()
	base := web + "://" + addr.String()
	metrics := ""
	if s.MetricsAddr() != nil {
		metrics = fmt.Sprintf("; metrics: http://%s/metrics", s.MetricsAddr())
	}
	fmt.Fprintf(w, "Switchboard %s listening on %s (WebSocket: %s://%s/rpc%s)\n", version, base, ws, addr, metrics)
	fmt.Fprintf(w, "Console: %s/\n", base)
	if !s.SecretInDataDir() {
		return nil
	}
	tok, err := s.Authority().Issue("admin", service.Permissions{Admin: true}, 24*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Admin token (valid 24h):\n  %s\n", tok)
	fmt.Fprintf(w, "Try it:\n  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"serverInfo\"}' %s/rpc\n", tok, base)
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

// printOpenRPC writes the OpenRPC document generated from the registry:
// what make openrpc commits as openrpc.json.
func printOpenRPC(w io.Writer) error {
	doc, err := server.OpenRPC()
	if err != nil {
		return err
	}
	_, err = w.Write(doc)
	return err
}
