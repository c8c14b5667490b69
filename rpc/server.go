package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/ratelimit"
)

// Options configure a Server. Every field is optional.
type Options struct {
	Limits   Limits
	Logger   *slog.Logger
	Observer Observer
}

// Server runs the methods of a Registry for WebSocket and HTTP callers.
type Server struct {
	reg    *Registry
	limits Limits
	log    *slog.Logger
	obs    Observer
	// jsonrpc2Log receives jsonrpc2's own messages; one for all
	// connections, so that an idle connection carries no logger.
	jsonrpc2Log *log.Logger
	gate        gate
	heavy       chan struct{}    // one slot per Heavy call running
	httpCalls   *ratelimit.Keyed // calls over HTTP per client address; nil without CallRate
	delayer     *delayer         // nil without WriteDelay
	parker      *parker          // nil without ParkAfter, or where connections cannot park

	mu    sync.Mutex
	conns map[*conn]struct{}
	// cutOff holds the users Disconnect cut off in the last
	// cutOffMemory, for connections whose upgrade was under way then.
	cutOff map[string]cut
}

// NewServer returns a server for the methods in reg. Methods may still be
// registered until the server starts serving.
func NewServer(reg *Registry, opts Options) *Server {
	s := &Server{
		reg:    reg,
		limits: opts.Limits.withDefaults(),
		log:    opts.Logger,
		obs:    opts.Observer,
		conns:  map[*conn]struct{}{},
		cutOff: map[string]cut{},
	}
	s.heavy = make(chan struct{}, s.limits.MaxHeavyCalls)
	if s.limits.CallRate > 0 {
		s.httpCalls = ratelimit.New(s.limits.CallRate, s.limits.CallBurst)
	}
	if s.limits.WriteDelay > 0 {
		s.delayer = newDelayer(s.limits.WriteDelay)
	}
	if s.limits.ParkAfter > 0 {
		s.parker = newParker()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	s.jsonrpc2Log = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	return s
}

// Limits returns the limits in force, defaults filled in.
func (s *Server) Limits() Limits { return s.limits }

// Connections returns the number of open WebSocket connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serve serves JSON-RPC on ws, whose network connection is sock, until
// the connection ends. It returns at once: the connection is owned by the
// server from here on, and Shutdown closes it.
func (s *Server) serve(ws *websocket.Conn, sock *corkConn, p Peer, onClose func()) {
	c := newConn(s, ws, sock, p)
	c.onClose = onClose
	s.mu.Lock()
	draining := s.gate.isClosed()
	cut, wasCut := s.cutOff[p.Caller.User]
	wasCut = wasCut && !p.Caller.Anonymous && !cut.at.Before(p.ProvenAt)
	if !draining && !wasCut {
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	if draining || wasCut {
		if draining {
			ws.Close(CloseGoingAway, "server shutting down")
		} else {
			ws.Close(CloseDisconnected, cut.text)
		}
		if onClose != nil {
			onClose()
		}
		return
	}
	s.obs.ConnOpened()
	c.start()
}

// ServeHTTP runs the calls in one HTTP request body and returns the reply
// body, or nil when there is nothing to answer (every call was a
// notification). The calls of a batch run one after another, until their
// replies pass MaxBatchReplySize; those left are refused. An Ordered call
// goes on in a goroutine of its own once placed, so that a batch of
// publishes shares its commits; the budget counts its reply once it is
// made.
func (s *Server) ServeHTTP(ctx context.Context, p Peer, body []byte) []byte {
	sess := NewSession(p)
	items, batch := parseMessage(body, s.limits.MaxBatch)
	slots := make([][]byte, len(items))
	var running sync.WaitGroup
	var last *turn
	var size atomic.Int64
	for i, it := range items {
		if it.reply != nil {
			slots[i] = it.reply
			size.Add(int64(len(it.reply)))
			continue
		}
		over := batch && size.Load() > int64(s.limits.MaxBatchReplySize)
		if !batch || !s.reg.ordered(&it.req) {
			slots[i] = s.httpCall(ctx, sess, &it.req, over, nil)
			size.Add(int64(len(slots[i])))
			continue
		}
		last = nextTurn(last, it.req.id)
		t := last
		running.Go(func() {
			slots[i] = s.httpCall(ctx, sess, &it.req, over, t)
			size.Add(int64(len(slots[i])))
			t.end(true) // if nothing placed it: the call did not run
		})
		<-t.placed
	}
	running.Wait()
	replies := slots[:0]
	for _, r := range slots {
		if r != nil {
			replies = append(replies, r)
		}
	}
	switch {
	case len(replies) == 0:
		return nil
	case batch:
		return appendBatch(nil, replies)
	default:
		return replies[0]
	}
}

// httpCall runs req, one call of an HTTP request, unless the request's
// replies are overBudget or its client calls too fast.
// t is the call's turn when it is an Ordered call of a batch.
func (s *Server) httpCall(ctx context.Context, sess *Session, req *request, overBudget bool, t *turn) []byte {
	if !t.wait(ctx) {
		t.skip()
		return s.notRun(ctx, req, t)
	}
	if overBudget {
		return s.overBudget(req)
	}
	if s.httpCalls != nil {
		if ok, wait := s.httpCalls.Allow(ratelimit.AddressKey(sess.RemoteAddr)); !ok {
			return s.tooFast(req, wait)
		}
	}
	return s.admit(ctx, sess, req, t)
}

// RefuseHTTP returns the reply that refuses every call in body with e,
// for a request turned away before its calls could run (a token that is
// refused): e with the call's id for a single call, an array of them for
// a batch, or e with a null id when no id can be read. body may be cut
// short or empty.
func (s *Server) RefuseHTTP(body []byte, e *Error) []byte {
	items, batch := parseMessage(body, s.limits.MaxBatch)
	var replies [][]byte
	for _, it := range items {
		if it.reply == nil && !it.req.notification() {
			replies = append(replies, appendError(nil, it.req.id, e))
		}
	}
	switch {
	case batch && len(replies) > 0:
		return appendBatch(nil, replies)
	case len(replies) == 1:
		return replies[0]
	}
	return appendError(nil, nullID, e)
}

// admit runs req unless the server is draining, in which case it answers
// CodeUnavailable without running it.
func (s *Server) admit(ctx context.Context, sess *Session, req *request, t *turn) []byte {
	if !s.gate.enter() {
		return s.refuse(req)
	}
	defer s.gate.leave()
	m := s.reg.lookup(req.method)
	if m != nil && m.Heavy {
		if err := acquire(ctx, s.heavy); err != nil {
			return s.answer(req, ErrorFrom(err))
		}
		defer release(s.heavy)
	}
	reply, after := s.invoke(ctx, sess, req, m, t)
	if after != nil {
		after()
	}
	return reply
}

func (s *Server) refuse(req *request) []byte {
	return s.answer(req, Errorf(CodeUnavailable, "server is shutting down; retry later"))
}

// overBudget answers a call of a batch whose replies have passed
// MaxBatchReplySize, without running it.
func (s *Server) overBudget(req *request) []byte {
	return s.answer(req, Errorf(CodeLimitExceeded,
		"Limit exceeded: the replies to this batch passed %d bytes (--max-batch-reply-size), so this call was not run; call it again, in a smaller batch",
		s.limits.MaxBatchReplySize))
}

// tooFast answers a call past CallRate, without running it.
func (s *Server) tooFast(req *request, wait time.Duration) []byte {
	return s.answer(req, &Error{Code: CodeLimitExceeded, Data: retryAfter(wait),
		Message: fmt.Sprintf("Limit exceeded: more than %g calls a second (--rate-calls); retry in %v", s.limits.CallRate, wait.Round(time.Millisecond))})
}

// answer counts a call that did not run and returns its error reply, or
// nil for a notification.
func (s *Server) answer(req *request, e *Error) []byte {
	s.obs.CallDone(s.methodLabel(req.method), codeName(e.Code), 0)
	if req.notification() {
		return nil
	}
	return appendError(nil, req.id, e)
}

// acquire takes a slot of sem, waiting for one until ctx ends.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(sem chan struct{}) { <-sem }

func (s *Server) methodLabel(name string) string {
	if s.reg.lookup(name) == nil {
		return "unknown"
	}
	return name
}

// invoke runs one call of method m (nil when req names no registered
// method) and returns its encoded reply, or nil for a notification, and
// what the handler arranged with AfterReply to run once the reply is
// queued. A panicking handler is answered with CodeInternalError and
// logged with its stack; it never takes the server down.
func (s *Server) invoke(ctx context.Context, sess *Session, req *request, m *method, t *turn) (reply []byte, after func()) {
	start := time.Now()
	label := "unknown"
	var result any
	var err error
	var hooks *afterReply
	switch {
	case m == nil:
		err = Errorf(CodeMethodNotFound, "Method not found: %q", req.method)
	case m.NeedsSocket && sess.conn == nil:
		label = m.Name
		err = Errorf(CodeSocketRequired, "%s needs a WebSocket connection; connect to GET /rpc", m.Name)
	default:
		label = m.Name
		if m.Notifies {
			ctx, hooks = withAfterReply(ctx)
		}
		if t != nil {
			ctx = context.WithValue(ctx, turnKey{}, t)
		}
		result, err = s.call(ctx, sess, m, req)
	}
	t.end(err != nil)

	if err == nil {
		after = hooks.all()
		// Encoded behind the reply's head, to copy a page of history once.
		head := appendResultHead(make([]byte, 0, max(256, len(req.id)+64)), req.id)
		if reply, err = appendJSON(head, result); err != nil {
			err = fmt.Errorf("encode result of %s: %w", label, err)
		}
	}
	outcome := "ok"
	if err != nil {
		e := ErrorFrom(err)
		if e.Code == CodeInternalError {
			s.log.Error("call failed", "method", label, "session", sess.ID, "err", err)
		}
		outcome = codeName(e.Code)
		reply = nil
		if !req.notification() {
			reply = appendError(nil, req.id, e)
		}
	} else if req.notification() {
		reply = nil
	} else {
		reply = append(reply, '}')
	}
	s.obs.CallDone(label, outcome, time.Since(start))
	return reply, after
}

func (s *Server) call(ctx context.Context, sess *Session, m *method, req *request) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "method", m.Name, "session", sess.ID,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			result, err = nil, Errorf(CodeInternalError, "Internal error")
		}
	}()
	return m.call(ctx, sess, req.params)
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.gate.isClosed() }

// Shutdown stops taking calls (new ones are answered CodeUnavailable),
// waits for the calls in flight to finish, then closes every connection
// with CloseGoingAway once its queued messages are written. When ctx ends
// first, the remaining connections are dropped without ceremony and
// ctx's error is returned at once; a socket caught in the middle of its
// close handshake is let go in the background, within the websocket
// library's own timeouts.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.gate.close()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	err := s.gate.wait(ctx)
	for _, c := range conns {
		c.closeWith(CloseGoingAway, "server shutting down", ReasonShutdown, true)
	}
	for _, c := range conns {
		select {
		case <-c.released:
		case <-ctx.Done():
			// Cancelling the connection ends its read, which makes the
			// websocket library drop the socket even in the middle of a
			// close handshake. When no read is under way, CloseNow waits
			// for the handshake, up to 5s for a client that does not
			// answer, so it must not hold up Shutdown.
			c.cancel()
			go c.ws.CloseNow()
			err = ctx.Err()
		}
	}
	return err
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// appendJSON appends v to dst, encoded as JSON without escaping <, > and
// &: results are not HTML, and channel patterns such as "chat.>" should
// read as written. What it encodes goes out in text frames, which must be
// UTF-8: strings are made so by encoding/json, but raw JSON values
// (publication data) are copied as they are, so the whole is checked.
func appendJSON(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if at := invalidUTF8(b[len(dst):]); at >= 0 {
		return nil, fmt.Errorf("encoded JSON is not valid UTF-8 at byte %d", at)
	}
	return b, nil
}

// NewID returns a random identifier, fit for a connection.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// gate counts calls in flight and, once closed, admits no more, so that
// Shutdown can wait for exactly the calls it let in.
type gate struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n drops to 0 after close
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

func (g *gate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
