package rpc

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/service"
)

// ErrNoSocket is returned by Session.Notify for callers that came over
// HTTP POST, which has no way to carry server notifications.
var ErrNoSocket = errors.New("rpc: the session has no socket")

// Peer is who opens a session: the server's name for it and the identity
// its token proved.
type Peer struct {
	// ID names the connection (or the HTTP request) in logs and replies;
	// unique, and of the server's making.
	ID string
	// Caller is the identity proven by the caller's token.
	Caller service.Caller
	// RemoteAddr is the client's address as the server sees it.
	RemoteAddr string
	// ProvenAt is when the token was verified: a user cut off after it
	// (Server.Disconnect) is cut off as the connection opens, since the
	// upgrade went on with a token that was good then. Zero is the time
	// of the upgrade.
	ProvenAt time.Time
}

// Session is what a handler knows of its caller: who it is and how it is
// connected. A WebSocket session lives as long as its connection; an HTTP
// session lives for one request.
type Session struct {
	// ID names the connection (or the HTTP request) in logs and replies.
	ID string
	// RemoteAddr is the client's address as the server sees it.
	RemoteAddr string

	// caller changes when a WebSocket client refreshes its token, while
	// calls of the old token's may still run: hence a pointer swapped
	// whole, never a struct changed in place.
	caller atomic.Pointer[service.Caller]
	conn   *conn // nil over HTTP
}

// NewSession returns the session of an HTTP call by p, and of tests. A
// WebSocket session is the server's to make.
func NewSession(p Peer) *Session {
	s := &Session{ID: p.ID, RemoteAddr: p.RemoteAddr}
	s.caller.Store(&p.Caller)
	return s
}

// Caller returns the identity proven by the session's token, as of now:
// a WebSocket client may replace its token (see SetCaller).
func (s *Session) Caller() service.Caller { return *s.caller.Load() }

// SetCaller replaces the session's caller with c, proven by a fresh token
// of the same user, and so its permissions and expiry: calls that start
// after it returns see c. On a WebSocket, the connection now closes with
// CloseTokenExpired at c's expiry instead of the old token's, after a
// fresh sessionExpiring notice.
func (s *Session) SetCaller(c service.Caller) {
	if s.conn == nil {
		s.caller.Store(&c)
		return
	}
	s.conn.setCaller(c)
}

// Transport returns "websocket" or "http".
func (s *Session) Transport() string {
	if s.conn != nil {
		return "websocket"
	}
	return "http"
}

// Notify queues n for the session's connection without waiting. A client
// whose queue is full is too slow to keep up: it is disconnected with
// CloseSlowConsumer and Notify returns ErrSlowConsumer.
func (s *Session) Notify(n Notification) error {
	if s.conn == nil {
		return ErrNoSocket
	}
	return s.conn.notify(n)
}

// AfterClose arranges for f to run, in a goroutine of its own, once the
// session's connection has ended. Over HTTP, f never runs: nothing
// outlives the request.
func (s *Session) AfterClose(f func()) {
	if s.conn != nil {
		context.AfterFunc(s.conn.ctx, f)
	}
}

// CloseSlowConsumer closes the session's connection with
// CloseSlowConsumer, as Notify does when the send queue is full. It is for
// callers that hold back notifications in queues of their own and find
// those full.
func (s *Session) CloseSlowConsumer() {
	if s.conn == nil {
		return
	}
	s.conn.srv.obs.NotificationDropped()
	s.conn.closeSlow()
}

// Done returns a channel that is closed when the session's connection
// ends. Over HTTP it is nil: the request's context bounds the session.
func (s *Session) Done() <-chan struct{} {
	if s.conn == nil {
		return nil
	}
	return s.conn.released
}
