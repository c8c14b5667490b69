package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// supervise keeps a socket open from the first subscription until the
// client is closed, and keeps the subscriptions subscribed on it. It is
// the only goroutine that opens that socket or subscribes, and it ends
// when the client is closed.
func (c *Client) supervise() {
	defer close(c.done)
	backoff := c.opts.MinBackoff
	retrying := false
	for c.waitForSubscriptions() {
		sock, err := c.connect()
		dialed := err == nil
		var failed *Subscription
		if dialed {
			if retrying {
				c.opts.Logger.Info("switchboard: reconnected", "url", sock.url)
			}
			var good bool
			good, failed, err = c.serve(sock)
			sock.close()
			for _, s := range c.snapshot() {
				s.detach()
			}
			if good {
				backoff = c.opts.MinBackoff
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		// A Subscribe fails rather than wait when the server cannot be
		// reached, or when its subscribe failed; not when the socket went
		// before it was tried.
		c.failWaiting(err, dialed, failed)
		switch {
		case errors.Is(err, ErrDisconnected):
			// An admin cut the user off: reconnecting would undo it.
			c.endAll(err)
			continue
		case errors.Is(err, ErrUnauthorized) && (c.opts.TokenFunc == nil || !tokenExpired(err)):
			// Retrying cannot help: the token will not do. Only an
			// expired one is replaced, by TokenFunc's next.
			c.endAll(err)
			continue
		}
		retrying = true
		delay := backoff/2 + rand.N(backoff/2+1)
		c.opts.Logger.Warn("switchboard: disconnected; reconnecting", "error", err, "in", delay.Round(time.Millisecond))
		backoff = min(2*backoff, c.opts.MaxBackoff)
		select {
		case <-time.After(delay):
		case <-c.ctx.Done():
			return
		}
	}
}

// connect opens the subscriptions' socket, with a new token when
// TokenFunc gives them.
func (c *Client) connect() (*socket, error) {
	tok, err := c.token(c.ctx, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	return c.dial(ctx, tok)
}

// serve keeps the subscriptions subscribed on sock until it fails or the
// client is closed. It reports whether every subscription was made on
// sock (the connection was good, so backoff starts over), the one whose
// subscribe failed if that is how it ended, and why it ended.
//
// When the server says the token is about to expire, serve refreshes it
// in a goroutine of its own, so that subscribing and pinging go on
// meanwhile; serve ends it, and waits for it, before it returns.
func (c *Client) serve(sock *socket) (good bool, failed *Subscription, err error) {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	refreshCtx, stopRefresh := context.WithCancel(c.ctx)
	var (
		refreshing chan struct{} // closed when the refresh under way ends; nil for none
		again      bool          // sessionExpiring came again during it
	)
	startRefresh := func() {
		done := make(chan struct{})
		refreshing, again = done, false
		go func() {
			defer close(done)
			c.refresh(refreshCtx, sock)
		}()
	}
	defer func() {
		stopRefresh()
		if refreshing != nil {
			<-refreshing
		}
	}()
	for {
		if failed, err := c.subscribeAll(sock); err != nil {
			return good, failed, err
		}
		good = true
		select {
		case <-sock.closed():
			return good, nil, sock.err()
		case <-c.wake:
		case <-sock.expiring:
			switch {
			case c.opts.TokenFunc == nil:
				c.opts.Logger.Info("switchboard: the token expires soon, and there is no way to get another (TokenFunc): the subscriptions will end then")
			case refreshing != nil:
				again = true
			default:
				startRefresh()
			}
		case <-refreshing:
			refreshing = nil
			if again {
				startRefresh()
			}
		case <-ping.C:
			if err := sock.ping(c.ctx); err != nil {
				return good, nil, &ConnectionError{URL: sock.url, Err: fmt.Errorf("ping: %w", err)}
			}
		case <-c.ctx.Done():
			return good, nil, c.ctx.Err()
		}
	}
}

// subscribeAll makes every subscription that is due one on sock. It
// returns an error, and the subscription it came from, when sock is no
// good any more.
func (c *Client) subscribeAll(sock *socket) (failed *Subscription, err error) {
	for _, s := range c.snapshot() {
		err := c.subscribeOn(sock, s)
		var rpcErr *Error
		switch {
		case err == nil:
		case errors.As(err, &rpcErr) && rpcErr.Code != codeUnavailable:
			// The server will not have it: the subscription ends.
			c.endSubscription(s, err)
		default:
			return s, err
		}
	}
	return nil, nil
}

// subscribeOn subscribes s on sock if it is due.
func (c *Client) subscribeOn(sock *socket, s *Subscription) error {
	due, since, resubscribe := s.starting(sock)
	if !due {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	params := channelParams{s.channel}
	if resubscribe {
		if err := sock.call(ctx, "channelUnsubscribe", params, nil); err != nil && !isCode(err, codeNotFound) {
			s.detach()
			return err
		}
	}
	var res subscribed
	err := sock.call(ctx, "channelSubscribe", struct {
		Channel string    `json:"channel"`
		Since   *Position `json:"since,omitempty"`
	}{s.channel, since}, &res)
	if err != nil {
		s.detach()
		return err
	}
	if !s.subscribed(since, res) {
		// Closed meanwhile.
		sock.call(ctx, "channelUnsubscribe", params, nil)
		return nil
	}
	if since != nil {
		c.opts.Logger.Debug("switchboard: subscribed", "channel", s.channel, "since", since.Offset, "recovered", len(res.Publications))
	}
	return nil
}

// refresh hands sock's server a new token from TokenFunc
// (sessionRefresh), so that the connection outlives the token it has. A
// failure is only logged: the connection then closes when its token
// expires, and the supervisor reconnects with a new token.
func (c *Client) refresh(ctx context.Context, sock *socket) {
	tok, err := c.token(ctx, true)
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
		var res struct {
			ConnectionID string     `json:"connectionId"`
			ExpiresAt    *time.Time `json:"expiresAt"`
		}
		err = sock.call(callCtx, "sessionRefresh", struct {
			Token string `json:"token"`
		}{tok}, &res)
		if err != nil {
			err = fmt.Errorf("sessionRefresh: %w", err)
		} else {
			c.opts.Logger.Debug("switchboard: token refreshed", "connection", res.ConnectionID, "expiresAt", res.ExpiresAt)
			return
		}
	}
	if ctx.Err() != nil {
		return // the socket is going anyway
	}
	c.opts.Logger.Warn("switchboard: refreshing the token failed; the connection will close when its token expires, and reconnect", "error", err)
}

// notified takes a notification that arrived on sock.
func (c *Client) notified(sock *socket, method string, params json.RawMessage) {
	switch method {
	case "channelPublication":
		var p Publication
		if json.Unmarshal(params, &p) != nil {
			return
		}
		if s := c.subscription(p.Channel); s != nil {
			s.offer(sock, p)
		}
	case "channelUnsubscribed":
		var u unsubscribed
		if json.Unmarshal(params, &u) != nil {
			return
		}
		if s := c.subscription(u.Channel); s != nil {
			// Subscribing again finds out whether it was for good: a
			// removed channel starts over; a permission the refreshed
			// token lacks ends the subscription with the server's -32003.
			c.opts.Logger.Info("switchboard: the server ended a subscription; subscribing again to see whether it may go on", "channel", u.Channel, "reason", u.Reason)
			s.unsubscribed(sock)
		}
	case "sessionExpiring":
		select {
		case sock.expiring <- struct{}{}:
		default: // serve has yet to see to the last one
		}
	}
}

func (c *Client) subscription(channel string) *Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[channel]
}

// kick tells the supervisor there may be work.
func (c *Client) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// waitForSubscriptions waits until there is a subscription to keep; it
// reports false when the client is closed.
func (c *Client) waitForSubscriptions() bool {
	for {
		c.mu.Lock()
		n := len(c.subs)
		c.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-c.wake:
		case <-c.ctx.Done():
			return false
		}
	}
}

// endSubscription ends s with err and forgets it.
func (c *Client) endSubscription(s *Subscription, err error) (sock *socket, live bool) {
	c.mu.Lock()
	if c.subs[s.channel] == s {
		delete(c.subs, s.channel)
	}
	c.mu.Unlock()
	return s.end(err)
}

// failWaiting ends with err the subscriptions whose Subscribe still
// waits, so that it reports err rather than retry: all of them when the
// server could not be reached, or else failed, if its first subscribe was
// the one that failed. Those a socket went before trying wait on: no
// other can have been tried, as serve returns on the first failure.
func (c *Client) failWaiting(err error, dialed bool, failed *Subscription) {
	for _, s := range c.snapshot() {
		if (!dialed || s == failed) && s.waiting() {
			c.endSubscription(s, err)
		}
	}
}

func (c *Client) endAll(err error) {
	for _, s := range c.snapshot() {
		c.endSubscription(s, err)
	}
}

func (c *Client) snapshot() []*Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	return subs
}
