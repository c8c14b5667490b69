package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// soakEnv turns TestSoak on. An environment variable rather than a build
// tag: the file then compiles, vets and lints with the package under
// make test, which skips the soak at once.
const soakEnv = "SWITCHBOARD_SOAK"

// soakConfig is what SOAK_* environment variables may change.
type soakConfig struct {
	duration   time.Duration // of the measured waves, the warm-up not counted
	conns      int           // subscribers per wave
	channels   int
	hold       time.Duration // how long a wave keeps all its subscribers
	rate       int           // publications per second, all publishers together
	serverArgs []string      // added to switchboard serve's
}

func soakConfigFromEnv(t *testing.T) soakConfig {
	t.Helper()
	cfg := soakConfig{
		duration:   envDuration(t, "SOAK_DURATION", 5*time.Minute),
		conns:      envInt(t, "SOAK_CONNS", 10000),
		channels:   envInt(t, "SOAK_CHANNELS", 100),
		hold:       envDuration(t, "SOAK_HOLD", 5*time.Second),
		rate:       envInt(t, "SOAK_RATE", 200),
		serverArgs: strings.Fields(os.Getenv("SOAK_SERVER_ARGS")),
	}
	if cfg.conns < 1 || cfg.channels < 1 || cfg.rate < soakPublishers {
		t.Fatalf("SOAK_CONNS, SOAK_CHANNELS must be ≥ 1 and SOAK_RATE ≥ %d", soakPublishers)
	}
	return cfg
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// soakServer is the switchboard binary under soak, with tokens made from
// its data directory's secret.
type soakServer struct {
	*proc
	admin, sub, pub string
}

// startSoakServer starts switchboard serve on a random port with a fresh
// data directory and no anonymous access. startProc reads the banner only
// as far as the address, so the admin token is made with token create
// from the same secret, which serve has written by then.
func startSoakServer(t *testing.T, cfg soakConfig) *soakServer {
	t.Helper()
	bin := switchboardBinary(t)
	dir := t.TempDir()
	// warn: an info line per request would be some 300 000 lines.
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dir, "--log-level", "warn"}, cfg.serverArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), serverEnv()...)
	s := &soakServer{proc: startProc(t, "switchboard", cmd)}
	token := func(args ...string) string {
		out, err := exec.Command(bin, append([]string{"token", "create", "--data", dir, "--ttl", "24h"}, args...)...).Output()
		if err != nil {
			t.Fatalf("token create %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	s.admin = token("--sub", "soak-admin", "--admin")
	s.sub = token("--sub", "soak-sub", "--subscribe", "soak.>")
	s.pub = token("--sub", "soak-pub", "--publish", "soak.>")
	return s
}

// soakSample is one scrape of the server's /metrics.
type soakSample struct {
	goroutines, heapInuse, heapAlloc, heapObjects, rss, open, gcs, maxFDs float64
	// switchboard_disconnects_total by reason, since the start
	disconnects map[string]float64
}

var soakMetricNames = []string{
	"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes",
	"go_memstats_heap_objects", "process_resident_memory_bytes",
	"switchboard_connections_open", "go_gc_duration_seconds_count", "process_max_fds",
}

// soakScraper opens a connection per scrape: an idle keep-alive
// connection would be a goroutine in the server, counted or not
// depending on when it last scraped. Uncompressed, so that the heap
// figures hold no gzip writer of the scrape's (some 800 KB of flate
// state).
var soakScraper = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true},
	Timeout:   30 * time.Second,
}

// sample scrapes /metrics with the admin token (/metrics is to require
// one; until then the header is ignored).
func (s *soakServer) sample(ctx context.Context) (soakSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/metrics", nil)
	if err != nil {
		return soakSample{}, err
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	resp, err := soakScraper.Do(req)
	if err != nil {
		return soakSample{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	if err != nil {
		return soakSample{}, err
	}
	v, err := metricValues(string(body), soakMetricNames...)
	if err != nil {
		return soakSample{}, err
	}
	return soakSample{
		goroutines: v["go_goroutines"], heapInuse: v["go_memstats_heap_inuse_bytes"],
		heapAlloc: v["go_memstats_heap_alloc_bytes"], heapObjects: v["go_memstats_heap_objects"],
		rss: v["process_resident_memory_bytes"], open: v["switchboard_connections_open"],
		gcs: v["go_gc_duration_seconds_count"], maxFDs: v["process_max_fds"],
		disconnects: disconnectReasons(string(body)),
	}, nil
}

// disconnectReasons picks switchboard_disconnects_total{reason="R"} N out
// of a metrics page.
func disconnectReasons(page string) map[string]float64 {
	const prefix = `switchboard_disconnects_total{reason="`
	got := map[string]float64{}
	for line := range strings.SplitSeq(page, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		reason, value, ok := strings.Cut(rest, `"} `)
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil {
			got[reason] = v
		}
	}
	return got
}

func (s *soakServer) mustSample(ctx context.Context, t *testing.T) soakSample {
	t.Helper()
	m, err := s.sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkFDLimits fails early when either process cannot hold a wave's
// sockets. Go raises this process's soft limit to the hard one; the
// server gets the soft limit it was started with.
func checkFDLimits(ctx context.Context, t *testing.T, s *soakServer, cfg soakConfig) {
	t.Helper()
	need := uint64(cfg.conns + 500)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	server := uint64(s.mustSample(ctx, t).maxFDs)
	if lim.Cur < need || server < need {
		t.Fatalf("open-file limits: test %d, server %d; a wave of %d needs %d each (ulimit -n, or lower SOAK_CONNS)", lim.Cur, server, cfg.conns, need)
	}
}

// settleTimeout bounds each wait in settle. Left idle, the server
// collects garbage at least every 2 minutes (the runtime's forced GC)
// whatever the scrapes do.
const settleTimeout = 3 * time.Minute

// settle waits for the server to be idle and collected, then returns
// what it holds: no connection open, the goroutine count unchanged over
// 5 samples a second apart, and two garbage collections since (a
// sync.Pool keeps what it holds for one cycle more). The figure is the
// sample with the least heap in use of three, each taken a second (for
// the sweeper) after one more collection. The server's GC cannot be
// called from here, but every scrape allocates some 100 KB in it, so
// scraping until its count of cycles moves drives them.
func (s *soakServer) settle(ctx context.Context, t *testing.T, label string) soakSample {
	t.Helper()
	start := time.Now()
	s.awaitClosed(ctx, t)
	s.awaitStableGoroutines(ctx, t)
	s.driveGC(ctx, t, 2)
	var best soakSample
	for i := range 3 {
		s.driveGC(ctx, t, 1)
		sleep(ctx, time.Second)
		if m := s.mustSample(ctx, t); i == 0 || m.heapInuse < best.heapInuse {
			best = m
		}
	}
	t.Logf("%s, settled in %v: %v", label, time.Since(start).Round(time.Second), best)
	return best
}

func (s *soakServer) awaitClosed(ctx context.Context, t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	for {
		m := s.mustSample(ctx, t)
		if m.open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%v connections still open %v after the last was closed", m.open, settleTimeout)
			return
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

func (s *soakServer) awaitStableGoroutines(ctx context.Context, t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	last, same := -1.0, 0
	for same < 5 {
		m := s.mustSample(ctx, t)
		if m.goroutines == last {
			same++
		} else {
			last, same = m.goroutines, 1
		}
		if time.Now().After(deadline) {
			t.Logf("goroutines still changing after %v: %v", settleTimeout, m.goroutines)
			return
		}
		sleep(ctx, time.Second)
	}
}

// driveGC scrapes until the server has finished n more collections.
func (s *soakServer) driveGC(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	want := s.mustSample(ctx, t).gcs + float64(n)
	for s.mustSample(ctx, t).gcs < want {
		if time.Now().After(deadline) {
			t.Fatalf("the server finished fewer than %d collections in %v", n, settleTimeout)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (m soakSample) String() string {
	return fmt.Sprintf("goroutines %v, heap in use %s (allocated %s, %v objects), RSS %s, connections %v",
		m.goroutines, mib(m.heapInuse), mib(m.heapAlloc), m.heapObjects, mib(m.rss), m.open)
}

func mib(b float64) string { return fmt.Sprintf("%.2f MiB", b/(1<<20)) }

// goroutineSlack is how many goroutines the server may end with above
// its baseline. Every sample counts the scrape's own connection; what
// may differ is a previous scrape's connection not yet gone and the
// finalizer goroutine, counted while it runs finalizers. A leak over the
// waves would be more: each wave closes 10 000 connections.
const goroutineSlack = 5

// heapSlack is how far above its baseline the heap in use may end.
const heapSlack = 0.10

// TestSoak opens, subscribes and closes waves of connections to the real
// binary for minutes with publishers running, then checks that the
// server's goroutines and heap come back to what they were. See
// BENCHMARKS.md ("Soak") for what it does and what it measured.
func TestSoak(t *testing.T) {
	if os.Getenv(soakEnv) == "" {
		t.Skipf("takes minutes; run make soak, or set %s=1", soakEnv)
	}
	cfg := soakConfigFromEnv(t)
	ctx := t.Context()
	srv := startSoakServer(t, cfg)
	checkFDLimits(ctx, t, srv, cfg)
	errs := &soakErrors{}

	cold := srv.settle(ctx, t, "cold")
	// The baseline is taken after a first wave, which makes what a server
	// that has served keeps for good: channels, metric series, caches.
	warm := srv.runWaves(ctx, t, cfg, errs, 1, 0)
	base := srv.settle(ctx, t, "baseline")
	run := srv.runWaves(ctx, t, cfg, errs, 0, cfg.duration)
	final := srv.settle(ctx, t, "final")
	if !returned(base, final) {
		// Anything that ends on a timer (HTTP idle connections, write
		// timeouts) has ended by then.
		t.Logf("not back to the baseline; settling again in 2 minutes")
		sleep(ctx, 2*time.Minute)
		final = srv.settle(ctx, t, "final, 2 minutes later")
	}
	reportSoak(t, cfg, cold, base, final, warm, run)
	if n := errs.count(); n > 0 {
		t.Errorf("%d errors during the waves; the first:\n%s", n, errs)
	}
	// Every close is the test's own, a TCP drop with a notification on
	// its way included (the server's write then fails with a reset, which
	// it counts as the client's); any other reason is the server closing
	// a connection.
	for reason, n := range final.disconnects {
		if reason != "client" && n > 0 {
			t.Errorf("the server closed %v connections for %s", n, reason)
		}
	}
	if final.open != 0 {
		t.Errorf("%v connections open at the end", final.open)
	}
	if final.goroutines > base.goroutines+goroutineSlack {
		t.Errorf("goroutines: %v at the end, %v at the baseline (+%d allowed)", final.goroutines, base.goroutines, goroutineSlack)
	}
	if final.heapInuse > base.heapInuse*(1+heapSlack) {
		t.Errorf("heap in use: %s at the end, %s at the baseline (+%.0f%% allowed)", mib(final.heapInuse), mib(base.heapInuse), 100*heapSlack)
	}
}

func returned(base, final soakSample) bool {
	return final.goroutines <= base.goroutines+goroutineSlack && final.heapInuse <= base.heapInuse*(1+heapSlack)
}

// reportSoak logs the figures BENCHMARKS.md records.
func reportSoak(t *testing.T, cfg soakConfig, cold, base, final soakSample, warm, run *soakRun) {
	t.Helper()
	c := &run.counts
	t.Logf("soak: %d waves of %d connections on %d channels (after 1 warm-up wave), %v of waves, %v held, %d publications/s asked, server args %q",
		run.waves, cfg.conns, cfg.channels, run.elapsed.Round(time.Second), cfg.hold, cfg.rate, cfg.serverArgs)
	t.Logf("connections: %d opened and subscribed, %.0f/s while opening, %.0f/s over the waves",
		c.opened.Load(), float64(c.opened.Load())/run.opening.Seconds(), float64(c.opened.Load())/run.elapsed.Seconds())
	t.Logf("publications: %d acknowledged (%.0f/s), %d delivered; %d joins and %d leaves delivered",
		c.published.Load(), float64(c.published.Load())/run.elapsed.Seconds(), c.delivered.Load(), c.joins.Load(), c.leaves.Load())
	t.Logf("peak during the waves: goroutines %v, heap in use %s, RSS %s, connections %v (warm-up wave: %v, %s, %s)",
		run.peak.goroutines, mib(run.peak.heapInuse), mib(run.peak.rss), run.peak.open,
		warm.peak.goroutines, mib(warm.peak.heapInuse), mib(warm.peak.rss))
	t.Logf("goroutines: cold %v, baseline %v, final %v", cold.goroutines, base.goroutines, final.goroutines)
	t.Logf("heap in use: cold %s, baseline %s, final %s (%+.1f%%); allocated: %s, %s, %s; objects: %v, %v, %v",
		mib(cold.heapInuse), mib(base.heapInuse), mib(final.heapInuse), 100*(final.heapInuse/base.heapInuse-1),
		mib(cold.heapAlloc), mib(base.heapAlloc), mib(final.heapAlloc), cold.heapObjects, base.heapObjects, final.heapObjects)
	t.Logf("RSS: cold %s, baseline %s, final %s", mib(cold.rss), mib(base.rss), mib(final.rss))
	t.Logf("disconnects by reason, warm-up included: %v", final.disconnects)
	// Other work on the machine slows the waves down; it does not change
	// what the server should come back to.
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("load average at the end: %s", strings.TrimSpace(string(load)))
	}
}
