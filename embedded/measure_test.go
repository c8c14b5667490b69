package embedded_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/embedded"
	"github.com/switchboard/switchboard/service"
)

// TestMeasureExpiry is a measurement, not a test: with
// SWITCHBOARD_MEASURE_CHANNELS=N it publishes once to each of N channels
// through the engine, lets MaxAge expire them all, and logs the process's
// RSS before, at the peak and after, and how long a reopened engine takes
// to answer. It asserts nothing about the numbers: they depend on the
// machine. Run it alone (-run TestMeasureExpiry -v): RSS is the
// process's.
func TestMeasureExpiry(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SWITCHBOARD_MEASURE_CHANNELS"))
	if n <= 0 {
		t.Skip("set SWITCHBOARD_MEASURE_CHANNELS to the number of channels to measure")
	}
	const maxAge = 2 * time.Second
	dir := os.Getenv("SWITCHBOARD_MEASURE_DIR") // the disk to measure on; a temporary one by default
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "measure.db")
	opts := embedded.Options{MaxAge: maxAge}
	e, err := embedded.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	base := rss(t)
	t.Logf("RSS after Open: %d MB", base>>20)

	start := time.Now()
	publishEach(t, e, n, 256)
	t.Logf("%d channels published to in %v (%.0f/s); RSS %d MB", n, time.Since(start).Round(time.Millisecond),
		float64(n)/time.Since(start).Seconds(), rss(t)>>20)

	start = time.Now()
	for left := count(t, path); left > 0; left = count(t, path) {
		time.Sleep(500 * time.Millisecond) // a measurement: the trim runs on its own ticker
	}
	t.Logf("all expired %v after the last publication; RSS %d MB", time.Since(start).Round(time.Millisecond), rss(t)>>20)
	time.Sleep(10 * time.Second)
	t.Logf("10 s later, the runtime left alone: RSS %d MB (%+d MB from Open)", rss(t)>>20, (rss(t)-base)>>20)
	runtime.GC()
	debug.FreeOSMemory()
	t.Logf("after debug.FreeOSMemory: RSS %d MB (%+d MB from Open)", rss(t)>>20, (rss(t)-base)>>20)

	list(t, e, "after expiry")
	if fi, err := os.Stat(path); err == nil {
		t.Logf("database file: %d MB (the channels table keeps a row per channel)", fi.Size()>>20)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	e, err = embedded.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Since(start)
	r := counter{member: service.Member{User: "u", ConnectionID: "c"}, n: new(atomic.Int64)}
	pos, err := e.Subscribe(context.Background(), "m.12345", r, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Publish(context.Background(), service.Publication{Channel: "m.12345", Data: json.RawMessage(`1`), Time: time.Now()}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reopened in %v; first subscribe (at %d) and publish (at %d) answered %v after Open began",
		opened.Round(time.Microsecond), pos.Offset, res.Offset, time.Since(start).Round(time.Microsecond))
	list(t, e, "after reopening")
}

// publishEach publishes once to each of n channels, from workers
// goroutines.
func publishEach(t *testing.T, e *embedded.Engine, n, workers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				p := service.Publication{Channel: "m." + strconv.FormatInt(i, 10), Data: json.RawMessage(`{"n":1}`), Publisher: "p", Time: time.Now()}
				if _, err := e.Publish(context.Background(), p, ""); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// list logs how long the first page of channelList takes.
func list(t *testing.T, e *embedded.Engine, when string) {
	start := time.Now()
	infos, more, err := e.Channels(context.Background(), "m.5", func(string) bool { return true }, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: Channels(\"m.5\", limit 1000) listed %d (more %v) in %v", when, len(infos), more, time.Since(start).Round(time.Microsecond))
}

// count counts the publications stored at path.
func count(t *testing.T, path string) int {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM publications`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rss returns the process's resident set size, in bytes.
func rss(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
