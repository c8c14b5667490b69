package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Publishers run throughout a series of waves: some over HTTP POST, some
// over a WebSocket each, all of them on every channel in turn.
const (
	soakHTTPPublishers = 3
	soakWSPublishers   = 2
	soakPublishers     = soakHTTPPublishers + soakWSPublishers
)

const (
	soakDialers = 32 // connections being opened at once
	soakClosers = 64
	// soakTooManyErrors stops the opening of connections and the waves:
	// enough to say what is wrong.
	soakTooManyErrors = 100
)

// soakCounts is what a series' subscribers and publishers did.
type soakCounts struct {
	opened, published, delivered, joins, leaves atomic.Int64
}

// soakErrors counts what went wrong and keeps the first few messages.
type soakErrors struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (e *soakErrors) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.first) < 10 {
		e.first = append(e.first, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (e *soakErrors) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

func (e *soakErrors) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.first, "\n")
}

// soakRun is a series of waves with publishers running throughout.
type soakRun struct {
	waves   int
	elapsed time.Duration
	opening time.Duration // spent opening and subscribing
	peak    soakSample    // the highest of each figure, sampled every second
	counts  soakCounts
}

// runWaves runs n waves, or waves for d when n is 0.
func (s *soakServer) runWaves(ctx context.Context, t *testing.T, cfg soakConfig, errs *soakErrors, n int, d time.Duration) *soakRun {
	t.Helper()
	r := &soakRun{}
	stopPeaks := s.watchPeaks(ctx, &r.peak, errs)
	stopPublishers := s.startPublishers(ctx, cfg, &r.counts, errs)
	start := time.Now()
	for (n > 0 && r.waves < n) || (n == 0 && time.Since(start) < d) {
		// Errors fail the test at the end; the waves go on, since what the
		// server then holds is the point, unless it is plainly broken.
		if errs.count() >= soakTooManyErrors || ctx.Err() != nil {
			break
		}
		w := &soakWave{srv: s, cfg: cfg, n: r.waves, counts: &r.counts, errs: errs}
		r.opening += w.run(ctx, t)
		r.waves++
	}
	stopPublishers()
	r.elapsed = time.Since(start)
	stopPeaks()
	return r
}

// watchPeaks samples the server every second into peak until stopped.
func (s *soakServer) watchPeaks(ctx context.Context, peak *soakSample, errs *soakErrors) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m, err := s.sample(ctx)
			if err != nil {
				if ctx.Err() == nil {
					errs.add("scrape: %v", err)
				}
				continue
			}
			peak.goroutines = max(peak.goroutines, m.goroutines)
			peak.heapInuse = max(peak.heapInuse, m.heapInuse)
			peak.heapAlloc = max(peak.heapAlloc, m.heapAlloc)
			peak.heapObjects = max(peak.heapObjects, m.heapObjects)
			peak.rss = max(peak.rss, m.rss)
			peak.open = max(peak.open, m.open)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// startPublishers starts the publishers, at cfg.rate publications a
// second together. stop lets the calls in flight finish, so that none
// is cut short, and closes their connections.
func (s *soakServer) startPublishers(ctx context.Context, cfg soakConfig, counts *soakCounts, errs *soakErrors) (stop func()) {
	quit := make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: soakHTTPPublishers}, Timeout: 30 * time.Second}
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	interval := time.Second * soakPublishers / time.Duration(cfg.rate)
	for p := range soakPublishers {
		publish := func(ctx context.Context, body []byte) error { return s.publishHTTP(ctx, client, body) }
		if p >= soakHTTPPublishers {
			c, err := dialToken(ctx, s.addr, s.pub)
			if err != nil {
				errs.add("publisher %d: dial: %v", p, err)
				continue
			}
			conns = append(conns, c)
			publish = func(ctx context.Context, body []byte) error { return callOnce(ctx, c, body) }
		}
		wg.Go(func() {
			first := p * cfg.channels / soakPublishers
			publishLoop(ctx, quit, interval, func(seq int) string { return soakChannel((first + seq) % cfg.channels) },
				publish, counts, func(err error) { errs.add("publisher %d: %v", p, err) })
		})
	}
	return func() {
		close(quit)
		wg.Wait()
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "")
		}
		client.CloseIdleConnections() // each is a goroutine in the server
	}
}

func soakChannel(i int) string { return "soak." + strconv.Itoa(i) }

// publishLoop publishes every interval until quit is closed, and stops
// at the first failure.
func publishLoop(ctx context.Context, quit <-chan struct{}, interval time.Duration, channel func(seq int) string,
	publish func(context.Context, []byte) error, counts *soakCounts, fail func(error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	body := make([]byte, 0, 256)
	for seq := 0; ; seq++ {
		select {
		case <-quit:
			return
		case <-tick.C:
		}
		body = appendPublish(body[:0], seq+1, channel(seq), payload)
		if err := publish(ctx, body); err != nil {
			fail(err)
			return
		}
		counts.published.Add(1)
	}
}

func (s *soakServer) publishHTTP(ctx context.Context, client *http.Client, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+"/rpc", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.pub)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /rpc: %s: %.200s", resp.Status, reply)
	}
	return checkReply(reply)
}

// dialToken is dial with a token, sent as a Go client of the binary
// sends it: in the Authorization header.
func dialToken(ctx context.Context, addr, token string) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, "ws://"+addr+"/rpc", &websocket.DialOptions{
		CompressionMode: websocket.CompressionDisabled,
		HTTPHeader:      http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(maxMessage)
	return c, nil
}

// closeMode is how a subscriber leaves at the end of its wave.
type closeMode int

const (
	closeFrame            closeMode = iota // a close frame and the handshake
	closeDrop                              // the TCP connection, no close frame
	closeUnsubscribeFrame                  // channelUnsubscribe, then a close frame
	closeUnsubscribeDrop                   // channelUnsubscribe, then the TCP connection
	closeModes
)

// soakWave opens cfg.conns subscribers, holds them, and closes them all.
type soakWave struct {
	srv     *soakServer
	cfg     soakConfig
	n       int // the wave's number in its series
	counts  *soakCounts
	errs    *soakErrors
	subs    []*soakSub
	readers sync.WaitGroup
}

// soakSub is one subscriber.
type soakSub struct {
	c         *websocket.Conn
	channel   string
	joinLeave bool
	mode      closeMode
	closing   atomic.Bool   // set before the test closes c: read errors are expected from then on
	unsubbed  chan struct{} // closed by the reader at the unsubscribe reply
	done      chan struct{} // closed when the reader returns

	// The reader's alone once it runs:
	offset int64 // of the last publication
	gone   bool  // the unsubscribe reply came
}

// run runs the wave and returns the time spent opening and subscribing.
func (w *soakWave) run(ctx context.Context, t *testing.T) time.Duration {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(w.n), 1)) // the same plan every run
	w.subs = make([]*soakSub, w.cfg.conns)
	for i := range w.subs {
		w.subs[i] = &soakSub{
			channel:   soakChannel(i % w.cfg.channels),
			joinLeave: rng.IntN(10) == 0,
			mode:      closeMode(rng.IntN(int(closeModes))),
			unsubbed:  make(chan struct{}),
			done:      make(chan struct{}),
		}
	}
	errsBefore := w.errs.count()
	start := time.Now()
	parallel(w.cfg.conns, soakDialers, func(i int) { w.open(ctx, w.subs[i]) })
	opening := time.Since(start)
	if w.errs.count() == errsBefore {
		w.checkOpen(ctx)
	}
	sleep(ctx, w.cfg.hold)
	closing := time.Now()
	parallel(w.cfg.conns, soakClosers, func(i int) { w.close(ctx, w.subs[i]) })
	w.readers.Wait()
	t.Logf("wave %d: %d subscribed in %v (%.0f/s), closed in %v; %d publications delivered so far, %d errors",
		w.n, w.cfg.conns, opening.Round(time.Millisecond), float64(w.cfg.conns)/opening.Seconds(),
		time.Since(closing).Round(time.Millisecond), w.counts.delivered.Load(), w.errs.count())
	return opening
}

// parallel calls f(0) … f(n-1) from workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				f(i)
			}
		})
	}
	wg.Wait()
}

// checkOpen checks that the server counts every subscriber and
// WebSocket publisher as open: each has had a reply.
func (w *soakWave) checkOpen(ctx context.Context) {
	m, err := w.srv.sample(ctx)
	if err != nil {
		w.errs.add("wave %d: scrape: %v", w.n, err)
		return
	}
	if want := float64(w.cfg.conns + soakWSPublishers); m.open != want {
		w.errs.add("wave %d: the server counts %v connections open, want %v", w.n, m.open, want)
	}
}

// open connects and subscribes s, then starts its reader. When that
// fails, s.c is left nil.
func (w *soakWave) open(ctx context.Context, s *soakSub) {
	if w.errs.count() >= soakTooManyErrors {
		return
	}
	c, err := dialToken(ctx, w.srv.addr, w.srv.sub)
	if err != nil {
		w.errs.add("wave %d: dial: %v", w.n, err)
		return
	}
	if err := s.subscribe(ctx, c); err != nil {
		c.CloseNow()
		w.errs.add("wave %d: %s: %v", w.n, s.channel, err)
		return
	}
	s.c = c
	w.counts.opened.Add(1)
	w.readers.Go(func() { w.read(s) })
}

// subscribe makes c's first call, channelSubscribe, and notes where the
// channel's publications are.
func (s *soakSub) subscribe(ctx context.Context, c *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":1,"method":"channelSubscribe","params":{"channel":%q,"joinLeave":%t}}`, s.channel, s.joinLeave)
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		return err
	}
	// Nothing comes before the reply: its notifications are held back
	// until the reply is queued.
	frame, err := readFrame(ctx, c, nil)
	if err != nil {
		return err
	}
	var reply struct {
		ID     int             `json:"id"`
		Error  json.RawMessage `json:"error"`
		Result *struct {
			Offset *int64 `json:"offset"`
		} `json:"result"`
	}
	if err := json.Unmarshal(frame, &reply); err != nil || reply.ID != 1 || reply.Error != nil || reply.Result == nil || reply.Result.Offset == nil {
		return fmt.Errorf("channelSubscribe: unexpected reply %.300q", frame)
	}
	s.offset = *reply.Result.Offset
	return nil
}

// read reads s until its connection ends.
func (w *soakWave) read(s *soakSub) {
	defer close(s.done)
	buf := make([]byte, 0, 512)
	for {
		var err error
		if buf, err = readFrame(context.Background(), s.c, buf); err != nil {
			if !s.closing.Load() {
				w.errs.add("wave %d: %s: connection ended unexpectedly: %v", w.n, s.channel, err)
			}
			return
		}
		if err := w.handle(s, buf); err != nil {
			w.errs.add("wave %d: %s: %v", w.n, s.channel, err)
			s.closing.Store(true)
			s.c.CloseNow()
			return
		}
	}
}

// soakMessage is what a subscriber reads of each message.
type soakMessage struct {
	ID     *int64          `json:"id"`
	Method string          `json:"method"`
	Error  json.RawMessage `json:"error"`
	Params struct {
		Channel string `json:"channel"`
		Offset  int64  `json:"offset"`
	} `json:"params"`
}

// handle checks one message: the unsubscribe reply, or a notification of
// s's channel; publications without a gap or a repeat, and nothing at all
// after the unsubscribe reply.
func (w *soakWave) handle(s *soakSub, frame []byte) error {
	var m soakMessage
	if err := json.Unmarshal(frame, &m); err != nil {
		return fmt.Errorf("%v: %.300q", err, frame)
	}
	switch {
	case m.Error != nil || (m.ID != nil && (*m.ID != 2 || s.gone)):
		return fmt.Errorf("unexpected reply %.300q", frame)
	case m.ID != nil:
		s.gone = true
		close(s.unsubbed)
		return nil
	case s.gone:
		return fmt.Errorf("after the unsubscribe reply: %.300q", frame)
	case m.Params.Channel != s.channel:
		return fmt.Errorf("not of this channel: %.300q", frame)
	}
	switch m.Method {
	case "channelPublication":
		if m.Params.Offset != s.offset+1 {
			return fmt.Errorf("publication %d after %d", m.Params.Offset, s.offset)
		}
		s.offset = m.Params.Offset
		w.counts.delivered.Add(1)
	case "channelJoin", "channelLeave":
		if !s.joinLeave {
			return fmt.Errorf("%s without joinLeave: %.300q", m.Method, frame)
		}
		if m.Method == "channelJoin" {
			w.counts.joins.Add(1)
		} else {
			w.counts.leaves.Add(1)
		}
	default:
		return fmt.Errorf("unexpected message %.300q", frame)
	}
	return nil
}

// close ends s as its mode says.
func (w *soakWave) close(ctx context.Context, s *soakSub) {
	if s.c == nil {
		return
	}
	select {
	case <-s.done:
		return // its reader found a fault and closed it
	default:
	}
	if s.mode == closeUnsubscribeFrame || s.mode == closeUnsubscribeDrop {
		if err := s.unsubscribe(ctx); err != nil {
			w.errs.add("wave %d: %s: channelUnsubscribe: %v", w.n, s.channel, err)
		}
	}
	s.closing.Store(true)
	if s.mode == closeFrame || s.mode == closeUnsubscribeFrame {
		err := s.c.Close(websocket.StatusNormalClosure, "")
		switch {
		case errors.Is(err, io.EOF):
			w.errs.add("wave %d: %s: the server closed TCP without answering the close frame: %v", w.n, s.channel, err)
		case err != nil:
			w.errs.add("wave %d: %s: close: %v", w.n, s.channel, err)
		}
	}
	s.c.CloseNow()
}

func (s *soakSub) unsubscribe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":2,"method":"channelUnsubscribe","params":{"channel":%q}}`, s.channel)
	if err := s.c.Write(ctx, websocket.MessageText, req); err != nil {
		return err
	}
	select {
	case <-s.unsubbed:
		return nil
	case <-s.done:
		return errors.New("the connection ended before the reply")
	case <-ctx.Done():
		return errors.New("no reply in 30s")
	}
}
