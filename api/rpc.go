package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/switchboard/switchboard/rpc"
)

// upgrade turns GET /rpc into a WebSocket served by the rpc server. Auth
// and the origin check have already run.
func (s *Server) upgrade(c echo.Context) error {
	if s.rpc.Draining() {
		return c.JSON(http.StatusServiceUnavailable, errorBody("unavailable", "server is shutting down"))
	}
	if !isUpgrade(c.Request()) {
		c.Response().Header().Set("Upgrade", "websocket")
		return c.JSON(http.StatusUpgradeRequired, errorBody("upgrade_required",
			"GET /rpc is the WebSocket endpoint; send a WebSocket handshake, or POST JSON-RPC to /rpc"))
	}
	// c.Response(), not c.Response().Writer: the handshake must mark
	// Echo's response committed so that nothing writes to the hijacked
	// connection. The origin was checked by checkOrigin. Upgrade returns
	// at once: the connection lives on, owned by the rpc server, and the
	// request's context must not be used for it.
	caller, ip := callerOf(c), c.RealIP()
	release, err := s.conns.open(caller, ip)
	if err != nil {
		return refusal(http.StatusTooManyRequests, "too_many_connections", err.Error()) // before any upgrade
	}
	proven, _ := c.Get(provenAtKey).(time.Time)
	peer := rpc.Peer{ID: requestID(c), Caller: caller, RemoteAddr: ip, ProvenAt: proven}
	if err := s.rpc.Upgrade(c.Response(), c.Request(), peer, release); err != nil {
		// The handshake failed and its HTTP error has been written.
		s.log.Debug("websocket upgrade failed", "err", err)
	}
	return nil
}

// call serves POST /rpc: one JSON-RPC message (a request, a notification
// or a batch) per request body.
func (s *Server) call(c echo.Context) error {
	r := c.Request()
	if ct := r.Header.Get(echo.HeaderContentType); !isJSON(ct) {
		return c.JSON(http.StatusUnsupportedMediaType,
			errorBody("unsupported_media_type", "Content-Type must be application/json"))
	}
	body, err := readBody(c, s.rpc.Limits().MaxMessageSize)
	if err != nil {
		return err
	}
	reply := s.rpc.ServeHTTP(r.Context(), rpc.Peer{ID: requestID(c), Caller: callerOf(c), RemoteAddr: c.RealIP()}, body)
	if reply == nil {
		return c.NoContent(http.StatusNoContent)
	}
	// A client that does not read its reply holds it, megabytes maybe,
	// only as long as a WebSocket may.
	http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(s.rpc.Limits().WriteTimeout))
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(reply)))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, reply)
}

// isUpgrade reports whether r asks for a WebSocket. The full handshake is
// checked by websocket.Accept; this only tells a plain GET apart, so that
// it gets a JSON error like every other failure.
func isUpgrade(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), echo.MIMEApplicationJSON)
}
