package api

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// warnEvery is how often, at most, each kind of refusal or failure that
// comes in floods is logged.
const warnEvery = 10 * time.Second

// rateLimitedLog logs a warning at most once per interval, saying how many
// were held back since the last: an outage must show in the log, and must
// not flood it.
type rateLimitedLog struct {
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func newRateLimitedLog(log *slog.Logger, interval time.Duration) *rateLimitedLog {
	return &rateLimitedLog{log: log, interval: interval}
}

// Warn logs msg with args, unless it logged within the interval.
func (r *rateLimitedLog) Warn(msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < r.interval {
		r.dropped++
		r.mu.Unlock()
		return
	}
	r.last = now
	dropped := r.dropped
	r.dropped = 0
	r.mu.Unlock()
	r.log.Warn(msg, append(args, "like_this_since_last_logged", dropped)...)
}

// loggingListener logs at warn the errors of Accept, such as running out
// of file descriptors, which net/http only retries and tells its error
// log, at debug level.
type loggingListener struct {
	net.Listener
	warn *rateLimitedLog
}

func (l *loggingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		l.warn.Warn("accepting a connection failed; net/http retries", "err", err)
	}
	return conn, err
}
