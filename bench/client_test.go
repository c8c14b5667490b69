package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/loadgen"
)

// roundTimeout bounds one benchmark round (one value of b.N), so that a
// server that stops answering fails the benchmark instead of hanging it.
const roundTimeout = 3 * time.Minute

const maxMessage = 1 << 20 // the server's default MaxMessageSize

// dial opens a WebSocket to a server's /rpc, as a client of the real
// binary would: no compression (the server refuses it anyway).
func dial(ctx context.Context, addr string) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, "ws://"+addr+"/rpc", &websocket.DialOptions{
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(maxMessage)
	return c, nil
}

func mustDial(ctx context.Context, tb testing.TB, addr string) *websocket.Conn {
	tb.Helper()
	c, err := dial(ctx, addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	return c
}

// appendPing appends the serverPing call with id to dst: the bytes sent
// to the switchboard server and to the echo baseline alike.
func appendPing(dst []byte, id int) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	return append(dst, `,"method":"serverPing"}`...)
}

var (
	replyPrefix = []byte(`{"jsonrpc":"2.0","id":`)
	errorMember = []byte(`"error"`)
)

// checkReply is the client's check on every reply: a response (or, from
// the echo server, the request itself), not an error.
func checkReply(frame []byte) error {
	if !bytes.HasPrefix(bytes.TrimPrefix(frame, []byte("[")), replyPrefix) || bytes.Contains(frame, errorMember) {
		return fmt.Errorf("unexpected reply %.200q", frame)
	}
	return nil
}

// readFrame reads one message into buf, reusing its storage.
var readFrame = loadgen.ReadFrame

// callOnce sends req on c, a connection that carries nothing else yet,
// and checks its reply.
func callOnce(ctx context.Context, c *websocket.Conn, req []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		return err
	}
	reply, err := readFrame(ctx, c, nil)
	if err != nil {
		return err
	}
	return checkReply(reply)
}

// callSequential makes n serverPing calls one after the other, each
// waiting for its reply.
func callSequential(ctx context.Context, c *websocket.Conn, firstID, n int) error {
	req := make([]byte, 0, 64)
	buf := make([]byte, 0, 512)
	var err error
	for i := range n {
		req = appendPing(req[:0], firstID+i)
		if err = c.Write(ctx, websocket.MessageText, req); err != nil {
			return fmt.Errorf("call %d: write: %w", i, err)
		}
		if buf, err = readFrame(ctx, c, buf); err != nil {
			return fmt.Errorf("call %d: read: %w", i, err)
		}
		if err = checkReply(buf); err != nil {
			return err
		}
	}
	return nil
}

// callPipelined makes n serverPing calls keeping up to window of them in
// flight.
func callPipelined(ctx context.Context, c *websocket.Conn, firstID, n, window int) error {
	return pipeline(ctx, c, n, window, func(dst []byte, i int) []byte { return appendPing(dst, firstID+i) })
}

// pipeline sends n requests, the ith made by appendReq, keeping up to
// window of them in flight: a reader goroutine counts replies and frees a
// slot for each. The connection must carry nothing but the replies.
func pipeline(ctx context.Context, c *websocket.Conn, n, window int, appendReq func(dst []byte, i int) []byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make(chan struct{}, window)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 0, 512)
		var err error
		for i := range n {
			if buf, err = readFrame(ctx, c, buf); err != nil {
				readErr <- fmt.Errorf("reply %d: read: %w", i, err)
				return
			}
			if err = checkReply(buf); err != nil {
				readErr <- err
				return
			}
			<-slots
		}
		readErr <- nil
	}()
	req := make([]byte, 0, 64)
	for i := range n {
		select {
		case slots <- struct{}{}:
		case err := <-readErr:
			if err == nil {
				err = errors.New("reader stopped early")
			}
			return err
		}
		req = appendReq(req[:0], i)
		if err := c.Write(ctx, websocket.MessageText, req); err != nil {
			cancel()
			<-readErr
			return fmt.Errorf("call %d: write: %w", i, err)
		}
	}
	return <-readErr
}

// echoHandler is the baseline: the least a coder/websocket server can do
// per message. It accepts with the options the switchboard server uses
// and writes every message back as it came.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/memstats" {
			serveMemStats(w)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true,
			CompressionMode:    websocket.CompressionDisabled,
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(maxMessage)
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	})
}
