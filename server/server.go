// Package server is a fully wired Switchboard server: the data directory,
// the token authority, the history store, the hub, the rpc server, the
// HTTP api and the metrics, put together once, so that the binary and the
// tests start the same thing. It plays the part of WTF Dial's Main: the
// binary turns its flags into a Config and its signals into Close.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/subscriptions"
)

// Config is everything a server can be told; its fields are serve's flags,
// one for one. The defaults live in the flag definitions, not here: the
// zero value of several fields means something (HistorySize 0 keeps every
// publication, ShutdownDelay 0 drains at once), and the zero values of the
// limits are filled in by the packages that own them, so a zero Config is
// a working server.
type Config struct {
	Listen          string // host:port; also decides the default AllowedHosts
	TLSCert, TLSKey string // PEM files; both or neither
	MetricsListen   string // serve /metrics there instead, to anyone; "" for on Listen, to admins
	DataDir         string
	TokenSecret     string // "" for the data directory's
	Version         string // what serverInfo reports
	Tokens          Tokens // tokens from elsewhere: public keys, a JWKS, their checks

	AllowedOrigins     []string
	AllowedHosts       []string // nil for the default of Listen (see allowedHosts)
	TrustedProxies     []string // addresses or CIDR ranges
	ProxyHeader        string   // X-Forwarded-For (also "") or Forwarded, in any case
	Anonymous          bool
	AnonymousPublish   []string
	AnonymousSubscribe []string

	Engine string // EngineEmbedded (also "") or EngineRedis
	Redis  Redis

	Limits            rpc.Limits
	HistorySize       int
	HistoryTTL        time.Duration
	IdempotencyWindow time.Duration
	MaxDataSize       int
	MaxSubscriptions  int
	ConnLimits        api.ConnLimits // Total 0: the file descriptor limit less a reserve
	PublishRate       float64
	PublishBurst      int
	HandshakeRate     float64
	HandshakeBurst    int
	ReadTimeout       time.Duration
	ShutdownDelay     time.Duration
}

// Tokens configure the verification of tokens that someone else issues,
// besides the HS256 ones signed with the token secret.
type Tokens struct {
	PublicKeyFiles []string // PEM files of public keys
	JWKSURL        string
	JWKSMinRefresh time.Duration // 0: auth.DefaultJWKS's
	JWKSTimeout    time.Duration // 0: auth.DefaultJWKS's
	Issuer         string
	Audience       string
	Leeway         time.Duration // 0: auth.DefaultLeeway; negative: none
	Claims         auth.ClaimNames
}

// RevocationsFile is the data directory's file of revoked users.
const RevocationsFile = "revocations.json"

// ConfigError is a mistake in a Config. Its message names the flag, as
// the binary, which reports it as a usage error, is how most get there.
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &ConfigError{fmt.Sprintf(format, args...)}
}

// Server is a wired server: New builds it, Open serves it, Close drains it.
type Server struct {
	cfg             Config
	log             *slog.Logger
	node            service.Node
	authority       *auth.Authority
	secretInDataDir bool
	tls             bool // serving HTTPS and WSS
	api             *api.Server
	engine          engine
	// metrics serves /metrics on MetricsListen, when it is set.
	metrics *http.Server

	opened      bool
	addr        net.Addr
	metricsAddr net.Addr
	serving     sync.WaitGroup // the Serve goroutines of Open
	failed      chan error     // what they return before Close, if anything
}

// New builds a server from cfg: it creates the data directory's secret
// and node id if need be and opens the history, but listens on nothing
// until Open.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	tlsConfig, proxies, proxyHeader, err := cfg.network(logger)
	if err != nil {
		return nil, err
	}
	secret, fromDataDir, err := TokenSecret(cfg.TokenSecret, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	revocations, err := auth.OpenRevocations(filepath.Join(cfg.DataDir, RevocationsFile))
	if err != nil {
		return nil, err
	}
	authority, err := cfg.Tokens.authority(secret, revocations, logger)
	if err != nil {
		return nil, err
	}
	nodeID, _, err := loadOrCreate(cfg.DataDir, nodeIDFile, 8)
	if err != nil {
		return nil, err
	}
	node := service.Node{ID: nodeID, Version: cfg.Version, StartedAt: time.Now()}

	engine, err := openEngine(cfg, node, logger)
	if err != nil {
		return nil, err
	}
	hub := service.NewHub(engine, service.HubLimits{MaxDataSize: cfg.MaxDataSize,
		PublishRate: cfg.PublishRate, PublishBurst: cfg.PublishBurst})

	m := metrics.New()
	reg := rpc.NewRegistry()
	rs := rpc.NewServer(reg, rpc.Options{Limits: cfg.Limits, Logger: logger, Observer: m})
	doc := api.RegisterMethods(reg, node, api.Stats{Conns: rs, Totals: m, MaxBatch: rs.Limits().MaxBatch}, hub, subscriptions.Limits{MaxPerSession: cfg.MaxSubscriptions,
		SendQueue: rs.Limits().SendQueue, SendQueueBytes: rs.Limits().SendQueueBytes},
		api.Identity{Tokens: authority, Conns: rs, Revocations: revocations})
	if _, err := doc(); err != nil {
		engine.Close()
		return nil, fmt.Errorf("openrpc document: %w", err)
	}

	apiCfg := cfg.httpConfig(logger)
	apiCfg.Tokens, apiCfg.TLS, apiCfg.TrustedProxies, apiCfg.ProxyHeader = authority, tlsConfig, proxies, proxyHeader
	apiCfg.Ready, apiCfg.OpenRPC, apiCfg.Metrics = engine.Err, doc, m.Handler()
	var metricsServer *http.Server
	if cfg.MetricsListen != "" {
		// Rebinding reaches a loopback metrics address as it does the main one.
		metricsServer = newMetricsServer(api.AllowHosts(apiCfg.Metrics, allowedHosts(cfg.AllowedHosts, cfg.MetricsListen)), logger)
		apiCfg.Metrics = nil
	}
	return &Server{cfg: cfg, log: logger, node: node, authority: authority, secretInDataDir: fromDataDir,
		tls: tlsConfig != nil, api: api.New(apiCfg, rs), engine: engine, metrics: metricsServer,
		failed: make(chan error, 2)}, nil
}

// Open listens on Listen, and on MetricsListen when it is set, and serves
// them until Close.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if s.metrics != nil {
		mln, err := net.Listen("tcp", s.cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen for metrics: %w", err)
		}
		s.metricsAddr = mln.Addr()
		s.serve(func() error { return serveMetrics(s.metrics, mln) })
	}
	s.addr = ln.Addr()
	s.opened = true
	s.serve(func() error { return s.api.Serve(ln) })
	return nil
}

// serve runs one of Open's Serve loops, which Close waits for.
func (s *Server) serve(loop func() error) {
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		if err := loop(); err != nil {
			s.failed <- err
		}
	}()
}

// Failed receives the error of a Serve loop that ended by itself, before
// Close: the server no longer serves and should be closed.
func (s *Server) Failed() <-chan error { return s.failed }

// Close stops serving, lets calls in flight finish (after ShutdownDelay,
// with /readyz failing meanwhile), and then closes the history once
// everything acknowledged is committed. A drain that ctx cuts short drops
// the remaining connections and is logged, not returned: the history
// still closes cleanly.
func (s *Server) Close(ctx context.Context) error {
	if s.opened {
		if err := s.api.Shutdown(ctx); err != nil {
			s.log.Warn("shutdown cut short; remaining connections were dropped", "err", err)
		}
		if s.metrics != nil {
			// Last, so that the drain can be watched.
			if err := s.metrics.Shutdown(ctx); err != nil {
				s.log.Warn("metrics server shutdown cut short", "err", err)
			}
		}
	}
	err := s.engine.Close()
	s.serving.Wait()
	if err != nil {
		return fmt.Errorf("close history: %w", err)
	}
	return nil
}

// Addr is where the server listens, once open.
func (s *Server) Addr() net.Addr { return s.addr }

// MetricsAddr is where /metrics is served on its own, once open; nil when
// MetricsListen is not set.
func (s *Server) MetricsAddr() net.Addr { return s.metricsAddr }

// Node is the server's identity, as serverInfo reports it.
func (s *Server) Node() service.Node { return s.node }

// TLS tells whether the server serves HTTPS and WSS.
func (s *Server) TLS() bool { return s.tls }

// Authority issues and verifies the server's access tokens.
func (s *Server) Authority() *auth.Authority { return s.authority }

// SecretInDataDir tells whether the token secret is the data directory's
// rather than one given, so that whoever reads the data directory may
// also be handed an admin token.
func (s *Server) SecretInDataDir() bool { return s.secretInDataDir }

// network checks and loads what of cfg says how clients reach the
// server, before New touches the data directory.
func (cfg Config) network(logger *slog.Logger) (tlsConfig *tls.Config, proxies []*net.IPNet, proxyHeader string, err error) {
	if tlsConfig, err = serverTLS(cfg, logger); err != nil {
		return nil, nil, "", err
	}
	if proxies, err = parseCIDRs(cfg.TrustedProxies); err != nil {
		return nil, nil, "", err
	}
	if proxyHeader, err = parseProxyHeader(cfg.ProxyHeader); err != nil {
		return nil, nil, "", err
	}
	return tlsConfig, proxies, proxyHeader, nil
}

// httpConfig is the HTTP server's configuration as cfg gives it.
func (cfg Config) httpConfig(logger *slog.Logger) api.Config {
	var anon *service.Permissions
	if cfg.Anonymous {
		anon = &service.Permissions{Publish: cfg.AnonymousPublish, Subscribe: cfg.AnonymousSubscribe}
	}
	return api.Config{
		Anonymous:      anon,
		AllowedOrigins: cfg.AllowedOrigins,
		AllowedHosts:   allowedHosts(cfg.AllowedHosts, cfg.Listen),
		ShutdownDelay:  cfg.ShutdownDelay,
		ReadTimeout:    cfg.ReadTimeout,
		ConnLimits:     connLimits(cfg.ConnLimits, logger),
		HandshakeRate:  cfg.HandshakeRate,
		HandshakeBurst: cfg.HandshakeBurst,
		Logger:         logger,
	}
}

// serverTLS loads the key pair of TLSCert and TLSKey, which go together;
// nil when neither is given.
func serverTLS(cfg Config, logger *slog.Logger) (*tls.Config, error) {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, configErrorf("--tls-cert and --tls-key go together: give both or neither")
	}
	if cfg.TLSCert == "" {
		return nil, nil
	}
	return api.TLSConfig(cfg.TLSCert, cfg.TLSKey, logger)
}

// parseCIDRs parses TrustedProxies: CIDR ranges, or single addresses.
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
			return nil, configErrorf("--trusted-proxies %q: not an address or a CIDR range", s)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// parseProxyHeader parses ProxyHeader, in any case; "" is
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
	return "", configErrorf("--trusted-proxy-header %q: want %s or %s", h, api.XForwardedFor, api.ForwardedHeader)
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
	if isLoopback(host) {
		return api.LoopbackHosts
	}
	return nil
}

// authority builds the token authority: the secret's, with the public
// keys and the JWK Set of t. The set is fetched now, within its timeout.
func (t Tokens) authority(secret []byte, revocations *auth.Revocations, log *slog.Logger) (*auth.Authority, error) {
	opts := auth.Options{
		JWKS:        auth.JWKS{URL: t.JWKSURL, MinRefresh: t.JWKSMinRefresh, Timeout: t.JWKSTimeout},
		Issuer:      t.Issuer,
		Audience:    t.Audience,
		Leeway:      t.Leeway,
		Claims:      t.Claims,
		Logger:      log,
		Revocations: revocations,
	}
	for _, f := range t.PublicKeyFiles {
		keys, err := auth.ReadPublicKeys(f)
		if err != nil {
			return nil, configErrorf("--token-public-key: %v", err)
		}
		opts.PublicKeys = append(opts.PublicKeys, keys...)
	}
	if t.JWKSURL != "" {
		// Whoever can change the set in flight can sign admin tokens:
		// plain HTTP only to this machine.
		u, err := url.Parse(t.JWKSURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return nil, configErrorf("--token-jwks-url: want an https URL (http only to a loopback address)")
		}
	}
	a, err := auth.Open(context.Background(), secret, opts)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return a, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// OpenRPC returns the OpenRPC document of the methods New registers,
// without a server: what make openrpc commits as openrpc.json.
func OpenRPC() ([]byte, error) {
	reg := rpc.NewRegistry()
	rs := rpc.NewServer(reg, rpc.Options{})
	hub := service.NewHub(nil, service.HubLimits{}) // describes; never called
	return api.RegisterMethods(reg, service.Node{}, api.Stats{Conns: rs}, hub, subscriptions.Limits{}, api.Identity{Conns: rs})()
}
