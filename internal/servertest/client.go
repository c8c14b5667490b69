package servertest

// The raw WebSocket JSON-RPC client of the tests, in two forms: functions
// on a bare *websocket.Conn (DialRaw, WSCall, ReadClose) for tests that
// write frames and read close codes by hand, and Client, which reads every
// frame as it comes, for tests of calls and notifications.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// DialRaw dials GET /rpc at url (ws://…, with any query) with header and
// returns what websocket.Dial returns. The connection, if any, is closed
// when the test ends.
func DialRaw(t *testing.T, url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), IOTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if ws != nil {
		ws.SetReadLimit(-1)
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

// Dial opens a WebSocket with header, failing the test if it cannot.
func (s *Server) Dial(header http.Header) *websocket.Conn {
	s.T.Helper()
	ws, resp, err := DialRaw(s.T, s.WSURL(), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		s.T.Fatalf("dial %s: %v (HTTP status %d)", s.WSURL(), err, status)
	}
	return ws
}

// Reply is a JSON-RPC response as it arrives on the wire.
type Reply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *RPCError       `json:"error"`
}

// RPCError is a JSON-RPC error object as it arrives.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

var nextID atomic.Int64

// NextID is a fresh request id, for requests written by hand.
func NextID() int64 { return nextID.Add(1) }

// Request encodes a JSON-RPC request with a fresh numeric id.
func Request(method string, params any) (body []byte, id int64) {
	id = NextID()
	m := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		m["params"] = params
	}
	body, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return body, id
}

// WSCall sends one request on ws and returns its reply, checking that the
// reply is a JSON-RPC 2.0 response to that request.
func WSCall(t *testing.T, ws *websocket.Conn, method string, params any) Reply {
	t.Helper()
	body, id := Request(method, params)
	ctx, cancel := context.WithTimeout(context.Background(), IOTimeout)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, body); err != nil {
		t.Fatalf("%s: write: %v", method, err)
	}
	typ, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("%s: read: %v", method, err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("%s: reply is a %v frame, want text", method, typ)
	}
	return DecodeReply(t, method, b, id)
}

func DecodeReply(t *testing.T, method string, b []byte, id int64) Reply {
	t.Helper()
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: reply %s: %v", method, b, err)
	}
	if r.JSONRPC != "2.0" {
		t.Fatalf("%s: reply %s: jsonrpc is %q, want 2.0", method, b, r.JSONRPC)
	}
	if string(r.ID) != fmt.Sprint(id) {
		t.Fatalf("%s: reply %s answers id %s, want %d", method, b, r.ID, id)
	}
	if (r.Error == nil) == (r.Result == nil) {
		t.Fatalf("%s: reply %s must have exactly one of result and error", method, b)
	}
	return r
}

// Decode decodes r's result into v, failing the test when r is an error.
func (r Reply) Decode(t *testing.T, v any) {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("call failed: %d %s", r.Error.Code, r.Error.Message)
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		t.Fatalf("result %s: %v", r.Result, err)
	}
}

// ReadClose reads from ws until it ends and returns the close status the
// server sent (-1 when the connection ended without a close frame).
func ReadClose(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the server did not close the connection within %v", WaitTimeout)
		}
		return websocket.CloseStatus(err)
	}
}

// Client is a WebSocket client for hub tests: it reads every frame as
// it comes, routing replies to their calls and keeping notifications, in
// the order they arrived, for Next.
type Client struct {
	T  *testing.T
	ws *websocket.Conn

	mu      sync.Mutex
	waiting map[string]chan Reply
	order   []string // every frame's kind, "reply:ID" or the notification's method, as read
	notes   chan Notification
	ended   chan struct{}
	err     error // why reading ended
}

// Notification is a server notification as it arrives.
type Notification struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// notesBuffer is how many notifications a Client keeps unread before
// it stops reading (and so, in time, gets closed as a slow consumer).
const notesBuffer = 100000

// HubClient dials the server with tok.
func (s *Server) HubClient(tok string) *Client {
	s.T.Helper()
	return s.newHubClient(Bearer(tok))
}

// AnonHubClient is a Client that connects without a token, for servers
// that let anonymous callers in.
func (s *Server) AnonHubClient() *Client {
	s.T.Helper()
	return s.newHubClient(nil)
}

// newHubClient dials the server with header and starts reading.
func (s *Server) newHubClient(header http.Header) *Client {
	s.T.Helper()
	ws := s.Dial(header)
	ws.SetReadLimit(64 << 20)
	c := &Client{
		T: s.T, ws: ws,
		waiting: map[string]chan Reply{},
		notes:   make(chan Notification, notesBuffer),
		ended:   make(chan struct{}),
	}
	go c.readLoop()
	s.T.Cleanup(func() {
		ws.Close(websocket.StatusNormalClosure, "")
		<-c.ended
	})
	return c
}

func (c *Client) readLoop() {
	defer close(c.ended)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		if !utf8.Valid(b) {
			// Browsers and Node's ws drop a connection for this.
			c.T.Errorf("a text frame is not valid UTF-8: %q", b)
		}
		var probe struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			c.T.Errorf("frame %s: %v", b, err)
			continue
		}
		if probe.Method != "" {
			var n Notification
			json.Unmarshal(b, &n)
			c.mu.Lock()
			c.order = append(c.order, n.Method)
			c.mu.Unlock()
			c.notes <- n
			continue
		}
		var r Reply
		if err := json.Unmarshal(b, &r); err != nil {
			c.T.Errorf("reply %s: %v", b, err)
			continue
		}
		c.mu.Lock()
		c.order = append(c.order, "reply:"+string(r.ID))
		ch := c.waiting[string(r.ID)]
		delete(c.waiting, string(r.ID))
		c.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// Call makes a call and waits for its reply.
func (c *Client) Call(method string, params any) Reply {
	c.T.Helper()
	r, err := c.Send(method, params)
	if err != nil {
		c.T.Fatal(err)
	}
	return r
}

// Send makes a call and waits for its reply, whatever it says.
func (c *Client) Send(method string, params any) (Reply, error) {
	body, id := Request(method, params)
	return c.SendFrame(fmt.Sprint(id), method, body)
}

// SendFrame writes body, a request whose id is the raw JSON id, as it
// is, and waits for the reply to it.
func (c *Client) SendFrame(id, method string, body []byte) (Reply, error) {
	ch := make(chan Reply, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), IOTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, body); err != nil {
		return Reply{}, fmt.Errorf("%s: write: %w", method, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-c.ended:
		c.mu.Lock()
		defer c.mu.Unlock()
		return Reply{}, fmt.Errorf("%s: connection ended before the reply: %v", method, c.err)
	case <-ctx.Done():
		return Reply{}, fmt.Errorf("%s: no reply within %v", method, IOTimeout)
	}
}

// OK makes a call that must succeed and decodes its result into v.
func (c *Client) OK(method string, params, v any) {
	c.T.Helper()
	c.Call(method, params).Decode(c.T, v)
}

// Fails makes a call that must fail with code and returns the message.
func (c *Client) Fails(method string, params any, code int) string {
	c.T.Helper()
	r := c.Call(method, params)
	if r.Error == nil {
		c.T.Fatalf("%s %v: got result %s, want error %d", method, params, r.Result, code)
	}
	if r.Error.Code != code {
		c.T.Fatalf("%s %v: got error %d %q, want %d", method, params, r.Error.Code, r.Error.Message, code)
	}
	return r.Error.Message
}

func (c *Client) Publish(channel string, data any) PublishResult {
	c.T.Helper()
	var res PublishResult
	c.OK("channelPublish", map[string]any{"channel": channel, "data": data}, &res)
	return res
}

func (c *Client) Subscribe(params map[string]any) SubscribeResult {
	c.T.Helper()
	var res SubscribeResult
	c.OK("channelSubscribe", params, &res)
	return res
}

// Next returns the next notification, failing the test when none comes.
func (c *Client) Next() Notification {
	c.T.Helper()
	select {
	case n := <-c.notes:
		return n
	case <-time.After(WaitTimeout):
		c.T.Fatalf("no notification within %v", WaitTimeout)
	}
	return Notification{}
}

// NextPublication returns the next notification, which must be a
// channelPublication.
func (c *Client) NextPublication() PublicationNote {
	c.T.Helper()
	n := c.Next()
	if n.Method != "channelPublication" {
		c.T.Fatalf("got %s %s, want channelPublication", n.Method, n.Params)
	}
	var p PublicationNote
	if err := json.Unmarshal(n.Params, &p); err != nil {
		c.T.Fatalf("channelPublication %s: %v", n.Params, err)
	}
	return p
}

// Quiet checks that no notification arrives within d.
func (c *Client) Quiet(d time.Duration) {
	c.T.Helper()
	select {
	case n := <-c.notes:
		c.T.Fatalf("unexpected notification %s %s", n.Method, n.Params)
	case <-time.After(d):
	}
}

// Frames returns what the client has read so far, in order: "reply:ID"
// for replies, the method for notifications.
func (c *Client) Frames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.order...)
}

// Helpers added for the hub rule, recovery and presence tests.

// Disconnect closes the client's connection normally and waits until it
// has ended.
func (c *Client) Disconnect() {
	c.T.Helper()
	c.ws.Close(websocket.StatusNormalClosure, "")
	select {
	case <-c.ended:
	case <-time.After(WaitTimeout):
		c.T.Fatalf("the connection did not end within %v", WaitTimeout)
	}
}

// Closed waits for the server to close the connection and returns the
// close frame's code and reason.
func (c *Client) Closed() (websocket.StatusCode, string) {
	c.T.Helper()
	select {
	case <-c.ended:
	case <-time.After(WaitTimeout):
		c.T.Fatalf("the server did not close the connection within %v", WaitTimeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code, ce.Reason
	}
	return -1, ""
}

// TryCall is call for goroutines other than the test's: it reports
// failures instead of failing the test.
func (c *Client) TryCall(method string, params any) (Reply, error) {
	r, err := c.Send(method, params)
	if err == nil && r.Error != nil {
		err = fmt.Errorf("%s: error %d %s", method, r.Error.Code, r.Error.Message)
	}
	return r, err
}

// TryPublish publishes from a goroutine other than the test's.
func (c *Client) TryPublish(channel string, data any) (PublishResult, error) {
	r, err := c.TryCall("channelPublish", map[string]any{"channel": channel, "data": data})
	if err != nil {
		return PublishResult{}, err
	}
	var res PublishResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		return PublishResult{}, fmt.Errorf("channelPublish result %s: %w", r.Result, err)
	}
	return res, nil
}

// Whoami returns the client's sessionWhoami.
func (c *Client) Whoami() WhoamiResult {
	c.T.Helper()
	var w WhoamiResult
	c.OK("sessionWhoami", nil, &w)
	return w
}

// NextNote returns the next notification, which must be of method, with
// its params decoded into v.
func (c *Client) NextNote(method string, v any) {
	c.T.Helper()
	n := c.Next()
	if n.Method != method {
		c.T.Fatalf("got %s %s, want %s", n.Method, n.Params, method)
	}
	if err := json.Unmarshal(n.Params, v); err != nil {
		c.T.Fatalf("%s %s: %v", method, n.Params, err)
	}
}

// PublishSeen publishes each of data to channel and returns once c has
// received them all through a subscription of its own, which it then
// ends: by then the hub has fanned them out, and not merely stored them.
// c must not be subscribed to channel already; other notifications that
// arrive meanwhile are dropped.
func (c *Client) PublishSeen(channel string, data ...any) []PublishResult {
	c.T.Helper()
	c.Subscribe(map[string]any{"channel": channel})
	res := make([]PublishResult, len(data))
	for i, d := range data {
		res[i] = c.Publish(channel, d)
	}
	for _, r := range res {
		for {
			n := c.NextPublication()
			if n.Channel == channel && n.Offset >= r.Offset {
				break
			}
		}
	}
	var u map[string]any
	c.OK("channelUnsubscribe", map[string]any{"channel": channel}, &u)
	return res
}

// Publisher publishes 0, 1, 2, … to a channel from its own
// connection, without pause, until stopped.
type Publisher struct {
	stopped chan struct{}
	done    chan struct{}
	Last    atomic.Uint64
	err     error
}

// StartPublisher starts publishing to channel from c; the publisher is
// stopped when the test ends, if not before.
func StartPublisher(t *testing.T, c *Client, channel string) *Publisher {
	bp := &Publisher{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(bp.done)
		for i := 0; ; i++ {
			select {
			case <-bp.stopped:
				return
			default:
			}
			p, err := c.TryPublish(channel, i)
			if err != nil {
				bp.err = err
				return
			}
			bp.Last.Store(p.Offset)
		}
	}()
	t.Cleanup(bp.Stop)
	return bp
}

// WaitFor waits until the publisher has been given offset n.
func (bp *Publisher) WaitFor(t *testing.T, n uint64) {
	t.Helper()
	Eventually(t, fmt.Sprintf("the publisher to reach offset %d", n), func() bool { return bp.Last.Load() >= n })
}

// Stop stops the publisher.
func (bp *Publisher) Stop() {
	select {
	case <-bp.stopped:
	default:
		close(bp.stopped)
	}
	<-bp.done
}

// Finish stops the publisher, which must not have failed, and returns the
// last offset it was given.
func (bp *Publisher) Finish(t *testing.T) uint64 {
	t.Helper()
	bp.Stop()
	if bp.err != nil {
		t.Fatalf("publisher: %v", bp.err)
	}
	return bp.Last.Load()
}
