package rpc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection, closed when
// the test ends.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// What a corked connection gathered leaves before it closes: the close
// frame the websocket library writes while a drain has the connection
// corked is in there.
func TestCorkedCloseSendsWhatIsGathered(t *testing.T) {
	server, client := tcpPair(t)
	c := &corkConn{Conn: server}
	c.cork(time.Now(), time.Minute)
	c.Write([]byte("a close frame"))
	c.Close()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "a close frame" {
		t.Fatalf("the peer read %q, %v; want what was gathered", got, err)
	}
}

// Close ends a write blocked on a peer that reads nothing, rather than
// wait for it: the websocket library closes a connection to end such a
// write, and a Close waiting for the write's lock would never return.
func TestCloseEndsABlockedWrite(t *testing.T) {
	server, _ := tcpPair(t) // the client end never reads
	c := &corkConn{Conn: server}
	wrote := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for {
			if _, err := c.Write(chunk); err != nil { // uncorked: no deadline
				wrote <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // for the socket's buffers to fill
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a write blocked on a peer that reads nothing")
	}
	if err := <-wrote; err == nil {
		t.Fatal("the blocked write did not fail")
	}
}

// An idle connection holds no read buffer: what a read takes in is given
// back once the websocket library has read it all, and the reader it is
// given is bufio's smallest. The calls and their order are what the
// library does: a byte or two of frame header, then the payload.
func TestIdleConnectionHoldsNoReadBuffer(t *testing.T) {
	server, client := tcpPair(t)
	c := &corkConn{Conn: server, raw: rawConn(server)}
	if c.raw == nil {
		t.Skip("no raw reads on this system")
	}
	br := bufio.NewReaderSize(c, minReadBuffer)
	msg := bytes.Repeat([]byte("x"), 300)
	for range 3 {
		client.Write(append([]byte{0x81, byte(len(msg) >> 8), byte(len(msg))}, msg...))
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		var hdr [3]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("header %d: %v", i, err)
		}
		got := make([]byte, int(hdr[1])<<8|int(hdr[2]))
		if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %q, %v", i, got, err)
		}
	}
	if c.rbuf != nil {
		t.Fatalf("an idle connection holds a read buffer, %d bytes of it unread", c.w-c.r)
	}
	client.Close()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}

// countingConn counts the writes that reach the network.
type countingConn struct {
	net.Conn
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) { c.writes++; return len(p), nil }

// The write buffer is small, as every connection holds it, but the
// largest control frame still leaves uncorked in one write: the websocket
// library writes its header, then its payload, then flushes.
func TestControlFrameLeavesInOneWrite(t *testing.T) {
	nc := &countingConn{}
	bw := bufio.NewWriterSize(&corkConn{Conn: nc}, controlBufferSize)
	bw.Write([]byte{0x8a, 125})              // a pong's header, server frames unmasked
	bw.Write(bytes.Repeat([]byte("p"), 125)) // the most a control frame carries
	bw.Flush()
	if nc.writes != 1 {
		t.Fatalf("the largest control frame took %d writes, want 1", nc.writes)
	}
}

// A hijacked TCP connection reads without a buffer of its own while idle
// (see TestIdleConnectionHoldsNoReadBuffer) and gives the websocket
// library bufio's smallest reader, not one of readBufferSize.
func TestHijackGivesTheSmallestReader(t *testing.T) {
	if server, _ := tcpPair(t); rawConn(server) == nil {
		t.Skip("no raw reads on this system")
	}
	got := make(chan string, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkingWriter{ResponseWriter: w}
		nc, brw, err := cw.Hijack()
		if err != nil {
			got <- err.Error()
			return
		}
		defer nc.Close()
		switch {
		case cw.conn.raw == nil:
			got <- "no raw reads on the hijacked TCP connection"
		case brw.Reader.Size() != minReadBuffer:
			got <- fmt.Sprintf("a reader of %d bytes, want %d", brw.Reader.Size(), minReadBuffer)
		default:
			got <- ""
		}
	}))
	defer hs.Close()
	resp, err := http.Get(hs.URL)
	if err == nil {
		resp.Body.Close()
	}
	if msg := <-got; msg != "" {
		t.Fatal(msg)
	}
}

// deadlineCounter counts the write deadlines set on its connection.
type deadlineCounter struct {
	net.Conn
	set int
}

func (d *deadlineCounter) SetWriteDeadline(t time.Time) error {
	d.set++
	return d.Conn.SetWriteDeadline(t)
}

// A drain's write deadline stands for the drains after it while it
// leaves half the timeout, and a control frame written outside a drain is
// not failed by one that has passed.
func TestWriteDeadlineOutlivesADrain(t *testing.T) {
	server, client := tcpPair(t)
	counter := &deadlineCounter{Conn: server}
	c := &corkConn{Conn: counter}
	now := time.Now()
	for i := range 3 {
		c.cork(now.Add(time.Duration(i)*time.Second), time.Minute)
		c.Write([]byte("frame "))
		if err := c.uncork(); err != nil {
			t.Fatal(err)
		}
	}
	if counter.set != 1 {
		t.Errorf("three drains within half the timeout set the deadline %d times, want once", counter.set)
	}
	c.cork(now.Add(31*time.Second), time.Minute) // less than half is left: a new one
	c.uncork()
	if counter.set != 2 {
		t.Errorf("a drain past half the timeout did not set a new deadline (%d set)", counter.set)
	}

	// A deadline that has passed, then a pong outside any drain.
	c = &corkConn{Conn: server}
	c.cork(time.Now().Add(-time.Hour), time.Minute)
	c.uncork()
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatalf("a control frame after a passed deadline: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	want := "frame frame frame pong"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != want {
		t.Fatalf("the peer read %q, %v; want %q", got, err, want)
	}
}
