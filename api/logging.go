package api

import (
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/switchboard/switchboard/rpc"
)

// assignRequestID gives every request an id of the server's making, in the
// X-Request-Id response header. An id sent by the client is not reused:
// the id of an upgrade becomes the connection's id, which other clients
// may see (in presence lists, for one), so it must be unique and not
// chosen by the client. The client's own id is logged beside ours.
func assignRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderXRequestID, rpc.NewID())
		return next(c)
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// logRequests writes one log line per HTTP request. The query string is
// logged with access_token redacted: tokens never reach the logs.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		r := c.Request()
		s.log.Info("http request",
			"request_id", requestID(c),
			"client_request_id", r.Header.Get(echo.HeaderXRequestID),
			"method", r.Method,
			"path", r.URL.Path,
			"query", redactQuery(r.URL.RawQuery),
			"status", c.Response().Status,
			"remote", c.RealIP(),
			"elapsed", time.Since(start),
		)
		return nil
	}
}

// redactQuery hides the values of parameters that carry secrets: those
// named for them, in any case, and any value that looks like a JWT, for
// the token a client sent under a name of its own (jwt=, Access_Token=).
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "(unparsable query redacted)"
	}
	for k, vs := range q {
		secret := secretParams[strings.ToLower(k)]
		for i, v := range vs {
			if secret || looksLikeJWT(v) {
				vs[i] = "REDACTED"
			}
		}
	}
	return q.Encode()
}

var secretParams = map[string]bool{"access_token": true, "token": true, "jwt": true, "id_token": true,
	"authorization": true, "auth": true, "password": true, "secret": true, "api_key": true}

// looksLikeJWT reports whether v could be a JWS or JWE in compact form:
// base64url segments separated by dots, the first a JSON object (which
// always encodes to a string starting "eyJ").
func looksLikeJWT(v string) bool {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "eyJ") || !strings.Contains(v, ".") {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '=') {
			return false
		}
	}
	return true
}
