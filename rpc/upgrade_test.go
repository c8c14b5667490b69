package rpc_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/rpc"
)

// A client may send its first message in the same packet as its handshake;
// the server must not lose it when it takes the connection over.
func TestMessageSentWithHandshake(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, nil)
	conn, br := dialWithFrames(t, ts, maskedTextFrame(`{"jsonrpc":"2.0","method":"get_data","id":"early"}`))
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	checkReply(t, readServerFrame(t, br), false, []want{{id: `"early"`, result: `["hello",5]`}})
}

// dialWithFrames opens a raw TCP connection, sends the WebSocket handshake with
// frames right behind it in the same write (so that the server finds them
// all in one buffer), and returns the reader positioned after the 101.
func dialWithFrames(t *testing.T, ts *testServer, frames ...[]byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(ts.url, "http://"), "/rpc")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msg := []byte("GET /rpc HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	for _, f := range frames {
		msg = append(msg, f...)
	}
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake answered %s", resp.Status)
	}
	return conn, br
}

// maskedTextFrame encodes payload (under 126 bytes) as a client text frame.
func maskedTextFrame(payload string) []byte {
	mask := [4]byte{1, 2, 3, 4}
	f := []byte{0x81, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i := range len(payload) {
		f = append(f, payload[i]^mask[i%4])
	}
	return f
}

// readServerFrame reads one unmasked text frame with a payload under 64 KiB.
func readServerFrame(t *testing.T, r io.Reader) string {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	if h[0] != 0x81 {
		t.Fatalf("frame header %#x, want a final text frame", h[0])
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = int(ext[0])<<8 | int(ext[1])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatal(err)
	}
	return string(p)
}
