package rpc

import (
	"time"

	"github.com/switchboard/switchboard/service"
)

// ExpiringParams are the params of the sessionExpiring notification,
// which a WebSocket client gets Limits.ExpiryNotice before its token
// expires, so that it can send a fresh one (sessionRefresh) rather than
// be closed with CloseTokenExpired.
type ExpiringParams struct {
	ExpiresAt time.Time `json:"expiresAt" doc:"When the connection's token expires, and the connection closes with 4001 unless it is refreshed first."`
}

// SessionExpiring is the method name of the notification.
const SessionExpiring = "sessionExpiring"

// tokenClock is a connection's one timer for its token: it fires first to
// send sessionExpiring, then to close the connection at the expiry. A
// refresh rearms it; gen tells a firing of a timer since replaced, which
// Stop cannot always prevent, from the current one.
type tokenClock struct {
	timer    *time.Timer
	gen      uint64
	expires  time.Time
	noticed  bool // sessionExpiring was sent for expires
	disabled bool // the connection is ending
}

func (t *tokenClock) stop() {
	t.disabled = true
	if t.timer != nil {
		t.timer.Stop()
	}
}

// setCaller replaces the session's caller and rearms the token clock for
// its expiry. See Session.SetCaller.
func (c *conn) setCaller(caller service.Caller) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess.caller.Store(&caller)
	c.armExpiry(caller.ExpiresAt)
}

// armExpiry sets the token clock for a token expiring at exp, zero for
// never. c.mu must be held.
func (c *conn) armExpiry(exp time.Time) {
	t := &c.expiry
	if t.disabled {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.gen++
	t.expires, t.noticed = exp, false
	if exp.IsZero() {
		return
	}
	// A token shorter-lived than the notice is noticed halfway, or a
	// client refreshing at once with another such token would be noticed
	// at once, for ever.
	left := time.Until(exp)
	notice := min(c.srv.limits.ExpiryNotice, left/2)
	gen := t.gen
	t.timer = time.AfterFunc(left-notice, func() { c.tokenTick(gen) })
}

// tokenTick runs when the token clock of generation gen fires: it sends
// sessionExpiring the first time, and closes the connection once the
// token has expired.
func (c *conn) tokenTick(gen uint64) {
	c.mu.Lock()
	t := &c.expiry
	if t.disabled || t.gen != gen {
		c.mu.Unlock()
		return
	}
	left := time.Until(t.expires)
	if left <= 0 {
		c.mu.Unlock()
		c.closeWith(CloseTokenExpired, "token expired", ReasonTokenExpired, true)
		return
	}
	var notice *Notification
	if !t.noticed {
		t.noticed = true
		if n, err := NewNotification(SessionExpiring, ExpiringParams{ExpiresAt: t.expires.UTC()}); err == nil {
			notice = &n
		}
	}
	t.timer.Reset(left)
	c.mu.Unlock()
	if notice != nil {
		c.notify(*notice) // a full queue closes the connection anyway
	}
}
