package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

var errBinaryMessage = errors.New("rpc: binary message")

// parsingStream is the jsonrpc2.ObjectStream of a conn: one JSON value
// per text frame. It parses every frame itself and answers what is not a
// valid call (parse errors, invalid requests, empty batches) without
// involving jsonrpc2, which would close the connection on such input.
// Each valid call reaches jsonrpc2 as a stand-in request through the
// conn's handover, and the reply echoes the id exactly as the client sent
// it.
type parsingStream struct {
	c *conn
	// parked is set when ReadObject ended the stream for the connection
	// to park, not to close.
	parked atomic.Bool
}

// ReadObject implements jsonrpc2.ObjectStream.
func (s *parsingStream) ReadObject(v any) error {
	for s.c.handover.empty() {
		if s.c.idle() {
			s.parked.Store(true)
			return io.EOF
		}
		if err := s.readMessage(); err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				s.c.setReason(ReasonMessageTooBig)
			}
			s.c.srv.log.Debug("read ended", "conn", s.c.sess.ID, "err", err)
			return io.EOF // the reason is ours to report; keep jsonrpc2 quiet
		}
	}
	// v is jsonrpc2's own message type. Every call's stand-in is the
	// same request, decoded once, by jsonrpc2's own decoder, and copied:
	// decoding it for each call was a quarter of a pipelined call's CPU
	// and 2 KiB of garbage, and took some 4 KiB of the read loop's stack,
	// which doubled it to 8 KiB at a connection's first call, for good
	// (the collector halves a stack only while its parked goroutine uses
	// under a quarter of it). jsonrpc2 dispatches it as ever.
	rv := reflect.ValueOf(v).Elem()
	decoded.once.Do(func() { decoded.v, decoded.err = decodeStandIn(rv.Type(), standIn) })
	if decoded.err != nil {
		return decoded.err
	}
	s.c.handover.hand()
	rv.Set(decoded.v)
	return nil
}

// decoded is standIn decoded into jsonrpc2's message type. Every copy
// shares its *jsonrpc2.Request, which nobody writes: jsonrpc2 (v0.2.3)
// only hands it to conn.Handle, which takes the call it stands for from
// the handover.
var decoded struct {
	once sync.Once
	v    reflect.Value
	err  error
}

// decodeStandIn decodes b into a new value of jsonrpc2's message type t,
// on a goroutine of its own: the stack that takes is not a read loop's.
func decodeStandIn(t reflect.Type, b []byte) (v reflect.Value, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := reflect.New(t)
		if err = p.Interface().(json.Unmarshaler).UnmarshalJSON(b); err == nil {
			v = p.Elem()
		}
	}()
	<-done
	return v, err
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps the occasional huge message from pinning memory.
const maxPooledBuffer = 64 << 10

// readMessage reads one frame and queues its calls. Rejected elements are
// answered at once.
func (s *parsingStream) readMessage() error {
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
	var last *turn
	if isBatch {
		b = newBatch(len(items), c.srv.limits.MaxBatchReplySize)
		c.handover.expect(len(items))
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
			cl := call{req: it.req, batch: b, slot: i}
			if b != nil && c.srv.reg.ordered(&it.req) {
				last = nextTurn(last, it.req.id)
				cl.turn = last
			}
			c.handover.add(cl)
		}
	}
	return nil
}

// WriteObject implements jsonrpc2.ObjectStream. Switchboard sends through
// the writer directly; this path serves any use of jsonrpc2's own Reply or
// Notify and goes through the same bounded queue, as a reply: it waits for
// room, but not for the socket, which a goroutine of its own writes.
func (s *parsingStream) WriteObject(obj any) error {
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
func (s *parsingStream) Close() error {
	if s.parked.Load() {
		s.c.park()
	} else {
		s.c.end()
	}
	return nil
}
