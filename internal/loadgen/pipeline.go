package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/client"
	"golang.org/x/time/rate"
)

const (
	// WriteTimeout bounds one message's write: a server that stops
	// reading ends the connection instead of the run hanging on it.
	WriteTimeout = 10 * time.Second
	// DrainTimeout bounds the wait, once a run is over, for the replies
	// to the calls still in flight.
	DrainTimeout = 5 * time.Second
)

// epoch is this process's zero of Now.
var epoch = time.Now()

// Now is the monotonic time since the process started: what a request
// carries as its send time (in a publication's data, say), so that the
// reader, in the same process, takes the delay from its own Now
// whatever the wall clock does meanwhile.
func Now() time.Duration { return time.Since(epoch) }

// Pipeline is one connection's share of a run of calls: it keeps up to
// Depth calls in flight until its context ends, then waits (up to
// DrainTimeout) for their replies. A goroutine reads the replies, and
// the one calling Run writes the requests, so that neither waits for
// the other but for a free slot. Call ids are slot numbers, reused once
// their reply is in: the server answers in any order.
type Pipeline struct {
	Conn  *websocket.Conn
	Depth int
	// Limiter, when set, paces the requests (shared by the connections
	// of a run, it paces them all); nil for as fast as replies allow.
	Limiter *rate.Limiter
	// Append appends to dst the request with id, sent at the time sent
	// (from Now).
	Append func(dst []byte, id int, sent time.Duration) []byte
	// Batch, above 1, makes each message a batch of that many requests,
	// all with the slot's id: one message and one reply per slot, each
	// call counted.
	Batch int
	// Result, when set, is given each successful result, on the reading
	// goroutine.
	Result func(result json.RawMessage)
	// Latency counts the time from each request's write to its reply.
	Latency *Histogram
}

// Counts are what a Pipeline's calls came to.
type Counts struct {
	OK, Failed uint64
	// FirstFailure is the first JSON-RPC error answered, if any.
	FirstFailure *client.Error
}

// reply is what the reader needs of a message from the server.
type reply struct {
	ID     *int            `json:"id"`
	Method string          `json:"method"` // set on notifications
	Result json.RawMessage `json:"result"`
	Error  *client.Error   `json:"error"`
}

// Run makes the calls until ctx ends, and closes the connection. Its
// error is the connection's, when it failed before then.
func (p *Pipeline) Run(ctx context.Context) (Counts, error) {
	free := make(chan int, p.Depth)
	for i := range p.Depth {
		free <- i
	}
	starts := make([]atomic.Int64, p.Depth)
	readCtx, stopRead := context.WithCancel(context.Background())
	defer stopRead()
	var counts Counts
	var readErr error
	var closing atomic.Bool // set before Run closes the connection
	readerGone := make(chan struct{})
	go func() {
		defer close(readerGone)
		err := p.read(readCtx, free, starts, &counts)
		if !closing.Load() {
			readErr = err // not the error of Run's own closing
		}
	}()

	writeErr := p.write(ctx, free, starts, readerGone)
	drain(free, p.Depth, readerGone)
	closing.Store(true)
	if writeErr == nil {
		closeGently(p.Conn, readerGone)
	}
	p.Conn.CloseNow()
	<-readerGone
	return counts, errors.Join(writeErr, readErr)
}

// write sends requests while ctx lasts and the reader goes on, each in a
// free slot, leaving the slots it took to the reader to give back.
func (p *Pipeline) write(ctx context.Context, free chan int, starts []atomic.Int64, readerGone <-chan struct{}) error {
	req := make([]byte, 0, 256)
	for {
		var slot int
		select {
		case slot = <-free:
		case <-ctx.Done():
			return nil
		case <-readerGone:
			return nil
		}
		if p.Limiter != nil && p.Limiter.WaitN(ctx, max(1, p.Batch)) != nil {
			free <- slot
			return nil
		}
		sent := Now()
		starts[slot].Store(int64(sent))
		req = p.request(req[:0], slot, sent)
		wctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
		err := p.Conn.Write(wctx, websocket.MessageText, req)
		cancel()
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

// request appends the message slot sends: one request, or a batch.
func (p *Pipeline) request(dst []byte, slot int, sent time.Duration) []byte {
	if p.Batch <= 1 {
		return p.Append(dst, slot, sent)
	}
	dst = append(dst, '[')
	for i := range p.Batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = p.Append(dst, slot, sent)
	}
	return append(dst, ']')
}

// drain waits for the depth slots to be free again: every reply in.
func drain(free chan int, depth int, readerGone <-chan struct{}) {
	timeout := time.NewTimer(DrainTimeout)
	defer timeout.Stop()
	for range depth {
		select {
		case <-free:
		case <-readerGone:
			return
		case <-timeout.C:
			return
		}
	}
}

// closeGently closes c with the closing handshake, so that the server
// logs a normal closure, unless the reader has gone (the connection
// failed) or the server takes long about it.
func closeGently(c *websocket.Conn, readerGone <-chan struct{}) {
	select {
	case <-readerGone:
	default:
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Close(websocket.StatusNormalClosure, "")
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
}

// read takes the replies until the connection ends, giving back each
// one's slot.
func (p *Pipeline) read(ctx context.Context, free chan<- int, starts []atomic.Int64, counts *Counts) error {
	buf := make([]byte, 0, 512)
	for {
		var err error
		if buf, err = ReadFrame(ctx, p.Conn, buf); err != nil {
			return err
		}
		replies, err := p.replies(buf)
		if err != nil {
			return err
		}
		if len(replies) == 0 {
			continue // a notification: not a reply
		}
		slot := *replies[0].ID
		for _, r := range replies {
			if *r.ID != slot {
				return fmt.Errorf("a batch reply with ids of two calls: %.200q", buf)
			}
			p.Latency.Record(Now() - time.Duration(starts[slot].Load()))
			if r.Error != nil {
				counts.Failed++
				if counts.FirstFailure == nil {
					counts.FirstFailure = r.Error
				}
			} else {
				counts.OK++
				if p.Result != nil {
					p.Result(r.Result)
				}
			}
		}
		free <- slot
	}
}

// replies decodes one message from the server: the replies it holds (one,
// or a batch's), or none for a notification.
func (p *Pipeline) replies(msg []byte) ([]reply, error) {
	var rs []reply
	var err error
	if p.Batch > 1 && len(msg) > 0 && msg[0] == '[' {
		err = json.Unmarshal(msg, &rs)
		if err == nil && len(rs) != p.Batch {
			err = fmt.Errorf("%d replies to a batch of %d", len(rs), p.Batch)
		}
	} else {
		rs = make([]reply, 1)
		err = json.Unmarshal(msg, &rs[0])
		if err == nil && rs[0].Method != "" {
			return nil, nil
		}
		if err == nil && rs[0].ID == nil && rs[0].Error != nil {
			return nil, fmt.Errorf("the server refused a message: %w", rs[0].Error)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("a reply that is not JSON-RPC: %.200q: %w", msg, err)
	}
	for _, r := range rs {
		if r.ID == nil || *r.ID < 0 || *r.ID >= p.Depth {
			return nil, fmt.Errorf("a reply to no call made: %.200q", msg)
		}
	}
	return rs, nil
}

// ReadFrame reads one message into buf, reusing its storage: a reader
// that allocates per message would be the bottleneck before the server.
func ReadFrame(ctx context.Context, c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return buf, err
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
