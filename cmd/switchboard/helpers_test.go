package main

// Helpers for the end-to-end tests of this package: the real server, built
// by newApp exactly as serve builds it, on a random loopback port, and
// real WebSocket and HTTP clients talking to it.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/service"
)

// Generous bounds: the tests share a 2-core machine with the race detector.
const (
	ioTimeout   = 10 * time.Second // one request, one read, one dial
	waitTimeout = 10 * time.Second // for something asynchronous to happen
)

// testApp is a running server.
type testApp struct {
	t      *testing.T
	app    *app
	cfg    serveConfig
	addr   string // 127.0.0.1:PORT
	secret string // the HS256 secret the server verifies tokens with
	logs   *syncBuffer
	client *http.Client
}

// startApp builds the app from cfg and serves it on 127.0.0.1:0 until the
// test ends. Unless cfg says otherwise, the data directory is a fresh
// temporary one and the token secret a random one. The server logs at
// debug level into ta.logs, which is printed when the test fails.
func startApp(t *testing.T, cfg serveConfig) *testApp {
	t.Helper()
	if cfg.dataDir == "" {
		cfg.dataDir = t.TempDir()
	}
	if cfg.tokenSecret == "" {
		cfg.tokenSecret = randomSecret()
	}
	if cfg.listen == "" {
		cfg.listen = "127.0.0.1:0" // as it listens, for the defaults that depend on it
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := newApp(cfg, logger)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.api.Serve(ln) }()
	ta := &testApp{
		t: t, app: a, cfg: cfg, addr: ln.Addr().String(), secret: cfg.tokenSecret, logs: logs,
		client: &http.Client{Timeout: ioTimeout},
	}
	t.Cleanup(func() {
		ta.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := a.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Serve did not return after Shutdown")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ta
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (ta *testApp) baseURL() string { return ta.scheme("http") + "://" + ta.addr }
func (ta *testApp) wsURL() string   { return ta.scheme("ws") + "://" + ta.addr + "/rpc" }

// scheme is plain, or its secure form when the server serves TLS.
func (ta *testApp) scheme(plain string) string {
	if ta.cfg.tlsCert != "" {
		return plain + "s"
	}
	return plain
}

// token issues a token with the server's own authority.
func (ta *testApp) token(sub string, perms service.Permissions, ttl time.Duration) string {
	ta.t.Helper()
	tok, err := ta.app.authority.Issue(sub, perms, ttl)
	if err != nil {
		ta.t.Fatalf("issue token: %v", err)
	}
	return tok
}

// bearer returns the header that carries tok.
func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// dialRaw dials GET /rpc at url (ws://…, with any query) with header and
// returns what websocket.Dial returns. The connection, if any, is closed
// when the test ends.
func dialRaw(t *testing.T, url string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if ws != nil {
		ws.SetReadLimit(-1)
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

// dial opens a WebSocket with header, failing the test if it cannot.
func (ta *testApp) dial(header http.Header) *websocket.Conn {
	ta.t.Helper()
	ws, resp, err := dialRaw(ta.t, ta.wsURL(), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		ta.t.Fatalf("dial %s: %v (HTTP status %d)", ta.wsURL(), err, status)
	}
	return ws
}

// rpcReply is a JSON-RPC response as it arrives on the wire.
type rpcReply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

var nextID atomic.Int64

// request encodes a JSON-RPC request with a fresh numeric id.
func request(method string, params any) (body []byte, id int64) {
	id = nextID.Add(1)
	m := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		m["params"] = params
	}
	body, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return body, id
}

// wsCall sends one request on ws and returns its reply, checking that the
// reply is a JSON-RPC 2.0 response to that request.
func wsCall(t *testing.T, ws *websocket.Conn, method string, params any) rpcReply {
	t.Helper()
	body, id := request(method, params)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, body); err != nil {
		t.Fatalf("%s: write: %v", method, err)
	}
	typ, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("%s: read: %v", method, err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("%s: reply is a %v frame, want text", method, typ)
	}
	return decodeReply(t, method, b, id)
}

func decodeReply(t *testing.T, method string, b []byte, id int64) rpcReply {
	t.Helper()
	var r rpcReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: reply %s: %v", method, b, err)
	}
	if r.JSONRPC != "2.0" {
		t.Fatalf("%s: reply %s: jsonrpc is %q, want 2.0", method, b, r.JSONRPC)
	}
	if string(r.ID) != fmt.Sprint(id) {
		t.Fatalf("%s: reply %s answers id %s, want %d", method, b, r.ID, id)
	}
	if (r.Error == nil) == (r.Result == nil) {
		t.Fatalf("%s: reply %s must have exactly one of result and error", method, b)
	}
	return r
}

// result decodes r's result into v, failing the test when r is an error.
func (r rpcReply) decode(t *testing.T, v any) {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("call failed: %d %s", r.Error.Code, r.Error.Message)
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		t.Fatalf("result %s: %v", r.Result, err)
	}
}

// httpResult is an HTTP response with its body read.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

// do sends an HTTP request to the server and reads the whole response.
func (ta *testApp) do(method, path string, header http.Header, body []byte) httpResult {
	ta.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ta.baseURL()+path, r)
	if err != nil {
		ta.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := ta.client.Do(req)
	if err != nil {
		ta.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends body to POST /rpc as JSON, with header added.
func (ta *testApp) post(header http.Header, body []byte) httpResult {
	ta.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	for k, vs := range header {
		h[k] = vs
	}
	return ta.do(http.MethodPost, "/rpc", h, body)
}

// httpCall makes one JSON-RPC call over POST /rpc with header.
func (ta *testApp) httpCall(header http.Header, method string, params any) (rpcReply, httpResult) {
	ta.t.Helper()
	body, id := request(method, params)
	res := ta.post(header, body)
	if res.status != http.StatusOK {
		ta.t.Fatalf("POST %s: HTTP %d: %s", method, res.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		ta.t.Fatalf("POST %s: Content-Type %q, want application/json", method, ct)
	}
	return decodeReply(ta.t, method, res.body, id), res
}

// httpErrorBody is the JSON body of the server's HTTP errors.
type httpErrorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantHTTPError checks that res is an HTTP error with status and a JSON
// error body of code, and returns the body's message.
func wantHTTPError(t *testing.T, what string, status int, hdr http.Header, body []byte, wantStatus int, wantCode string) string {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: HTTP %d, want %d; body %s", what, status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e httpErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", what, body, err)
	}
	if e.Error == nil {
		t.Fatalf("%s: body %s has no error object", what, body)
	}
	if e.Error.Code != wantCode {
		t.Errorf("%s: error code %q, want %q", what, e.Error.Code, wantCode)
	}
	if e.Error.Message == "" {
		t.Errorf("%s: error message is empty", what)
	}
	return e.Error.Message
}

// wantRefusedUpgrade checks that a WebSocket dial failed with an HTTP
// error response (status, JSON error body of code) rather than an upgrade,
// and returns the error message.
func wantRefusedUpgrade(t *testing.T, what string, ws *websocket.Conn, resp *http.Response, err error, status int, code string) string {
	t.Helper()
	if err == nil || ws != nil {
		t.Fatalf("%s: the WebSocket upgrade succeeded; want HTTP %d", what, status)
	}
	if resp == nil {
		t.Fatalf("%s: dial failed without an HTTP response: %v", what, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "" {
		t.Fatalf("%s: the server answered with an upgrade (status %d, Upgrade %q)", what, resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	body, rerr := io.ReadAll(resp.Body)
	if rerr != nil {
		t.Fatalf("%s: read body: %v", what, rerr)
	}
	return wantHTTPError(t, what, resp.StatusCode, resp.Header, body, status, code)
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readClose reads from ws until it ends and returns the close status the
// server sent (-1 when the connection ended without a close frame).
func readClose(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the server did not close the connection within %v", waitTimeout)
		}
		return websocket.CloseStatus(err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Result shapes, as openrpc.json describes them. They are declared here
// rather than taken from package api so that a renamed JSON field breaks
// the tests as it would break clients.
type whoamiResult struct {
	User         string     `json:"user"`
	Anonymous    bool       `json:"anonymous"`
	ConnectionID string     `json:"connectionId"`
	Transport    string     `json:"transport"`
	Permissions  permsJSON  `json:"permissions"`
	ExpiresAt    *time.Time `json:"expiresAt"`
}

type permsJSON struct {
	Publish   []string `json:"publish"`
	Subscribe []string `json:"subscribe"`
	Admin     bool     `json:"admin"`
}

type infoResult struct {
	Version       string    `json:"version"`
	NodeID        string    `json:"nodeId"`
	StartedAt     time.Time `json:"startedAt"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
	Connections   int       `json:"connections"`
}

type pingResult struct {
	Time time.Time `json:"time"`
}
