package api_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// slowBody opens a raw connection to ta and sends the head of a request
// promising a body of contentLength bytes, then the body a byte every
// 50ms, until the connection is closed (by the server, or when the test
// ends).
func slowBody(t *testing.T, ta *servertest.Server, method, path, header string, contentLength int) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ta.Addr, servertest.IOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n{",
		method, path, ta.Addr, contentLength, header)
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	return conn
}

// readResponse reads the response on conn, failing the test if none comes
// within d, and checks that the server then closes the connection.
func readResponse(t *testing.T, conn net.Conn, d time.Duration) *http.Response {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response within %v: %v", d, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// A reset is a close too: the client is still sending its body.
	if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the response the connection was not closed: %v", err)
	}
	return resp
}

// A refusal does not wait for a body nobody will read: with 200,000 bytes
// announced and one sent, no token gets its 401 at once, and the
// connection is closed. (net/http used to read the rest first: a client
// sending a byte a second held the connection for ever.)
func TestRefusalDoesNotWaitForTheBody(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	for _, tc := range []struct {
		name, method, path, header string
		status                     int
	}{
		{"no token", http.MethodPost, "/rpc", "", http.StatusUnauthorized},
		{"bad token", http.MethodPost, "/rpc", "Authorization: Bearer x.y.z\r\n", http.StatusUnauthorized},
		{"health check", http.MethodGet, "/healthz", "", http.StatusOK},
		{"no route", http.MethodPost, "/nowhere", "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := slowBody(t, ta, tc.method, tc.path, tc.header, 200000)
			// Well within the read timeout (30s): the server must not wait.
			if resp := readResponse(t, conn, 5*time.Second); resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// An accepted request whose body is slower than --read-timeout gets 408,
// and its connection is closed.
func TestSlowBodyTimesOut(t *testing.T) {
	ta := servertest.Start(t, server.Config{ReadTimeout: time.Second})
	tok := ta.Token("alice", service.Permissions{}, time.Hour)
	conn := slowBody(t, ta, http.MethodPost, "/rpc", "Authorization: Bearer "+tok+"\r\n", 200000)
	start := time.Now()
	resp := readResponse(t, conn, 10*time.Second)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("HTTP %d after %v, want 408", resp.StatusCode, time.Since(start))
	}

	// The server goes on serving others.
	body, _ := servertest.Request("serverPing", nil)
	res := ta.Post(servertest.Bearer(tok), body)
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), `"result"`) {
		t.Fatalf("a quick request after the slow one: HTTP %d %s", res.Status, res.Body)
	}
}

// A client that does not read its reply over HTTP holds the server's
// memory no longer than --write-timeout: then the server gives up on the
// connection, and the client, reading at last, finds the reply cut short.
//
// The client reads only once the server has given up, which its request
// log line, written when the handler returns, says; a fixed wait would
// guess how long the server takes to make the reply, and on a loaded
// machine the write timeout, which starts once the reply is made, was
// still running when the client began to read and took it all.
func TestUnreadHTTPReplyIsCut(t *testing.T) {
	ta := servertest.Start(t, server.Config{Limits: rpc.Limits{WriteTimeout: time.Second}})
	tok := ta.Token("alice", service.Permissions{Admin: true}, time.Hour)
	data := `"` + strings.Repeat("x", 60<<10) + `"`
	for range 100 {
		servertest.PublishHTTP(t, ta, tok, "big.x", data)
	}
	body := servertest.HistoryBatch(2, "big.x") // about 8 MiB of replies: more than the sockets hold
	conn, err := net.DialTimeout("tcp", ta.Addr, servertest.IOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	const id = "unread-reply"
	fmt.Fprintf(conn, "POST /rpc HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nX-Request-Id: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		ta.Addr, tok, id, len(body), body)
	// And read nothing meanwhile.
	servertest.Eventually(t, "the server to give up on the reply", func() bool {
		return strings.Contains(ta.Logs.String(), "client_request_id="+id)
	})
	conn.SetReadDeadline(time.Now().Add(servertest.WaitTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || resp.ContentLength < 0 || n >= resp.ContentLength {
		t.Fatalf("read %d of %d bytes (%v): want the reply cut short", n, resp.ContentLength, err)
	}
}
