package rpc

import "time"

// Limits bound what one connection may cost the server. The zero value of
// a field means its default.
type Limits struct {
	// MaxMessageSize is the largest incoming WebSocket message or HTTP
	// body, in bytes. A larger WebSocket message closes the connection
	// with 1009; a larger HTTP body gets HTTP 413.
	MaxMessageSize int64
	// MaxBatch is the most calls one batch may hold.
	MaxBatch int
	// MaxConcurrentCalls is how many calls of one connection may run at
	// once. Further calls wait, unread, so a pipelining client is slowed
	// rather than refused. The default, 64, is set by publishing: a
	// publish waits about a millisecond for its group commit, so a
	// connection's publish rate is about MaxConcurrentCalls per commit,
	// and bigger batches cost less per publication.
	MaxConcurrentCalls int
	// SendQueue is how many outgoing messages may wait for a slow client.
	// When a notification finds the queue full, the client is closed with
	// CloseSlowConsumer; replies to its own calls wait instead.
	SendQueue int
	// WriteTimeout bounds one flush of queued messages to a client.
	WriteTimeout time.Duration
	// PingInterval is how often an otherwise idle server pings a client.
	PingInterval time.Duration
	// PongTimeout is how long a ping may go unanswered before the client
	// is taken for dead and dropped.
	PongTimeout time.Duration
}

// DefaultLimits are the limits used for fields left zero.
var DefaultLimits = Limits{
	MaxMessageSize:     1 << 20,
	MaxBatch:           100,
	MaxConcurrentCalls: 64,
	SendQueue:          256,
	WriteTimeout:       10 * time.Second,
	PingInterval:       25 * time.Second,
	PongTimeout:        10 * time.Second,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxMessageSize > 0 {
		d.MaxMessageSize = l.MaxMessageSize
	}
	if l.MaxBatch > 0 {
		d.MaxBatch = l.MaxBatch
	}
	if l.MaxConcurrentCalls > 0 {
		d.MaxConcurrentCalls = l.MaxConcurrentCalls
	}
	if l.SendQueue > 0 {
		d.SendQueue = l.SendQueue
	}
	if l.WriteTimeout > 0 {
		d.WriteTimeout = l.WriteTimeout
	}
	if l.PingInterval > 0 {
		d.PingInterval = l.PingInterval
	}
	if l.PongTimeout > 0 {
		d.PongTimeout = l.PongTimeout
	}
	return d
}
