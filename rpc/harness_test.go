package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// testServer is an rpc.Server behind a real HTTP server on a random
// loopback port: GET /rpc upgrades, POST /rpc calls.
type testServer struct {
	t    testing.TB
	rpc  *rpc.Server
	reg  *rpc.Registry
	http *http.Server
	url  string // http://127.0.0.1:PORT/rpc
	obs  *countingObserver
}

func newTestServer(t testing.TB, limits rpc.Limits, register func(*rpc.Registry)) *testServer {
	t.Helper()
	reg := rpc.NewRegistry()
	obs := &countingObserver{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rs := rpc.NewServer(reg, rpc.Options{Limits: limits, Logger: logger, Observer: obs})
	registerSpecMethods(reg)
	if register != nil {
		register(reg)
	}
	caller := service.Caller{User: "tester"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rpc", func(w http.ResponseWriter, r *http.Request) {
		// Upgrade is the production path, with corked writes.
		rs.Upgrade(w, r, rpc.Peer{ID: rpc.NewID(), Caller: caller, RemoteAddr: r.RemoteAddr}, nil)
	})
	mux.HandleFunc("POST /rpc", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply := rs.ServeHTTP(r.Context(), rpc.Peer{ID: "req", Caller: caller, RemoteAddr: r.RemoteAddr}, body)
		if reply == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	ts := &testServer{t: t, rpc: rs, reg: reg, http: hs, url: "http://" + ln.Addr().String() + "/rpc", obs: obs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		rs.Shutdown(ctx)
	})
	return ts
}

// dial opens a WebSocket to the server.
func (ts *testServer) dial() *wsClient {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http"), nil)
	if err != nil {
		ts.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(-1)
	c := &wsClient{t: ts.t, ws: ws}
	ts.t.Cleanup(func() { ws.CloseNow() })
	return c
}

// post sends body to POST /rpc and returns the status and reply.
func (ts *testServer) post(body string) (int, string) {
	ts.t.Helper()
	resp, err := http.Post(ts.url, "application/json", strings.NewReader(body))
	if err != nil {
		ts.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type wsClient struct {
	t  testing.TB
	ws *websocket.Conn
}

func (c *wsClient) send(msg string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one message, failing the test after timeout.
func (c *wsClient) recv(timeout time.Duration) string {
	c.t.Helper()
	msg, err := c.read(timeout)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return msg
}

func (c *wsClient) read(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	return string(b), err
}

// call sends a request and returns the reply.
func (c *wsClient) call(msg string) string {
	c.t.Helper()
	c.send(msg)
	return c.recv(5 * time.Second)
}

func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}

// closeCode reads until the connection ends and returns the close code
// the server sent, or -1 when the connection ended without a close
// frame. Messages still in flight are discarded.
func (c *wsClient) closeCode(timeout time.Duration) websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if _, _, err := c.ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				c.t.Fatalf("connection still open after %v", timeout)
			}
			return websocket.CloseStatus(err)
		}
	}
}

// response is one decoded JSON-RPC response.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// decode parses a single (non-batch) response.
func decode(t *testing.T, reply string) response {
	t.Helper()
	var r response
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		t.Fatalf("reply %q: %v", reply, err)
	}
	if r.JSONRPC != "2.0" {
		t.Fatalf("reply %s: jsonrpc member is %q", reply, r.JSONRPC)
	}
	return r
}
