package api

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// checkOrigin refuses WebSocket upgrades from pages on other sites, the
// cross-site WebSocket hijacking defence. Echo's CORS middleware does not
// apply to WebSockets, and browsers do not enforce CORS on them, so the
// server must check. Requests without an Origin header do not come from
// a browser page and are let through.
func (s *Server) checkOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		origin := r.Header.Get("Origin")
		if origin == "" {
			return next(c)
		}
		if err := originAllowed(origin, r.Host, s.cfg.AllowedOrigins); err != nil {
			return c.JSON(http.StatusForbidden, errorBody("forbidden_origin", err.Error()))
		}
		return next(c)
	}
}

// originAllowed accepts an origin whose host is the request's host, or
// that matches one of patterns: path.Match patterns matched,
// case-insensitively, against the origin's host, or against
// scheme://host when the pattern contains "://".
func originAllowed(origin, host string, patterns []string) error {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q is not a valid URL", origin)
	}
	if strings.EqualFold(withoutDefaultPort(u.Scheme, u.Host), withoutDefaultPort(u.Scheme, host)) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed; allow it with --allowed-origins", origin)
}

// withoutDefaultPort drops the port the scheme implies, so that
// example.com and example.com:443 compare equal for https.
func withoutDefaultPort(scheme, host string) string {
	switch {
	case strings.EqualFold(scheme, "https") && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	case strings.EqualFold(scheme, "http") && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	}
	return host
}

// hostAllowed reports whether host (a Host header, with or without a
// port) is an IP address or matches one of patterns: path.Match patterns
// matched case-insensitively against the name, "*" for any.
func hostAllowed(host string, patterns []string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
	if net.ParseIP(name) != nil {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(name)); ok {
			return true
		}
	}
	return false
}

// AllowHosts serves h to requests whose Host is an IP address or matches
// patterns, and 403 to the rest; nil patterns allow any host. It is the
// DNS rebinding defence: a page on attacker.test, whose name the attacker
// then points at 127.0.0.1, is of the same origin as the server it
// reaches, so the origin check lets it through, but its Host header still
// says attacker.test. IP addresses are always allowed: a page cannot
// rebind one. Requests without a Host (HTTP/1.0) do not come from
// browsers. The Server checks every request so, and handlers served apart
// from it, such as metrics on an address of their own, need it too.
func AllowHosts(h http.Handler, patterns []string) http.Handler {
	if patterns == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "" && !hostAllowed(r.Host, patterns) {
			w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(errorBody("forbidden_host", fmt.Sprintf("host %q is not allowed; allow it with --allowed-hosts", r.Host)))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// LoopbackHosts are the host patterns allowed by default to a server that
// listens on a loopback address: the names that resolve to it there, as
// Vite and Jupyter allow.
var LoopbackHosts = []string{"localhost", "*.localhost"}

// cors lets pages of the --allowed-origins call POST /rpc, as browsers
// require for a request of another origin with an Authorization header:
// the preflight is answered, and replies (refusals included, so that the
// page can read why) say the origin may read them. Tokens travel in the
// header, never in cookies, so credentials are not allowed.
func (s *Server) cors() echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) {
			return originAllowed(origin, "", s.cfg.AllowedOrigins) == nil, nil
		},
		AllowMethods:  []string{http.MethodPost},
		AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType},
		ExposeHeaders: []string{echo.HeaderXRequestID, echo.HeaderWWWAuthenticate},
		MaxAge:        600,
	})
}
