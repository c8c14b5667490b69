// Package api is Switchboard's HTTP face, built on Echo: it routes,
// authenticates, checks origins and upgrades to WebSocket, then hands the
// connection or the request body to the rpc package; it also serves the
// web package's files. It wires the domain's operations to JSON-RPC
// method names (methods.go). Everything that touches Echo lives here, to
// keep a later move to Echo v5 small.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/switchboard/switchboard/ratelimit"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/web"
)

// Verifier checks an access token and returns the caller it proves.
type Verifier interface {
	Verify(token string) (service.Caller, error)
}

// Config configures a Server.
type Config struct {
	// Tokens verifies access tokens.
	Tokens Verifier
	// Anonymous, when not nil, lets callers without a token in, with
	// these permissions. When nil, such callers get HTTP 401.
	Anonymous *service.Permissions
	// AllowedOrigins are host patterns (path.Match syntax, matched
	// against the Origin's host, or against scheme://host when the
	// pattern has "://") that may open WebSockets besides the server's
	// own host.
	AllowedOrigins []string
	// AllowedHosts are host patterns (path.Match syntax) that the Host
	// header of every request must match, unless it is an IP address;
	// nil allows any host. See LoopbackHosts.
	AllowedHosts []string
	// ShutdownDelay is how long Shutdown keeps serving, with /readyz
	// failing, before it stops accepting: time for a load balancer to
	// notice.
	ShutdownDelay time.Duration
	// Ready, when set, says why the server cannot serve, if it cannot:
	// /readyz fails while it returns an error, so that a load balancer
	// sends clients elsewhere.
	Ready func() error
	// TLS, when set, makes Serve speak HTTPS and WSS; see TLSConfig.
	TLS *tls.Config
	// OpenRPC returns the OpenRPC document served at /openrpc.json.
	OpenRPC func() ([]byte, error)
	// ReadTimeout bounds the reading of one request, body included; a
	// WebSocket is free of it once upgraded. Zero means 30 seconds.
	ReadTimeout time.Duration
	// TrustedProxies are the addresses of the proxies in front of the
	// server: only requests from them may say, in ProxyHeader, who the
	// client is. With none, nobody may.
	TrustedProxies []*net.IPNet
	// ProxyHeader is the header the trusted proxies write the client in:
	// XForwardedFor (the default) or ForwardedHeader. The other is
	// ignored, since a proxy passes on what it does not write.
	ProxyHeader string
	// ConnLimits bound the WebSocket connections open at once.
	ConnLimits ConnLimits
	// HandshakeRate, when above zero, is how many WebSocket handshakes a
	// second one client address may make, in bursts of HandshakeBurst
	// (default: one second's worth); more get HTTP 429.
	HandshakeRate  float64
	HandshakeBurst int
	// Metrics serves /metrics, to admins only; nil serves nothing there.
	Metrics http.Handler
	Logger  *slog.Logger
}

// Server is the HTTP server.
type Server struct {
	cfg        Config
	rpc        *rpc.Server
	echo       *echo.Echo
	http       *http.Server
	log        *slog.Logger
	conns      *connCounter
	handshakes *ratelimit.Keyed // per client address; nil without HandshakeRate
	tooFast    *rateLimitedLog  // handshakes refused
	accepts    *rateLimitedLog  // Accept's failures
	draining   atomic.Bool
}

// New returns a server that serves rs.
func New(cfg Config, rs *rpc.Server) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, rpc: rs, log: cfg.Logger,
		conns: newConnCounter(cfg.ConnLimits, cfg.Logger), accepts: newRateLimitedLog(cfg.Logger, warnEvery),
		tooFast: newRateLimitedLog(cfg.Logger, warnEvery)}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = clientIP(cfg.TrustedProxies, cfg.ProxyHeader)
	e.HTTPErrorHandler = s.handleError
	e.Use(assignRequestID, s.logRequests, closeUnreadBodies, s.recoverPanics,
		echo.WrapMiddleware(func(h http.Handler) http.Handler { return AllowHosts(h, cfg.AllowedHosts) }))

	if cfg.HandshakeRate > 0 {
		s.handshakes = ratelimit.New(cfg.HandshakeRate, cfg.HandshakeBurst)
	}
	// Cheapest first: a flood of handshakes costs no token verification.
	e.GET("/rpc", s.upgrade, s.limitHandshakes, s.checkOrigin, s.authenticate)
	cors := s.cors()
	e.POST("/rpc", s.call, cors, s.authenticate)
	e.OPTIONS("/rpc", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, cors)
	// Echo routes HEAD apart from GET (a GET route answers HEAD with
	// 405), hence Match for what load balancers, monitors and caches
	// probe with HEAD.
	getOrHead := []string{http.MethodGet, http.MethodHead}
	e.Match(getOrHead, "/openrpc.json", s.openRPC)
	// The TypeScript client, for pages to import from the server they talk
	// to, and the console; public, like the contract.
	e.Match(getOrHead, "/sdk/switchboard.js", echo.WrapHandler(web.ClientModule))
	e.Match(getOrHead, "/sdk/switchboard.d.ts", echo.WrapHandler(web.ClientTypes))
	e.Match(getOrHead, "/", echo.WrapHandler(web.Console["index.html"]), consolePolicy)
	e.Match(getOrHead, "/console/:file", serveConsole, consolePolicy)
	e.Match(getOrHead, "/healthz", s.healthz)
	e.Match(getOrHead, "/readyz", s.readyz)
	if cfg.Metrics != nil {
		// Descriptor counts, memory and versions are no one else's
		// business; a scraper sends an admin token (or the metrics are
		// served on another address, for an operations network).
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics), s.authenticate, requireAdmin)
	}
	s.echo = e
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		// Without it, a body sent a byte a second holds its connection
		// for ever, even once it has been refused: net/http reads the
		// rest of a small unread body before it answers.
		ReadTimeout: cfg.ReadTimeout,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		TLSConfig:   cfg.TLS,
		// No HTTP/2: WebSockets need HTTP/1.1 (see TLSConfig). A non-nil
		// map without "h2" is how net/http is told.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	return s
}

// DefaultReadTimeout is Config.ReadTimeout when left zero.
const DefaultReadTimeout = 30 * time.Second

// Handler returns the server's HTTP handler, for tests that bring their
// own listener.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve accepts connections on ln until Shutdown, over TLS when
// Config.TLS is set. It returns nil after a clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	ln = &loggingListener{Listener: ln, warn: s.accepts}
	var err error
	if s.http.TLSConfig != nil {
		err = s.http.ServeTLS(ln, "", "") // the certificate is the config's
	} else {
		err = s.http.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown drains the server: /readyz fails at once; after ShutdownDelay
// it stops accepting connections, lets calls in flight finish and closes
// every WebSocket with 1001 (Going Away). It returns when all of that is
// done or ctx ends, whichever is first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	if d := s.cfg.ShutdownDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	// http.Server.Shutdown does not know about hijacked connections; the
	// rpc server tracks and closes those itself.
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Shutdown(ctx) }()
	rpcErr := s.rpc.Shutdown(ctx)
	return errors.Join(<-httpDone, rpcErr)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openRPC(c echo.Context) error {
	doc, err := s.cfg.OpenRPC()
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, doc)
}

// httpError is the JSON body of every HTTP error response.
type httpError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorBody(code, message string) httpError {
	var e httpError
	e.Error.Code, e.Error.Message = code, message
	return e
}

// refusal is an error that handleError answers with status and a body of
// code and message.
func refusal(status int, code, message string) *echo.HTTPError {
	return &echo.HTTPError{Code: status, Message: errorBody(code, message)}
}

// handleError answers every error with a JSON body.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, msg := http.StatusInternalServerError, "internal", "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		code = statusCode(status)
		switch m := he.Message.(type) {
		case httpError:
			code, msg = m.Error.Code, m.Error.Message
		case string:
			msg = m
		default:
			msg = http.StatusText(status)
		}
	} else {
		s.log.Error("request failed", "path", c.Path(), "err", err)
	}
	if werr := c.JSON(status, errorBody(code, msg)); werr != nil {
		s.log.Debug("writing error response", "err", werr)
	}
}

// statusCode names an HTTP status in the snake_case style of the error
// codes: 404 is "not_found", 405 "method_not_allowed".
func statusCode(status int) string {
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("http handler panicked", "path", c.Path(), "err", err, "stack", string(stack))
			return err
		},
	})(next)
}
