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
		dialCtx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
		sock, err := c.dial(dialCtx)
		cancel()
		dialed := err == nil
		if dialed {
			if retrying {
				c.log.Info("switchboard: reconnected", "url", sock.url)
			}
			var good bool
			good, err = c.serve(sock)
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
		c.failUnanswered(err, dialed)
		if errors.Is(err, ErrUnauthorized) {
			// Retrying cannot help: the token will not do.
			c.endAll(err)
			continue
		}
		retrying = true
		delay := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("switchboard: disconnected; reconnecting", "error", err, "in", delay.Round(time.Millisecond))
		backoff = min(2*backoff, c.opts.MaxBackoff)
		select {
		case <-time.After(delay):
		case <-c.ctx.Done():
			return
		}
	}
}

// serve keeps the subscriptions subscribed on sock until it fails or the
// client is closed. It reports whether every subscription was made on
// sock (the connection was good, so backoff starts over), and why it
// ended.
func (c *Client) serve(sock *socket) (good bool, err error) {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		if err := c.subscribeAll(sock); err != nil {
			return good, err
		}
		good = true
		select {
		case <-sock.closed():
			return good, sock.err()
		case <-c.wake:
		case <-ping.C:
			if err := sock.ping(c.ctx); err != nil {
				return good, &ConnectionError{URL: sock.url, Err: fmt.Errorf("ping: %w", err)}
			}
		case <-c.ctx.Done():
			return good, c.ctx.Err()
		}
	}
}

// subscribeAll makes every subscription that is due one on sock. It
// returns an error when sock is no good any more.
func (c *Client) subscribeAll(sock *socket) error {
	for _, s := range c.snapshot() {
		err := c.subscribeOn(sock, s)
		var rpcErr *Error
		switch {
		case err == nil:
		case errors.As(err, &rpcErr) && rpcErr.Code != codeUnavailable:
			// The server will not have it: the subscription ends.
			c.endSubscription(s, err)
		default:
			return err
		}
	}
	return nil
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
		c.log.Debug("switchboard: subscribed", "channel", s.channel, "since", since.Offset, "recovered", len(res.Publications))
	}
	return nil
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
			c.log.Info("switchboard: the server ended a subscription; subscribing again", "channel", u.Channel, "reason", u.Reason)
			s.unsubscribed(sock)
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

// failUnanswered ends the subscriptions still waiting for their first
// subscribe, those tried on the socket only when triedOnly: Subscribe
// reports the error rather than retry.
func (c *Client) failUnanswered(err error, triedOnly bool) {
	for _, s := range c.snapshot() {
		if answered, tried := s.progress(); !answered && (tried || !triedOnly) {
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
