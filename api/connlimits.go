package api

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/switchboard/switchboard/ratelimit"
	"github.com/switchboard/switchboard/service"
)

// ConnLimits bound the WebSocket connections open at once. Zero means no
// limit. Admins are let in past them, so that an operator can still look
// at a server that is full; they count all the same.
type ConnLimits struct {
	Total   int // on the whole server
	PerUser int // per token subject; anonymous callers have no user
	PerIP   int // per client address
}

// connCounter counts open WebSocket connections by user and address.
// Entries are removed when they drop to zero, so it holds no more than
// the connections themselves.
type connCounter struct {
	limits ConnLimits
	warn   *rateLimitedLog

	mu     sync.Mutex
	total  int
	byUser map[string]int
	byIP   map[string]int
}

func newConnCounter(limits ConnLimits, log *slog.Logger) *connCounter {
	return &connCounter{limits: limits, warn: newRateLimitedLog(log, warnEvery),
		byUser: map[string]int{}, byIP: map[string]int{}}
}

// open counts a new connection of caller from ip, unless it would go past
// a limit; the error then says which. release uncounts it, once.
func (cc *connCounter) open(caller service.Caller, ip string) (release func(), err error) {
	ip = ratelimit.AddressKey(ip)
	user := caller.User
	if caller.Anonymous {
		user = ""
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !caller.Permissions.Admin {
		if err := cc.check(user, ip); err != nil {
			cc.warn.Warn("connection refused: a connection limit is reached", "reason", err.Error(), "user", user, "remote", ip)
			return nil, err
		}
	}
	cc.total++
	cc.byIP[ip]++
	if user != "" {
		cc.byUser[user]++
	}
	var once sync.Once
	return func() { once.Do(func() { cc.close(user, ip) }) }, nil
}

func (cc *connCounter) check(user, ip string) error {
	l := cc.limits
	switch {
	case l.Total > 0 && cc.total >= l.Total:
		return fmt.Errorf("the server holds its most WebSocket connections (%d, --max-connections); try again later", l.Total)
	case l.PerUser > 0 && user != "" && cc.byUser[user] >= l.PerUser:
		return fmt.Errorf("user %q holds its most WebSocket connections (%d, --max-connections-per-user)", user, l.PerUser)
	case l.PerIP > 0 && cc.byIP[ip] >= l.PerIP:
		return fmt.Errorf("%s holds its most WebSocket connections (%d, --max-connections-per-ip)", ip, l.PerIP)
	}
	return nil
}

func (cc *connCounter) close(user, ip string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.total--
	if cc.byIP[ip]--; cc.byIP[ip] == 0 {
		delete(cc.byIP, ip)
	}
	if user != "" {
		if cc.byUser[user]--; cc.byUser[user] == 0 {
			delete(cc.byUser, user)
		}
	}
}

// limitHandshakes refuses a client address its handshakes past
// HandshakeRate, with 429 and how long to wait.
func (s *Server) limitHandshakes(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.handshakes == nil {
			return next(c)
		}
		ok, wait := s.handshakes.Allow(ratelimit.AddressKey(c.RealIP()))
		if ok {
			return next(c)
		}
		s.tooFast.Warn("handshake refused: --rate-handshakes reached", "remote", c.RealIP())
		c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return refusal(http.StatusTooManyRequests, "too_many_handshakes",
			fmt.Sprintf("more than %g WebSocket handshakes a second from %s (--rate-handshakes); retry in %v",
				s.cfg.HandshakeRate, c.RealIP(), wait.Round(time.Millisecond)))
	}
}
