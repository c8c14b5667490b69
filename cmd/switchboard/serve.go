package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/embedded"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/sqlite"
	"github.com/switchboard/switchboard/subscriptions"
)

// serveConfig is everything serve can be told.
type serveConfig struct {
	listen             string
	tlsCert, tlsKey    string
	dataDir            string
	tokenSecret        string
	allowedOrigins     listFlag
	allowedHosts       listFlag
	trustedProxies     listFlag
	proxyHeader        string
	anonymous          bool
	anonymousPublish   listFlag
	anonymousSubscribe listFlag
	limits             rpc.Limits
	historySize        int
	historyTTL         time.Duration
	idempotencyWindow  time.Duration
	maxDataSize        int
	maxSubscriptions   int
	connLimits         api.ConnLimits
	publishRate        float64
	publishBurst       int
	handshakeRate      float64
	handshakeBurst     int
	readTimeout        time.Duration
	metricsListen      string
	shutdownTimeout    time.Duration
	shutdownDelay      time.Duration
	logLevel           string
	logFormat          string
}

func serveFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	d := rpc.DefaultLimits
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "address to listen on; use :8080 to accept connections from other machines")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS and WSS, with --tls-key; read again when it changes")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.StringVar(&cfg.metricsListen, "metrics-listen", "", "serve /metrics on this address instead, to anyone who reaches it (default: on --listen, to admin tokens)")
	fs.StringVar(&cfg.dataDir, "data", "switchboard-data", "data directory: token secret, node id, channel history (hub.db)")
	fs.StringVar(&cfg.tokenSecret, "token-secret", "", "HS256 secret for access tokens, at least 32 bytes (default: generated and kept in the data directory)")
	fs.Var(&cfg.allowedOrigins, "allowed-origins", "comma-separated origin host patterns allowed to open WebSockets, besides the server's own host (e.g. app.example.com,*.example.com)")
	fs.Var(&cfg.allowedHosts, "allowed-hosts", "comma-separated host patterns the Host header must match, besides IP addresses; * for any (default: on a loopback --listen, localhost and *.localhost; otherwise any)")
	fs.Var(&cfg.trustedProxies, "trusted-proxies", "comma-separated addresses or CIDR ranges of the proxies in front of the server, whose Forwarded and X-Forwarded-For headers say who the client is (default: none; the client is the peer)")
	fs.StringVar(&cfg.proxyHeader, "trusted-proxy-header", api.XForwardedFor, "the header the trusted proxies write the client's address in: X-Forwarded-For or Forwarded")
	fs.BoolVar(&cfg.anonymous, "anonymous", false, "let callers without a token in, with the anonymous permissions")
	fs.Var(&cfg.anonymousPublish, "anonymous-publish", "channel patterns anonymous callers may publish to")
	fs.Var(&cfg.anonymousSubscribe, "anonymous-subscribe", "channel patterns anonymous callers may subscribe to")
	fs.Int64Var(&cfg.limits.MaxMessageSize, "max-message-size", d.MaxMessageSize, "largest incoming message in bytes (WebSocket: close 1009; HTTP: 413)")
	fs.IntVar(&cfg.limits.MaxBatch, "max-batch", d.MaxBatch, "most calls in one batch")
	fs.IntVar(&cfg.limits.MaxConcurrentCalls, "max-concurrent-calls", d.MaxConcurrentCalls, "calls one connection may run at once")
	fs.IntVar(&cfg.limits.SendQueue, "send-queue", d.SendQueue, "messages queued for a slow client before it is closed with 4000")
	fs.IntVar(&cfg.limits.SendQueueBytes, "send-queue-bytes", d.SendQueueBytes, "bytes of messages queued for a slow client before it is closed with 4000")
	fs.IntVar(&cfg.limits.MaxBatchReplySize, "max-batch-reply-size", d.MaxBatchReplySize, "bytes of replies to one batch; once they pass it, the batch's remaining calls get -32029")
	fs.IntVar(&cfg.limits.MaxHeavyCalls, "max-heavy-calls", d.MaxHeavyCalls, "history reads, recoveries and presence lists running at once on the server; more wait")
	fs.DurationVar(&cfg.readTimeout, "read-timeout", api.DefaultReadTimeout, "longest time to read one HTTP request, body included (WebSockets are free of it once open)")
	fs.DurationVar(&cfg.limits.WriteTimeout, "write-timeout", d.WriteTimeout, "longest time one write to a client may take")
	fs.DurationVar(&cfg.limits.PingInterval, "ping-interval", d.PingInterval, "how often to ping each client")
	fs.DurationVar(&cfg.limits.PongTimeout, "pong-timeout", d.PongTimeout, "how long a ping may go unanswered before the client is dropped")
	fs.IntVar(&cfg.historySize, "history-size", 1000, "most publications kept per channel; 0 keeps all")
	fs.DurationVar(&cfg.historyTTL, "history-ttl", 24*time.Hour, "how long publications are kept; 0 keeps them until history-size trims them")
	fs.DurationVar(&cfg.idempotencyWindow, "idempotency-window", 5*time.Minute, "how long a publication's idempotencyKey is remembered; 0 ignores keys")
	fs.IntVar(&cfg.maxDataSize, "max-data-size", service.DefaultHubLimits.MaxDataSize, "largest publication data in bytes of JSON")
	fs.IntVar(&cfg.connLimits.Total, "max-connections", 0, "most WebSocket connections open at once; 0: the file descriptor limit less a reserve")
	fs.IntVar(&cfg.connLimits.PerUser, "max-connections-per-user", 0, "most WebSocket connections one user (token subject) may hold; 0: no limit")
	fs.IntVar(&cfg.connLimits.PerIP, "max-connections-per-ip", 0, "most WebSocket connections one client address (IPv6: its /64) may hold; 0: no limit")
	fs.Float64Var(&cfg.limits.CallRate, "rate-calls", 0, "calls a second one connection (or one client address over HTTP) may make; more get -32029; 0: no limit")
	fs.IntVar(&cfg.limits.CallBurst, "rate-calls-burst", 0, "calls one connection may make at once above --rate-calls; 0: one second's worth")
	fs.Float64Var(&cfg.publishRate, "rate-publish", 0, "publications a second one user may make; more get -32029; 0: no limit")
	fs.IntVar(&cfg.publishBurst, "rate-publish-burst", 0, "publications one user may make at once above --rate-publish; 0: one second's worth")
	fs.Float64Var(&cfg.handshakeRate, "rate-handshakes", 0, "WebSocket handshakes a second one client address may make; more get HTTP 429; 0: no limit")
	fs.IntVar(&cfg.handshakeBurst, "rate-handshakes-burst", 0, "handshakes one client address may make at once above --rate-handshakes; 0: one second's worth")
	fs.IntVar(&cfg.maxSubscriptions, "max-subscriptions", subscriptions.DefaultLimits.MaxPerSession, "most channels one connection may subscribe to")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long in-flight calls get to finish on SIGINT/SIGTERM")
	fs.DurationVar(&cfg.shutdownDelay, "shutdown-delay", 0, "how long to keep serving with /readyz failing before draining")
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
	logger, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	a, err := newApp(cfg, logger)
	if err != nil {
		return err
	}
	// Catch signals before saying we listen: a supervisor may send SIGTERM
	// as soon as it reads the banner.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	served := make(chan error, 2)
	if a.metrics != nil {
		mln, err := net.Listen("tcp", cfg.metricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen for metrics: %w", err)
		}
		a.metricsAddr = mln.Addr()
		go func() { served <- serveMetrics(a.metrics, mln) }()
	}
	if err := a.banner(stdout, ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	go func() { served <- a.api.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "tls", a.tls, "version", version, "node", a.node.ID)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the usual way
	logger.Info("shutting down", "timeout", cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownDelay+cfg.shutdownTimeout)
	defer cancel()
	err = a.shutdown(sctx)
	<-served
	if a.metrics != nil {
		<-served
	}
	if err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// shutdown stops serving, lets calls in flight finish, and then closes the
// history once everything acknowledged is committed.
func (a *app) shutdown(ctx context.Context) error {
	if err := a.api.Shutdown(ctx); err != nil {
		a.log.Warn("shutdown cut short; remaining connections were dropped", "err", err)
	}
	if a.metrics != nil {
		// Last, so that the drain can be watched.
		if err := a.metrics.Shutdown(ctx); err != nil {
			a.log.Warn("metrics server shutdown cut short", "err", err)
		}
	}
	if err := a.store.Close(); err != nil {
		return fmt.Errorf("close history: %w", err)
	}
	return nil
}

// app is a fully wired server, ready to serve.
type app struct {
	node            service.Node
	authority       *auth.Authority
	secretInDataDir bool
	tls             bool // serving HTTPS and WSS
	rpc             *rpc.Server
	api             *api.Server
	store           *sqlite.Store
	log             *slog.Logger
	openrpc         func() ([]byte, error)
	// metrics serves /metrics on --metrics-listen, when it is set;
	// metricsAddr is where, once it listens.
	metrics     *http.Server
	metricsAddr net.Addr
}

func newApp(cfg serveConfig, logger *slog.Logger) (*app, error) {
	tlsConfig, err := serverTLS(cfg, logger)
	if err != nil {
		return nil, err
	}
	proxies, err := parseCIDRs(cfg.trustedProxies)
	if err != nil {
		return nil, err
	}
	proxyHeader, err := parseProxyHeader(cfg.proxyHeader)
	if err != nil {
		return nil, err
	}
	secret, fromDataDir, err := tokenSecret(cfg.tokenSecret, cfg.dataDir)
	if err != nil {
		return nil, err
	}
	authority, err := auth.New(secret)
	if err != nil {
		return nil, err
	}
	nodeID, _, err := loadOrCreate(cfg.dataDir, nodeIDFile, 8)
	if err != nil {
		return nil, err
	}
	node := service.Node{ID: nodeID, Version: version, StartedAt: time.Now()}

	store, err := sqlite.Open(filepath.Join(cfg.dataDir, historyFile), sqlite.Options{
		MaxPublications:   cfg.historySize,
		MaxAge:            cfg.historyTTL,
		IdempotencyWindow: cfg.idempotencyWindow,
		Logger:            logger,
	})
	if err != nil {
		return nil, err
	}
	hub := service.NewHub(embedded.New(store), service.HubLimits{MaxDataSize: cfg.maxDataSize,
		PublishRate: cfg.publishRate, PublishBurst: cfg.publishBurst})

	m := metrics.New()
	reg := rpc.NewRegistry()
	rs := rpc.NewServer(reg, rpc.Options{Limits: cfg.limits, Logger: logger, Observer: m})
	doc := api.RegisterMethods(reg, node, api.Stats{Conns: rs, Totals: m}, hub, subscriptions.Limits{MaxPerSession: cfg.maxSubscriptions,
		SendQueue: rs.Limits().SendQueue, SendQueueBytes: rs.Limits().SendQueueBytes})
	if _, err := doc(); err != nil {
		store.Close()
		return nil, fmt.Errorf("openrpc document: %w", err)
	}

	apiCfg := cfg.httpConfig(logger)
	apiCfg.Tokens, apiCfg.TLS, apiCfg.TrustedProxies, apiCfg.ProxyHeader = authority, tlsConfig, proxies, proxyHeader
	apiCfg.Ready, apiCfg.OpenRPC, apiCfg.Metrics = store.Err, doc, m.Handler()
	var metricsServer *http.Server
	if cfg.metricsListen != "" {
		// Rebinding reaches a loopback metrics address as it does the main one.
		metricsServer = newMetricsServer(api.AllowHosts(apiCfg.Metrics, allowedHosts(cfg.allowedHosts, cfg.metricsListen)), logger)
		apiCfg.Metrics = nil
	}
	srv := api.New(apiCfg, rs)
	return &app{node: node, authority: authority, secretInDataDir: fromDataDir, tls: tlsConfig != nil, rpc: rs, api: srv,
		store: store, log: logger, openrpc: doc, metrics: metricsServer}, nil
}

// httpConfig is the HTTP server's configuration as the flags give it.
func (cfg serveConfig) httpConfig(logger *slog.Logger) api.Config {
	var anon *service.Permissions
	if cfg.anonymous {
		anon = &service.Permissions{Publish: cfg.anonymousPublish, Subscribe: cfg.anonymousSubscribe}
	}
	return api.Config{
		Anonymous:      anon,
		AllowedOrigins: cfg.allowedOrigins,
		AllowedHosts:   allowedHosts(cfg.allowedHosts, cfg.listen),
		ShutdownDelay:  cfg.shutdownDelay,
		ReadTimeout:    cfg.readTimeout,
		ConnLimits:     connLimits(cfg.connLimits, logger),
		HandshakeRate:  cfg.handshakeRate,
		HandshakeBurst: cfg.handshakeBurst,
		Logger:         logger,
	}
}

// serverTLS loads the key pair of --tls-cert and --tls-key, which go
// together; nil when neither is given.
func serverTLS(cfg serveConfig, logger *slog.Logger) (*tls.Config, error) {
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together: give both or neither")
	}
	if cfg.tlsCert == "" {
		return nil, nil
	}
	return api.TLSConfig(cfg.tlsCert, cfg.tlsKey, logger)
}

// parseCIDRs parses --trusted-proxies: CIDR ranges, or single addresses.
func parseCIDRs(list []string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, s := range list {
		if ip := net.ParseIP(s); ip != nil {
			bits := 8 * len(ip.To16())
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, usagef("--trusted-proxies %q: not an address or a CIDR range", s)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// parseProxyHeader parses --trusted-proxy-header, in any case; "" is
// X-Forwarded-For, which most proxies write.
func parseProxyHeader(h string) (string, error) {
	if h == "" {
		return api.XForwardedFor, nil
	}
	for _, known := range []string{api.XForwardedFor, api.ForwardedHeader} {
		if strings.EqualFold(h, known) {
			return known, nil
		}
	}
	return "", usagef("--trusted-proxy-header %q: want %s or %s", h, api.XForwardedFor, api.ForwardedHeader)
}

// allowedHosts returns the host patterns given, or the default for the
// listen address: a server on a loopback address, the one DNS rebinding
// reaches from a browser, knows itself by its loopback names only; one
// listening elsewhere cannot know its public names, and checks nothing
// unless told.
func allowedHosts(given []string, listen string) []string {
	if len(given) > 0 {
		return given
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return api.LoopbackHosts
	}
	return nil
}

// connLimits fills in the total limit from the descriptor limit when it
// is not set, so that health checks and admin calls still get in when
// the server is full.
func connLimits(l api.ConnLimits, log *slog.Logger) api.ConnLimits {
	if l.Total > 0 {
		return l
	}
	ceiling, fds := connectionCeiling()
	l.Total = ceiling
	log.Info("connection limit from the file descriptor limit", "max_connections", ceiling, "descriptors", fds)
	return l
}

// banner tells the person who started the server how to reach it and its
// console. When the secret is the data directory's, it also prints an
// admin token, so that a first run needs no setup.
func (a *app) banner(w io.Writer, addr net.Addr) error {
	web, ws := "http", "ws"
	if a.tls {
		web, ws = "https", "wss"
	}
	base := web + "://" + addr.String()
	metrics := ""
	if a.metricsAddr != nil {
		metrics = fmt.Sprintf("; metrics: http://%s/metrics", a.metricsAddr)
	}
	fmt.Fprintf(w, "Switchboard %s listening on %s (WebSocket: %s://%s/rpc%s)\n", version, base, ws, addr, metrics)
	fmt.Fprintf(w, "Console: %s/\n", base)
	if !a.secretInDataDir {
		return nil
	}
	tok, err := a.authority.Issue("admin", service.Permissions{Admin: true}, 24*time.Hour)
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
	reg := rpc.NewRegistry()
	rs := rpc.NewServer(reg, rpc.Options{})
	hub := service.NewHub(nil, service.HubLimits{}) // describes; never called
	doc, err := api.RegisterMethods(reg, service.Node{}, api.Stats{Conns: rs}, hub, subscriptions.Limits{})()
	if err != nil {
		return err
	}
	_, err = w.Write(doc)
	return err
}
