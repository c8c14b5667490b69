package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

const (
	callerKey   = "switchboard.caller"
	provenAtKey = "switchboard.provenAt" // when the token was verified
)

// authenticate proves the caller before anything else happens, in
// particular before a WebSocket upgrade: a token from the Authorization
// header ("Bearer …"), or, for browsers, which cannot set headers on a
// WebSocket, from the access_token query parameter.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, err := bearerToken(c.Request())
		if err != nil {
			return s.unauthorized(c, err.Error())
		}
		var caller service.Caller
		switch {
		case token != "":
			caller, err = s.cfg.Tokens.Verify(token)
			if err != nil {
				return s.unauthorized(c, service.ErrorMessage(err))
			}
		case s.cfg.Anonymous != nil:
			caller = service.Caller{Anonymous: true, Permissions: *s.cfg.Anonymous}
		default:
			return s.unauthorized(c, "missing token: send Authorization: Bearer TOKEN or the access_token query parameter")
		}
		c.Set(callerKey, caller)
		c.Set(provenAtKey, time.Now())
		return next(c)
	}
}

// requireAdmin lets only admins through; it follows authenticate.
func requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !callerOf(c).Permissions.Admin {
			return refusal(http.StatusForbidden, "forbidden", "this needs an admin token")
		}
		return next(c)
	}
}

func callerOf(c echo.Context) service.Caller {
	caller, _ := c.Get(callerKey).(service.Caller)
	return caller
}

type authError string

func (e authError) Error() string { return string(e) }

// bearerToken returns the request's token, "" when it has none.
func bearerToken(r *http.Request) (string, error) {
	if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", authError(`malformed Authorization header: want "Bearer TOKEN"`)
		}
		return strings.TrimSpace(token), nil
	}
	return r.URL.Query().Get("access_token"), nil
}

func (s *Server) unauthorized(c echo.Context, msg string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="switchboard"`)
	if c.Request().Method == http.MethodPost && c.Path() == "/rpc" {
		// JSON-RPC clients read a JSON-RPC error; HTTP 401 says the same
		// to everything else.
		body := peekBody(c, s.rpc.Limits().MaxMessageSize)
		return c.Blob(http.StatusUnauthorized, echo.MIMEApplicationJSON,
			s.rpc.RefuseHTTP(body, &rpc.Error{Code: rpc.CodeUnauthorized, Message: msg}))
	}
	return c.JSON(http.StatusUnauthorized, errorBody("unauthorized", msg))
}
