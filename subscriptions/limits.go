package subscriptions

import "github.com/switchboard/switchboard/rpc"

// Limits bound the subscriptions of one session. Zero fields take
// DefaultLimits' values.
type Limits struct {
	// MaxPerSession is the most channels one session may subscribe to at
	// once.
	MaxPerSession int
	// SendQueue and SendQueueBytes are the bounds of the connection's
	// send queue (rpc.Limits): a new subscription holds back at most as
	// many notifications, and as many bytes of them, while its reply is
	// on its way.
	SendQueue, SendQueueBytes int
}

// DefaultLimits are the limits used for fields left zero.
var DefaultLimits = Limits{
	MaxPerSession:  1000,
	SendQueue:      rpc.DefaultLimits.SendQueue,
	SendQueueBytes: rpc.DefaultLimits.SendQueueBytes,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxPerSession > 0 {
		d.MaxPerSession = l.MaxPerSession
	}
	if l.SendQueue > 0 {
		d.SendQueue = l.SendQueue
	}
	if l.SendQueueBytes > 0 {
		d.SendQueueBytes = l.SendQueueBytes
	}
	return d
}
