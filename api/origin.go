package api

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
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
