package rpc

import "time"

// Observer is told what the server does, for metrics. Its methods are
// called on hot paths and must not block.
type Observer interface {
	ConnOpened()
	// ConnClosed reports a connection's end and why, as one of the
	// Reason* values.
	ConnClosed(reason string)
	// CallDone reports a finished call. method is "unknown" for names
	// that are not registered, to keep the label set bounded; outcome is
	// "ok" or a short error name such as "invalid_params".
	CallDone(method, outcome string, elapsed time.Duration)
	NotificationSent()
	NotificationDropped()
}

// Reasons a connection ends, as reported to Observer.ConnClosed.
const (
	ReasonClient        = "client"        // the client closed or went away
	ReasonSlowConsumer  = "slow_consumer" // its send queue overflowed
	ReasonPingTimeout   = "ping_timeout"  // it stopped answering pings
	ReasonWriteError    = "write_error"   // a write failed or timed out
	ReasonMessageTooBig = "message_too_big"
	ReasonBadFrame      = "unsupported_data" // a binary frame
	ReasonTokenExpired  = "token_expired"
	ReasonDisconnected  = "disconnected" // by an admin
	ReasonShutdown      = "shutdown"
)

type nopObserver struct{}

func (nopObserver) ConnOpened()                            {}
func (nopObserver) ConnClosed(string)                      {}
func (nopObserver) CallDone(string, string, time.Duration) {}
func (nopObserver) NotificationSent()                      {}
func (nopObserver) NotificationDropped()                   {}
