package rpc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// corkConn is the network connection under a server-side WebSocket. While
// corked it gathers what the websocket library writes instead of sending
// it, and uncork sends it all with one write. The library flushes after
// every message; corking around a drain of the send queue turns a burst
// of replies into one system call instead of one per reply.
//
// It also tells its writer when the reader is about to wait for the
// network: the websocket library reads the connection only when its
// buffer cannot satisfy a read, which is when replies held back for the
// calls that came in the same read must go out.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte // taken from corkPool while corked
	// deadline is the socket's write deadline, in Unix nanoseconds; 0
	// for none. It outlives a drain: see cork.
	deadline int64

	beforeRead func() // the writer's release; set before the connection is served

	// raw, when the connection has one, lets Read wait for the network
	// holding no buffer, so an idle connection holds none: what a read
	// takes in waits in rbuf[r:w], from readPool, until it is read. Only
	// the websocket library's reader, one at a time, reads.
	raw  syscall.RawConn
	rbuf *[readBufferSize]byte
	r, w int32
	// br is the websocket library's reader over this connection, when
	// raw is set: what it holds is read too. See buffered.
	br *bufio.Reader
	// parkable is set when buffered sees all that was read and not yet
	// by the library: not when the client's first bytes came with the
	// handshake and did not fit rbuf (see Hijack).
	parkable bool
	pinged   func(payload []byte) // answers a ping that await took off
	// amu guards the read deadline while await may be waiting.
	amu          sync.Mutex
	awaiting     bool
	awaitStopped bool

	// reads counts the reads that brought something: a ping is answered
	// when it moves. See conn.ping.
	reads atomic.Uint64
}

func (c *corkConn) Read(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.rbuf[c.r:c.w])
		if c.r += int32(n); c.r == c.w {
			c.dropRead()
		}
		return n, nil
	}
	if c.beforeRead != nil {
		c.beforeRead()
	}
	if c.raw == nil || len(p) >= readBufferSize {
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.reads.Add(1)
		}
		return n, err
	}
	n, err := c.readPooled()
	if n == 0 {
		return 0, err
	}
	return c.Read(p)
}

// dropRead gives back the buffer of what was read.
func (c *corkConn) dropRead() {
	readPool.Put(c.rbuf)
	c.rbuf, c.r, c.w = nil, 0, 0
}

// buffered reports whether some of what the client sent has been read
// off the network and not yet by the websocket library. Only the read
// loop may ask, between messages.
func (c *corkConn) buffered() bool {
	return c.r < c.w || c.br != nil && c.br.Buffered() > 0
}

// await waits up to d for the client to send something other than pings
// and pongs, holding no buffer meanwhile, and reports whether it did.
// Those are taken off here, between messages, so that answering the
// server's pings, or pinging it, does not keep a connection from parking
// (the library, once reading, reads on until a message comes); anything
// else, an error or the end of the stream included, is left for the
// websocket library to read. Only the read loop may call it, between
// messages, on a parkable connection. After stopAwait it reports false
// at once.
func (c *corkConn) await(d time.Duration) bool {
	c.amu.Lock()
	if c.awaitStopped {
		c.amu.Unlock()
		return false
	}
	c.awaiting = true
	c.Conn.SetReadDeadline(time.Now().Add(d))
	c.amu.Unlock()
	defer func() {
		c.amu.Lock()
		c.awaiting = false
		c.Conn.SetReadDeadline(time.Time{})
		c.amu.Unlock()
	}()
	for {
		n, err := c.readPooled()
		if n == 0 {
			return !errors.Is(err, os.ErrDeadlineExceeded)
		}
		if !c.takeControl() {
			return true
		}
	}
}

// stopAwait ends the wait of await, and those to come: the connection is
// closing, and the websocket library is about to read its client's close
// frame. It must not move the deadline of a read that is not await's.
func (c *corkConn) stopAwait() {
	c.amu.Lock()
	c.awaitStopped = true
	if c.awaiting {
		c.Conn.SetReadDeadline(time.Now())
	}
	c.amu.Unlock()
}

// takeControl takes the whole pings and pongs at the start of what was
// read off the network, answering each ping through pinged, and reports
// whether that was all of it. A client's control frame has FIN, is
// masked and has at most 125 bytes of payload; anything else, a frame
// cut short included, is the library's to read.
func (c *corkConn) takeControl() bool {
	for c.r < c.w {
		b := c.rbuf[c.r:c.w]
		if len(b) < 6 || b[0] != 0x89 && b[0] != 0x8A || b[1]&0x80 == 0 || b[1]&0x7F > 125 {
			return false
		}
		n := 6 + int(b[1]&0x7F)
		if len(b) < n {
			return false
		}
		if b[0] == 0x89 {
			payload := b[6:n]
			for i := range payload {
				payload[i] ^= b[2+i%4] // unmasked in place: it is read only here
			}
			c.pinged(payload)
		}
		c.r += int32(n)
	}
	c.dropRead()
	return true
}

// readPool holds the buffers that a connection takes data in with, only
// while it has some unread.
var readPool = sync.Pool{New: func() any { return new([readBufferSize]byte) }}

// maxCork bounds what a corked connection holds before it writes through.
const maxCork = 64 << 10

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		// A control frame, outside any drain: the last drain's deadline
		// must not fail it once passed.
		if c.deadline != 0 && time.Now().UnixNano() > c.deadline {
			c.Conn.SetWriteDeadline(time.Time{})
			c.deadline = 0
		}
		return c.Conn.Write(p)
	}
	if len(*c.buf)+len(p) > maxCork {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxCork {
			return c.Conn.Write(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// closeFlush is how long Close gives what is gathered to leave.
const closeFlush = time.Second

// Close sends what is gathered, then closes the connection. The websocket
// library answers a client's close frame, and closes, on its read loop,
// which may be while a drain has writes corked: the answer is in the
// buffer, and would be lost with the socket.
//
// The deadline comes first, outside the lock: a write that holds the lock
// may be blocked on a client that reads nothing, and the library closes
// the connection precisely to end such a write.
func (c *corkConn) Close() error {
	c.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
	c.mu.Lock()
	if c.corked {
		c.flushLocked() // the connection goes either way
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// cork starts gathering writes. Every write until uncork returns, the
// gathered ones included, must be done within timeout of now, or at
// least half of it: the deadline set by an earlier drain stands while it
// leaves that much, so that a busy connection does not set (and clear)
// the poller's timer for every drain.
func (c *corkConn) cork(now time.Time, timeout time.Duration) {
	c.mu.Lock()
	c.corked = true
	c.buf = corkPool.Get().(*[]byte)
	if c.deadline-now.UnixNano() < int64(timeout/2) {
		d := now.Add(timeout)
		c.Conn.SetWriteDeadline(d)
		c.deadline = d.UnixNano()
	}
	c.mu.Unlock()
}

// uncork sends what was gathered and stops gathering.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.corked = false
	if cap(*c.buf) <= maxCork {
		corkPool.Put(c.buf)
	}
	c.buf = nil
	return err
}

func (c *corkConn) flushLocked() error {
	if len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

// controlBufferSize sizes the websocket library's write buffer. Data
// frames are always written corked, so the buffer only has to hold a
// control frame (a pong or a close, at most 127 bytes on the wire, server
// frames being unmasked) for it to go out in one write; no more, as every
// connection holds it.
const controlBufferSize = 128

// readBufferSize sizes what a connection reads from the network at once.
// Payloads larger than it are read straight into the message, so it only
// has to hold frame headers and small messages: 1 KiB takes in a dozen
// pipelined calls per read. A connection that can wait for the network
// without a buffer (see corkConn.raw) holds one only while it has data
// unread, and gives the websocket library a reader of minReadBuffer.
const readBufferSize = 1 << 10

// minReadBuffer is the smallest buffer bufio allows.
const minReadBuffer = 16

// corkingWriter is the http.ResponseWriter handed to websocket.Accept: its
// Hijack wraps the connection in a corkConn.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	netConn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: netConn, raw: rawConn(netConn)}
	bw := bufio.NewWriterSize(w.conn, controlBufferSize)
	if w.conn.raw == nil {
		return w.conn, bufio.NewReadWriter(smallReader(brw.Reader, w.conn), bw), nil
	}
	// What the client sent after its handshake is read first; it fits in
	// one read's buffer, or net/http's reader is kept.
	if n := brw.Reader.Buffered(); n > readBufferSize {
		// The library hides them from Buffered behind a reader of its
		// own, so this connection does not park.
		return w.conn, bufio.NewReadWriter(brw.Reader, bw), nil
	} else if n > 0 {
		w.conn.rbuf = readPool.Get().(*[readBufferSize]byte)
		early, _ := brw.Reader.Peek(n)
		w.conn.w = int32(copy(w.conn.rbuf[:], early))
	}
	w.conn.br = bufio.NewReaderSize(w.conn, minReadBuffer)
	w.conn.parkable = true
	return w.conn, bufio.NewReadWriter(w.conn.br, bw), nil
}

// smallReader swaps net/http's 4 KiB read buffer for one of
// readBufferSize. What the client sent after its handshake must be in the
// new buffer, not merely readable from it: the websocket library keeps
// only the buffered bytes when it rewires the reader to the connection.
// In the rare case that they do not fit, net/http's reader is kept.
func smallReader(br *bufio.Reader, conn net.Conn) *bufio.Reader {
	n := br.Buffered()
	if n > readBufferSize {
		return br
	}
	early, _ := br.Peek(n)
	small := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), readBufferSize)
	if n > 0 {
		// Reads only from the bytes.Reader: it holds exactly n bytes.
		small.Peek(n)
	}
	return small
}
