package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Options configure a Client. Zero fields take DefaultOptions' values,
// so the zero Options work against a server that lets anonymous callers
// in.
type Options struct {
	// Token is the access token, sent as "Authorization: Bearer Token".
	// It cannot be combined with TokenFunc.
	Token string
	// TokenFunc, when set, gives the access token instead of Token: for
	// tokens that expire while the client runs. The client asks it for a
	// new token for each connection of the subscriptions' WebSocket, and
	// when the server says that the connection's token is about to expire
	// (sessionExpiring): it then hands the server the new token
	// (sessionRefresh), keeping the connection and its subscriptions.
	// Calls send the token it gave last, and ask it for a new one, once,
	// when the server refuses that one. Each of its calls is bounded by
	// Timeout through its ctx, which it must heed: the client waits for it
	// to return. It may be called from several goroutines at once. An
	// error, or an empty token, fails what needed the token.
	//
	// A refresh that fails is logged, and the connection closes when its
	// token expires (4001); the client then reconnects with a token from
	// TokenFunc, and its subscriptions recover what was published
	// meanwhile. Without TokenFunc, an expired token ends the
	// subscriptions instead.
	TokenFunc func(ctx context.Context) (string, error)
	// HTTPClient makes the HTTP calls and the WebSocket handshakes. When
	// nil, it is a client of its own trusting RootCAs if they are set, or
	// else DefaultOptions' (http.DefaultClient).
	HTTPClient *http.Client
	// RootCAs, when set, are the certificate authorities trusted for
	// https:// and wss:// instead of the system's: a server with a
	// certificate from a private CA, or a self-signed one. It cannot be
	// combined with HTTPClient, whose transport has its own TLS settings.
	RootCAs *x509.CertPool
	// Logger hears about reconnections, about subscriptions the server
	// ended, and (at debug level) about subscribing again from a
	// position; DefaultOptions' discards.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts, which doubles from one to the other, with jitter. A
	// MaxBackoff below MinBackoff is taken as MinBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Buffer is how many publications a Subscription holds for its reader.
	// A reader that falls further behind stops the subscription taking
	// live publications; once the reader has caught up, it recovers the
	// rest from the channel's history. Only what the history no longer
	// holds by then is lost.
	Buffer int
	// Timeout bounds each call, each attempt to connect or to subscribe,
	// and each call of TokenFunc, besides the contexts given.
	Timeout time.Duration
}

// DefaultOptions are the values New takes for fields of Options left
// zero (or negative). Token, TokenFunc and RootCAs have none; the server's URL has
// its own default, DefaultURL.
var DefaultOptions = Options{
	HTTPClient: http.DefaultClient,
	Logger:     slog.New(slog.DiscardHandler),
	MinBackoff: 250 * time.Millisecond,
	MaxBackoff: 10 * time.Second,
	Buffer:     1024,
	Timeout:    30 * time.Second,
}

// withDefaults fills o's zero fields from DefaultOptions. An HTTPClient
// for RootCAs is made here, as it cannot be shared: it has its own
// transport, which Close closes the idle connections of.
func (o Options) withDefaults() Options {
	d := DefaultOptions
	d.Token, d.TokenFunc, d.RootCAs = o.Token, o.TokenFunc, o.RootCAs
	switch {
	case o.HTTPClient != nil:
		d.HTTPClient = o.HTTPClient
	case o.RootCAs != nil:
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs}
		d.HTTPClient = &http.Client{Transport: t}
	}
	if o.Logger != nil {
		d.Logger = o.Logger
	}
	if o.MinBackoff > 0 {
		d.MinBackoff = o.MinBackoff
	}
	if o.MaxBackoff != 0 {
		d.MaxBackoff = o.MaxBackoff
	}
	d.MaxBackoff = max(d.MaxBackoff, d.MinBackoff)
	if o.Buffer > 0 {
		d.Buffer = o.Buffer
	}
	if o.Timeout > 0 {
		d.Timeout = o.Timeout
	}
	return d
}

// pingInterval is how often the client pings the server to find a dead
// connection: a server that vanished without closing the TCP connection
// is otherwise noticed only when the OS gives up on it.
const (
	closeTimeout = time.Second // for the closing handshake
	pingInterval = 20 * time.Second
	pingTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	// readLimit is the largest message accepted from the server: a history
	// page or a recovery holds up to 4 MiB of data, plus its framing.
	readLimit = 32 << 20
)

// Client is a client of one Switchboard server: calls over HTTP, and
// subscriptions over one WebSocket. Its methods may be called from
// several goroutines.
type Client struct {
	ep   endpoint
	opts Options

	mu      sync.Mutex
	subs    map[string]*Subscription
	started bool // the supervisor goroutine runs
	closed  bool
	wake    chan struct{} // cap 1: the supervisor has work
	stop    context.CancelFunc
	ctx     context.Context // the supervisor's
	done    chan struct{}   // closed when the supervisor has ended

	tokMu sync.Mutex
	tok   string // the token TokenFunc gave last
}

// New returns a client of the server at rawURL: ws://, wss://, http:// or
// https://, or host:port for http://, or "" for DefaultURL. /rpc is added
// to a path that does not end in it (a proxy's prefix, say). New does not
// connect: the first call or Subscribe does. It fails on a URL it cannot
// use, and on Options giving both RootCAs and HTTPClient, or both Token
// and TokenFunc.
func New(rawURL string, opts Options) (*Client, error) {
	ep, err := parseEndpoint(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.RootCAs != nil && opts.HTTPClient != nil {
		return nil, errors.New("client options: give RootCAs or HTTPClient, not both")
	}
	if opts.Token != "" && opts.TokenFunc != nil {
		return nil, errors.New("client options: give Token or TokenFunc, not both")
	}
	opts = opts.withDefaults()
	ctx, stop := context.WithCancel(context.Background())
	return &Client{
		ep: ep, opts: opts,
		subs: map[string]*Subscription{},
		wake: make(chan struct{}, 1),
		ctx:  ctx, stop: stop,
		done: make(chan struct{}),
	}, nil
}

// Close ends every subscription, with ErrClosed, and closes their
// WebSocket; later calls return ErrClosed. Closing again does nothing;
// the error is always nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	subs := c.subs
	c.subs = map[string]*Subscription{}
	c.mu.Unlock()

	c.stop()
	if started {
		<-c.done
	}
	for _, s := range subs {
		s.end(ErrClosed)
	}
	if c.opts.RootCAs != nil {
		c.opts.HTTPClient.CloseIdleConnections() // the transport is the client's own
	}
	return nil
}

// Call calls method with params (nil for none; an object or array
// otherwise) and decodes its result into result, unless result is nil.
// It goes over HTTP; a method that answers there that it needs a
// WebSocket (-32010) is called again over a socket of its own. A JSON-RPC
// error comes back as an *Error; a failure to reach the server, or a
// refused token, as a *ConnectionError; ErrClosed after Close; TokenFunc's
// error, wrapped, when it fails. When ctx ends the call,
// errors.Is(err, ctx.Err()) holds.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var tok string
	err := c.withToken(ctx, func(t string) error {
		tok = t
		return c.callHTTP(ctx, t, method, params, result)
	})
	if isCode(err, codeSocketRequired) {
		return c.callSocket(ctx, tok, method, params, result)
	}
	return err
}

// withToken calls post with the token to send; with TokenFunc, once more
// with a new token when the server refused that one.
func (c *Client) withToken(ctx context.Context, post func(tok string) error) error {
	tok, err := c.token(ctx, false)
	if err != nil {
		return err
	}
	err = post(tok)
	if c.opts.TokenFunc != nil && errors.Is(err, ErrUnauthorized) {
		// The token may have expired since TokenFunc gave it. The server
		// refused it before making the call (HTTP 401), so making the
		// call again with a new one is safe.
		if tok, err = c.token(ctx, true); err != nil {
			return err
		}
		err = post(tok)
	}
	return err
}

// token returns the token to send: Token; or, with TokenFunc, the one it
// gave last, or a new one when fresh or when it has given none yet.
func (c *Client) token(ctx context.Context, fresh bool) (string, error) {
	if c.opts.TokenFunc == nil {
		return c.opts.Token, nil
	}
	if !fresh {
		c.tokMu.Lock()
		tok := c.tok
		c.tokMu.Unlock()
		if tok != "" {
			return tok, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	tok, err := c.opts.TokenFunc(ctx)
	if err == nil && tok == "" {
		err = errors.New("it returned an empty token")
	}
	if err != nil {
		return "", fmt.Errorf("getting a token: %w", err)
	}
	c.tokMu.Lock()
	c.tok = tok
	c.tokMu.Unlock()
	return tok, nil
}

// Publish publishes data to channel, returning once the server has it on
// disk. A non-empty idempotencyKey makes retrying safe: a publication
// repeating a key the channel has seen recently publishes nothing.
func (c *Client) Publish(ctx context.Context, channel string, data json.RawMessage, idempotencyKey string) (Published, error) {
	params := struct {
		Channel        string          `json:"channel"`
		Data           json.RawMessage `json:"data"`
		IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	}{channel, data, idempotencyKey}
	var res Published
	err := c.Call(ctx, "channelPublish", params, &res)
	return res, err
}

// History reads a page of channel's history.
func (c *Client) History(ctx context.Context, channel string, q HistoryQuery) (History, error) {
	params := struct {
		Channel string `json:"channel"`
		HistoryQuery
	}{channel, q}
	var res History
	err := c.Call(ctx, "channelHistory", params, &res)
	return res, err
}

// Latest returns channel's latest position: its last offset and epoch.
func (c *Client) Latest(ctx context.Context, channel string) (Position, error) {
	h, err := c.History(ctx, channel, HistoryQuery{Limit: 1, NewestFirst: true})
	return Position{Offset: h.Offset, Epoch: h.Epoch}, err
}

// Presence lists channel's subscribers.
func (c *Client) Presence(ctx context.Context, channel string) (Presence, error) {
	var res Presence
	err := c.Call(ctx, "channelPresence", struct {
		Channel string `json:"channel"`
	}{channel}, &res)
	return res, err
}

// Methods lists the server's methods, from its OpenRPC document.
func (c *Client) Methods(ctx context.Context) ([]Method, error) {
	var doc struct {
		Methods []Method `json:"methods"`
	}
	err := c.Call(ctx, "rpc.discover", nil, &doc)
	return doc.Methods, err
}

// expectContinueOver is the body size past which a call asks the server
// before sending the body (Expect: 100-continue), as curl does past 1 MiB:
// a server that refuses it (413, over its message size) answers at once,
// and the refusal is read instead of lost to a connection reset by a
// server that closed with the body still arriving. It needs a transport
// with an ExpectContinueTimeout, as http.DefaultTransport has (1 s);
// without one the body goes at once.
const expectContinueOver = 1 << 20

// callHTTP makes one call as an HTTP POST.
func (c *Client) callHTTP(ctx context.Context, tok, method string, params, result any) error {
	body, err := encodeRequest(nil, 1, method, params)
	if err != nil {
		return err
	}
	b, err := c.post(ctx, tok, body, method)
	if err != nil {
		return err
	}
	var reply reply
	if err := json.Unmarshal(b, &reply); err != nil {
		return &ConnectionError{URL: c.ep.http, Err: fmt.Errorf("the reply is not JSON-RPC: %w", err)}
	}
	return reply.decode(method, result)
}

// encodeRequest appends to dst a request of method with params (nil for
// none) and id.
func encodeRequest(dst []byte, id int, method string, params any) ([]byte, error) {
	b, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
	}{"2.0", id, method, params})
	if err != nil {
		return nil, fmt.Errorf("%s: encoding params: %w", method, err)
	}
	return append(dst, b...), nil
}

// reply is one JSON-RPC response as the client reads it.
type reply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// decode returns r's error, or decodes its result into result unless
// result is nil.
func (r *reply) decode(method string, result any) error {
	if r.Error != nil {
		return r.Error
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("%s: decoding the result: %w", method, err)
	}
	return nil
}

// post sends body to the server's /rpc with tok and returns the reply
// body; what names the call or calls, in errors.
func (c *Client) post(ctx context.Context, tok string, body []byte, what string) ([]byte, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ep.http, bytes.NewReader(body))
	if err != nil {
		return nil, &ConnectionError{URL: c.ep.http, Err: err}
	}
	hreq.Header.Set("Content-Type", "application/json")
	if len(body) > expectContinueOver {
		hreq.Header.Set("Expect", "100-continue")
	}
	authorize(hreq.Header, tok)
	resp, err := c.opts.HTTPClient.Do(hreq)
	if err != nil {
		var uerr *url.Error // says the URL again
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, &ConnectionError{URL: c.ep.http, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, readLimit))
	if err != nil {
		return nil, &ConnectionError{URL: c.ep.http, Err: fmt.Errorf("reading the reply: %w", err)}
	}
	if err := httpStatusError(resp, b); err != nil {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode >= 500 {
			return nil, &ConnectionError{URL: c.ep.http, Err: err}
		}
		// The server refused the request itself (too big, say).
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// httpStatusError turns a refused request into an error, using the
// server's {"error":{"message"}} body when there is one.
func httpStatusError(resp *http.Response, body []byte) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := resp.Status
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", ErrUnauthorized, msg)
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("HTTP %d: %s: %w", resp.StatusCode, msg, ErrTooLarge)
	}
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
}

func authorize(h http.Header, tok string) {
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
}

// callSocket makes a call over a socket of its own, not the
// subscriptions': a channelSubscribe or channelUnsubscribe made through
// Call must not touch the subscriptions the client keeps.
func (c *Client) callSocket(ctx context.Context, tok, method string, params, result any) error {
	s, err := c.dial(ctx, tok)
	if err != nil {
		return err
	}
	defer s.close()
	return s.call(ctx, method, params, result)
}
