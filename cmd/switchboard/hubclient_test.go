package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// hubClient is a WebSocket client for hub tests: it reads every frame as
// it comes, routing replies to their calls and keeping notifications, in
// the order they arrived, for next.
type hubClient struct {
	t  *testing.T
	ws *websocket.Conn

	mu      sync.Mutex
	waiting map[string]chan rpcReply
	order   []string // every frame's kind, "reply:ID" or the notification's method, as read
	notes   chan notification
	ended   chan struct{}
	err     error // why reading ended
}

// notification is a server notification as it arrives.
type notification struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// publicationNote is channelPublication's params.
type publicationNote struct {
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Data      json.RawMessage `json:"data"`
	Publisher string          `json:"publisher"`
	Time      time.Time       `json:"time"`
}

// subscribeResult is channelSubscribe's result.
type subscribeResult struct {
	Channel      string            `json:"channel"`
	Offset       uint64            `json:"offset"`
	Epoch        string            `json:"epoch"`
	Recovered    bool              `json:"recovered"`
	Publications []publicationNote `json:"publications"`
}

// publishResult is channelPublish's result.
type publishResult struct {
	Channel   string `json:"channel"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Duplicate bool   `json:"duplicate"`
}

// historyResult is channelHistory's result.
type historyResult struct {
	Channel      string            `json:"channel"`
	Publications []publicationNote `json:"publications"`
	Offset       uint64            `json:"offset"`
	Epoch        string            `json:"epoch"`
}

// notesBuffer is how many notifications a hubClient keeps unread before
// it stops reading (and so, in time, gets closed as a slow consumer).
const notesBuffer = 100000

// newHubClient dials ta with a token for user and perms... as given by tok.
func (ta *testApp) hubClient(tok string) *hubClient {
	ta.t.Helper()
	return ta.newHubClient(bearer(tok))
}

// anonHubClient is a hubClient that connects without a token, for servers
// that let anonymous callers in.
func (ta *testApp) anonHubClient() *hubClient {
	ta.t.Helper()
	return ta.newHubClient(nil)
}

func (ta *testApp) newHubClient(header http.Header) *hubClient {
	ta.t.Helper()
	ws := ta.dial(header)
	ws.SetReadLimit(64 << 20)
	c := &hubClient{
		t: ta.t, ws: ws,
		waiting: map[string]chan rpcReply{},
		notes:   make(chan notification, notesBuffer),
		ended:   make(chan struct{}),
	}
	go c.readLoop()
	ta.t.Cleanup(func() {
		ws.Close(websocket.StatusNormalClosure, "")
		<-c.ended
	})
	return c
}

func (c *hubClient) readLoop() {
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
			c.t.Errorf("a text frame is not valid UTF-8: %q", b)
		}
		var probe struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			c.t.Errorf("frame %s: %v", b, err)
			continue
		}
		if probe.Method != "" {
			var n notification
			json.Unmarshal(b, &n)
			c.mu.Lock()
			c.order = append(c.order, n.Method)
			c.mu.Unlock()
			c.notes <- n
			continue
		}
		var r rpcReply
		if err := json.Unmarshal(b, &r); err != nil {
			c.t.Errorf("reply %s: %v", b, err)
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

// call makes a call and waits for its reply.
func (c *hubClient) call(method string, params any) rpcReply {
	c.t.Helper()
	r, err := c.send(method, params)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// send makes a call and waits for its reply, whatever it says.
func (c *hubClient) send(method string, params any) (rpcReply, error) {
	body, id := request(method, params)
	return c.sendFrame(fmt.Sprint(id), method, body)
}

// sendFrame writes body, a request whose id is the raw JSON id, as it
// is, and waits for the reply to it.
func (c *hubClient) sendFrame(id, method string, body []byte) (rpcReply, error) {
	ch := make(chan rpcReply, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, body); err != nil {
		return rpcReply{}, fmt.Errorf("%s: write: %w", method, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-c.ended:
		c.mu.Lock()
		defer c.mu.Unlock()
		return rpcReply{}, fmt.Errorf("%s: connection ended before the reply: %v", method, c.err)
	case <-ctx.Done():
		return rpcReply{}, fmt.Errorf("%s: no reply within %v", method, ioTimeout)
	}
}

// ok makes a call that must succeed and decodes its result into v.
func (c *hubClient) ok(method string, params, v any) {
	c.t.Helper()
	c.call(method, params).decode(c.t, v)
}

// fails makes a call that must fail with code and returns the message.
func (c *hubClient) fails(method string, params any, code int) string {
	c.t.Helper()
	r := c.call(method, params)
	if r.Error == nil {
		c.t.Fatalf("%s %v: got result %s, want error %d", method, params, r.Result, code)
	}
	if r.Error.Code != code {
		c.t.Fatalf("%s %v: got error %d %q, want %d", method, params, r.Error.Code, r.Error.Message, code)
	}
	return r.Error.Message
}

func (c *hubClient) publish(channel string, data any) publishResult {
	c.t.Helper()
	var res publishResult
	c.ok("channelPublish", map[string]any{"channel": channel, "data": data}, &res)
	return res
}

func (c *hubClient) subscribe(params map[string]any) subscribeResult {
	c.t.Helper()
	var res subscribeResult
	c.ok("channelSubscribe", params, &res)
	return res
}

// next returns the next notification, failing the test when none comes.
func (c *hubClient) next() notification {
	c.t.Helper()
	select {
	case n := <-c.notes:
		return n
	case <-time.After(waitTimeout):
		c.t.Fatalf("no notification within %v", waitTimeout)
	}
	return notification{}
}

// nextPublication returns the next notification, which must be a
// channelPublication.
func (c *hubClient) nextPublication() publicationNote {
	c.t.Helper()
	n := c.next()
	if n.Method != "channelPublication" {
		c.t.Fatalf("got %s %s, want channelPublication", n.Method, n.Params)
	}
	var p publicationNote
	if err := json.Unmarshal(n.Params, &p); err != nil {
		c.t.Fatalf("channelPublication %s: %v", n.Params, err)
	}
	return p
}

// quiet checks that no notification arrives within d.
func (c *hubClient) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case n := <-c.notes:
		c.t.Fatalf("unexpected notification %s %s", n.Method, n.Params)
	case <-time.After(d):
	}
}

// frames returns what the client has read so far, in order: "reply:ID"
// for replies, the method for notifications.
func (c *hubClient) frames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.order...)
}

// Helpers added for the hub rule, recovery and presence tests.

// disconnect closes the client's connection normally and waits until it
// has ended.
func (c *hubClient) disconnect() {
	c.t.Helper()
	c.ws.Close(websocket.StatusNormalClosure, "")
	select {
	case <-c.ended:
	case <-time.After(waitTimeout):
		c.t.Fatalf("the connection did not end within %v", waitTimeout)
	}
}

// tryCall is call for goroutines other than the test's: it reports
// failures instead of failing the test.
func (c *hubClient) tryCall(method string, params any) (rpcReply, error) {
	r, err := c.send(method, params)
	if err == nil && r.Error != nil {
		err = fmt.Errorf("%s: error %d %s", method, r.Error.Code, r.Error.Message)
	}
	return r, err
}

// tryPublish publishes from a goroutine other than the test's.
func (c *hubClient) tryPublish(channel string, data any) (publishResult, error) {
	r, err := c.tryCall("channelPublish", map[string]any{"channel": channel, "data": data})
	if err != nil {
		return publishResult{}, err
	}
	var res publishResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		return publishResult{}, fmt.Errorf("channelPublish result %s: %w", r.Result, err)
	}
	return res, nil
}

// whoami returns the client's sessionWhoami.
func (c *hubClient) whoami() whoamiResult {
	c.t.Helper()
	var w whoamiResult
	c.ok("sessionWhoami", nil, &w)
	return w
}

// nextNote returns the next notification, which must be of method, with
// its params decoded into v.
func (c *hubClient) nextNote(method string, v any) {
	c.t.Helper()
	n := c.next()
	if n.Method != method {
		c.t.Fatalf("got %s %s, want %s", n.Method, n.Params, method)
	}
	if err := json.Unmarshal(n.Params, v); err != nil {
		c.t.Fatalf("%s %s: %v", method, n.Params, err)
	}
}

// presenceResult is channelPresence's result.
type presenceResult struct {
	Channel string       `json:"channel"`
	Members []memberJSON `json:"members"`
}

// memberJSON is a presence member, and the params of channelJoin and
// channelLeave (which add the channel).
type memberJSON struct {
	Channel      string    `json:"channel,omitempty"`
	User         string    `json:"user"`
	ConnectionID string    `json:"connectionId"`
	Since        time.Time `json:"since"`
}

// channelListResult is channelList's result.
type channelListResult struct {
	Channels []channelSummaryJSON `json:"channels"`
	More     bool                 `json:"more"`
}

type channelSummaryJSON struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
	Offset      uint64 `json:"offset"`
}

// removeResult is channelRemove's result.
type removeResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

// unsubscribedNote is channelUnsubscribed's params.
type unsubscribedNote struct {
	Channel string `json:"channel"`
	Reason  string `json:"reason"`
}

// publishSeen publishes each of data to channel and returns once c has
// received them all through a subscription of its own, which it then
// ends: by then the hub has fanned them out, and not merely stored them.
// c must not be subscribed to channel already; other notifications that
// arrive meanwhile are dropped.
func (c *hubClient) publishSeen(channel string, data ...any) []publishResult {
	c.t.Helper()
	c.subscribe(map[string]any{"channel": channel})
	res := make([]publishResult, len(data))
	for i, d := range data {
		res[i] = c.publish(channel, d)
	}
	for _, r := range res {
		for {
			n := c.nextPublication()
			if n.Channel == channel && n.Offset >= r.Offset {
				break
			}
		}
	}
	var u map[string]any
	c.ok("channelUnsubscribe", map[string]any{"channel": channel}, &u)
	return res
}

// backgroundPublisher publishes 0, 1, 2, … to a channel from its own
// connection, without pause, until stopped.
type backgroundPublisher struct {
	stopped chan struct{}
	done    chan struct{}
	last    atomic.Uint64
	err     error
}

// startPublisher starts publishing to channel from c; the publisher is
// stopped when the test ends, if not before.
func startPublisher(t *testing.T, c *hubClient, channel string) *backgroundPublisher {
	bp := &backgroundPublisher{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(bp.done)
		for i := 0; ; i++ {
			select {
			case <-bp.stopped:
				return
			default:
			}
			p, err := c.tryPublish(channel, i)
			if err != nil {
				bp.err = err
				return
			}
			bp.last.Store(p.Offset)
		}
	}()
	t.Cleanup(bp.stop)
	return bp
}

// waitFor waits until the publisher has been given offset n.
func (bp *backgroundPublisher) waitFor(t *testing.T, n uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("the publisher to reach offset %d", n), func() bool { return bp.last.Load() >= n })
}

// stop stops the publisher.
func (bp *backgroundPublisher) stop() {
	select {
	case <-bp.stopped:
	default:
		close(bp.stopped)
	}
	<-bp.done
}

// finish stops the publisher, which must not have failed, and returns the
// last offset it was given.
func (bp *backgroundPublisher) finish(t *testing.T) uint64 {
	t.Helper()
	bp.stop()
	if bp.err != nil {
		t.Fatalf("publisher: %v", bp.err)
	}
	return bp.last.Load()
}
