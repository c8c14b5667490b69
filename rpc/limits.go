package rpc

import "time"

// heavyPerConn is how many calls of Heavy methods one connection runs at
// once: two let one be written while the next reads, and bound what a
// client that reads nothing makes the server hold to the send queue and
// two replies.
const heavyPerConn = 2

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
	// SendQueueBytes bounds the same queue in bytes, the messages being
	// written included: the queue is full once they reach it. Without
	// it, a few hundred history pages queued for a client that does not
	// read would hold gigabytes.
	SendQueueBytes int
	// MaxBatchReplySize bounds the replies to one batch, in bytes. Once
	// the replies of its calls pass it, the calls still to run are not
	// run and get CodeLimitExceeded: a small batch of history reads
	// cannot make the server hold hundreds of megabytes.
	MaxBatchReplySize int
	// MaxHeavyCalls is how many calls of Heavy methods (history pages,
	// recoveries) run at once on the whole server; more wait. Each may
	// hold megabytes while it reads and encodes. One connection runs at
	// most heavyPerConn of them at once, their replies' wait for room in
	// its queue included.
	MaxHeavyCalls int
	// CallRate, when above zero, is how many calls a second one
	// connection may make, or one client address over HTTP, in bursts of
	// up to CallBurst (default: one second's worth). A call past it is
	// answered CodeLimitExceeded, with how long to wait, and not run; the
	// connection goes on.
	CallRate  float64
	CallBurst int
	// WriteTimeout bounds one flush of queued messages to a client.
	WriteTimeout time.Duration
	// WriteDelay is how long a notification may wait for others to the
	// same client before they are written, together, in one system call;
	// negative: none, each is written at once. Replies are never
	// delayed. The default, a millisecond, is well under what a client
	// notices, and lets a busy fan-out write a few notifications per
	// system call instead of one.
	WriteDelay time.Duration
	// ParkAfter is how long a connection's read loop waits for the
	// client's next message before it parks: its goroutines end and the
	// server watches the socket for it, until something comes. An idle
	// connection then holds memory but no goroutine. Zero: the default;
	// negative: never park. Only plain TCP connections on Linux park.
	ParkAfter time.Duration
	// PingInterval is how often an otherwise idle server pings a client.
	PingInterval time.Duration
	// PongTimeout is how long a client may send nothing after a ping,
	// pong or other, before it is taken for dead and dropped. Pings go
	// every PingInterval, or every PongTimeout if that is longer.
	PongTimeout time.Duration
	// ExpiryNotice is how long before its token expires a WebSocket
	// client gets the sessionExpiring notification (or halfway through
	// the token's life, when that is shorter).
	ExpiryNotice time.Duration
}

// DefaultLimits are the limits used for fields left zero.
var DefaultLimits = Limits{
	MaxMessageSize:     1 << 20,
	MaxBatch:           100,
	MaxConcurrentCalls: 64,
	SendQueue:          256,
	SendQueueBytes:     4 << 20,
	MaxBatchReplySize:  8 << 20,
	MaxHeavyCalls:      16,
	WriteTimeout:       10 * time.Second,
	WriteDelay:         time.Millisecond,
	ParkAfter:          100 * time.Millisecond,
	PingInterval:       25 * time.Second,
	PongTimeout:        10 * time.Second,
	ExpiryNotice:       time.Minute,
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
	if l.SendQueueBytes > 0 {
		d.SendQueueBytes = l.SendQueueBytes
	}
	if l.MaxBatchReplySize > 0 {
		d.MaxBatchReplySize = l.MaxBatchReplySize
	}
	if l.MaxHeavyCalls > 0 {
		d.MaxHeavyCalls = l.MaxHeavyCalls
	}
	if l.CallRate > 0 {
		d.CallRate, d.CallBurst = l.CallRate, l.CallBurst
	}
	if l.WriteTimeout > 0 {
		d.WriteTimeout = l.WriteTimeout
	}
	if l.WriteDelay != 0 {
		d.WriteDelay = max(l.WriteDelay, 0)
	}
	if l.ParkAfter != 0 {
		d.ParkAfter = max(l.ParkAfter, 0)
	}
	if l.PingInterval > 0 {
		d.PingInterval = l.PingInterval
	}
	if l.PongTimeout > 0 {
		d.PongTimeout = l.PongTimeout
	}
	if l.ExpiryNotice > 0 {
		d.ExpiryNotice = l.ExpiryNotice
	}
	return d
}
