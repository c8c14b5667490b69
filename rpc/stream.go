package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"

	"github.com/coder/websocket"
)

// call is a parsed request on its way through jsonrpc2 to Conn.Handle.
type call struct {
	req   request
	batch *batch // nil for a call sent on its own
	slot  int    // the call's place in its batch
}

// complete files reply with the call's batch, if it has one, and returns
// what is to be sent: the reply itself for a call sent on its own, the
// batch's reply once its last call is done, or nil. It also returns what
// is to run once that reply is queued: after for a call on its own, every
// batched call's after once the batch is done.
func (cl call) complete(reply []byte, after func()) ([]byte, func()) {
	if cl.batch == nil {
		return reply, after
	}
	return cl.batch.finish(cl.slot, reply, after)
}

// inbox holds the calls read from the socket but not yet handed to
// jsonrpc2. Only the read loop touches it: jsonrpc2 calls ReadObject and
// then Handle, one after the other, on the same goroutine.
type inbox struct {
	queue   []call
	seq     uint64
	current call
	handed  bool
}

// take returns the call handed to jsonrpc2 under seq.
func (in *inbox) take(seq uint64) (call, bool) {
	if !in.handed || seq != in.seq {
		return call{}, false
	}
	in.handed = false
	cl := in.current
	in.current = call{}
	return cl, true
}

// batch gathers the replies of one batch so that they go out as one array.
type batch struct {
	mu           sync.Mutex
	replies      [][]byte
	after        []func()
	remaining    int
	size, budget int // bytes of the replies filed so far, and their most
}

func newBatch(n, budget int) *batch {
	return &batch{replies: make([][]byte, n), remaining: n, budget: budget}
}

// spent reports whether the replies filed so far have passed the budget:
// the calls that have yet to run are refused.
func (b *batch) spent() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size > b.budget
}

// finish files the reply of one call (nil for a notification) and what is
// to run after it. When it is the last call of the batch to finish,
// finish returns the batch's reply (the array of replies, or nil when
// none of its calls is answered) and a function running every call's
// after, or nil when there are none.
func (b *batch) finish(slot int, reply []byte, after func()) ([]byte, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replies[slot] = reply
	b.size += len(reply)
	if after != nil {
		b.after = append(b.after, after)
	}
	b.remaining--
	if b.remaining > 0 {
		return nil, nil
	}
	var all func()
	if hooks := b.after; len(hooks) > 0 {
		all = func() {
			for _, f := range hooks {
				f()
			}
		}
	}
	answered := b.replies[:0]
	for _, r := range b.replies {
		if r != nil {
			answered = append(answered, r)
		}
	}
	if len(answered) == 0 {
		return nil, all
	}
	return appendBatch(nil, answered), all
}

var errBinaryMessage = errors.New("rpc: binary message")

// stream is the jsonrpc2.ObjectStream of a Conn: one JSON value per text
// frame. It parses every frame itself and answers what is not a valid
// call (parse errors, invalid requests, empty batches) without involving
// jsonrpc2, which would close the connection on such input. Each valid
// call reaches jsonrpc2 as a minimal request carrying a connection-local
// sequence number as its id; Conn.Handle then picks up the parsed call,
// whose id is echoed exactly as the client sent it.
type stream struct {
	c *Conn
}

// ReadObject implements jsonrpc2.ObjectStream.
func (s *stream) ReadObject(v any) error {
	in := &s.c.in
	for len(in.queue) == 0 {
		if err := s.readMessage(); err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				s.c.setReason(ReasonMessageTooBig)
			}
			s.c.srv.log.Debug("read ended", "conn", s.c.sess.ID, "err", err)
			return io.EOF // the reason is ours to report; keep jsonrpc2 quiet
		}
	}
	cl := in.queue[0]
	in.queue[0] = call{}
	if in.queue = in.queue[1:]; len(in.queue) == 0 {
		in.queue = nil // let an idle connection hold no queue
	}
	in.seq++
	in.current, in.handed = cl, true
	// v is jsonrpc2's own message type, which decodes itself; calling it
	// directly spares encoding/json a validation pass.
	return v.(json.Unmarshaler).UnmarshalJSON(seqJSON(in.seq))
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps the occasional huge message from pinning memory.
const maxPooledBuffer = 64 << 10

// readMessage reads one frame and queues its calls. Rejected elements are
// answered at once.
func (s *stream) readMessage() error {
	c := s.c
	// No context: one that can be cancelled costs the websocket library a
	// timer per message. Ending the connection closes the socket, which
	// ends the read.
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return err
	}
	if typ != websocket.MessageText {
		c.closeWith(CloseUnsupportedData, "binary messages are not supported; send JSON as text", ReasonBadFrame, false)
		return errBinaryMessage
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			bufPool.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}

	// parseMessage copies what it keeps, so buf can be reused.
	items, isBatch := parseMessage(buf.Bytes(), c.srv.limits.MaxBatch)
	var b *batch
	if isBatch {
		b = newBatch(len(items), c.srv.limits.MaxBatchReplySize)
	}
	for i, it := range items {
		switch {
		case it.reply != nil && b != nil:
			reply, after := b.finish(i, it.reply, nil)
			if reply != nil && c.send(reply) {
				c.w.run(readLoop)
			}
			if after != nil {
				after() // the calls before it in the batch had hooks
			}
		case it.reply != nil:
			if c.send(it.reply) {
				c.w.run(readLoop)
			}
		default:
			c.in.queue = append(c.in.queue, call{req: it.req, batch: b, slot: i})
		}
	}
	return nil
}

// WriteObject implements jsonrpc2.ObjectStream. Switchboard sends through
// the writer directly; this path serves any use of jsonrpc2's own Reply or
// Notify and goes through the same bounded queue.
func (s *stream) WriteObject(obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	run, err := s.c.w.enqueue(b, replyFrame)
	if run {
		s.c.w.run(bystander)
	}
	return err
}

// Close implements jsonrpc2.ObjectStream. jsonrpc2 calls it once, when its
// read loop ends or the connection's context is cancelled.
func (s *stream) Close() error {
	s.c.end()
	return nil
}
