package rpc

import (
	"bytes"
	"io"
	"net"
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
	c.cork(time.Now().Add(time.Minute))
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
