package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/sourcegraph/jsonrpc2"
)

// Close codes the client acts on.
const (
	statusTokenExpired = 4001 // the connection's token expired
	statusDisconnected = 4003 // an admin cut the user off
)

// socket is one WebSocket to the server, carrying JSON-RPC both ways.
type socket struct {
	url    string
	ws     *websocket.Conn
	rpc    *jsonrpc2.Conn
	stream *wsStream
	// expiring (cap 1) has a value when the server said the token is
	// about to expire (sessionExpiring) and serve has not seen to it yet.
	expiring chan struct{}
}

// dial opens a socket with tok. Notifications go to c's subscriptions.
func (c *Client) dial(ctx context.Context, tok string) (*socket, error) {
	h := http.Header{}
	authorize(h, tok)
	ws, resp, err := websocket.Dial(ctx, c.ep.ws, &websocket.DialOptions{
		HTTPClient: c.opts.HTTPClient,
		HTTPHeader: h,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				// websocket.Dial keeps at most 1 KiB of a refusal's body.
				body, _ = io.ReadAll(resp.Body)
			}
			if serr := httpStatusError(resp, body); serr != nil {
				err = serr
			}
		}
		return nil, &ConnectionError{URL: c.ep.ws, Err: err}
	}
	ws.SetReadLimit(readLimit)
	s := &socket{url: c.ep.ws, ws: ws, stream: &wsStream{ws: ws}, expiring: make(chan struct{}, 1)}
	s.rpc = jsonrpc2.NewConn(context.Background(), s.stream,
		notificationHandler(func(method string, params json.RawMessage) { c.notified(s, method, params) }),
		jsonrpc2.SetLogger(discardLogger{}))
	return s, nil
}

// notificationHandler is a jsonrpc2.Handler that passes notifications on.
// It runs on jsonrpc2's read loop, so it must not block.
type notificationHandler func(method string, params json.RawMessage)

func (h notificationHandler) Handle(_ context.Context, _ *jsonrpc2.Conn, req *jsonrpc2.Request) {
	// The server sends no requests; were one to come, answering it would
	// be a write on the read loop, so it is dropped.
	if req.Notif && req.Params != nil {
		h(req.Method, *req.Params)
	}
}

// call makes a call on the socket.
func (s *socket) call(ctx context.Context, method string, params, result any) error {
	err := s.rpc.Call(ctx, method, params, result)
	if errors.Is(err, jsonrpc2.ErrClosed) {
		return s.err()
	}
	return fromRPC(err)
}

// closed is closed when the socket is.
func (s *socket) closed() <-chan struct{} { return s.rpc.DisconnectNotify() }

// err says why the socket closed: a ConnectionError, wrapping
// ErrUnauthorized when the server closed it because the token expired,
// or ErrDisconnected when an admin cut the user off; and the
// websocket.CloseError, which has the server's reason.
func (s *socket) err() error {
	err := s.stream.readErr()
	if err == nil {
		err = errors.New("connection closed")
	}
	switch websocket.CloseStatus(err) {
	case statusTokenExpired:
		err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case statusDisconnected:
		err = fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return &ConnectionError{URL: s.url, Err: err}
}

// tokenExpired reports whether err is a socket's closing because its
// token expired, rather than a refused token.
func tokenExpired(err error) bool {
	return websocket.CloseStatus(err) == statusTokenExpired
}

func (s *socket) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return s.ws.Ping(ctx)
}

// close closes the socket with the closing handshake, unless the server
// takes more than closeTimeout to answer it.
func (s *socket) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ws.Close(websocket.StatusNormalClosure, "")
	}()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		s.ws.CloseNow() // and Close returns
	}
	s.rpc.Close()
}

// wsStream is a jsonrpc2.ObjectStream of one JSON value per text frame.
type wsStream struct {
	ws *websocket.Conn

	mu  sync.Mutex
	err error // the first read error
}

func (w *wsStream) WriteObject(obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	// jsonrpc2's send path takes no context; a write that cannot finish in
	// time closes the connection, which the supervisor then replaces.
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return w.ws.Write(ctx, websocket.MessageText, b)
}

func (w *wsStream) ReadObject(v any) error {
	_, b, err := w.ws.Read(context.Background())
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
	return err
}

func (w *wsStream) Close() error { return w.ws.CloseNow() }

func (w *wsStream) readErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// discardLogger silences jsonrpc2's own logging: a closed connection is
// reported through the client's errors instead.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
