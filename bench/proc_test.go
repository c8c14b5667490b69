package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// Roles a re-executed test binary can take (see roleEnv).
const (
	roleEcho   = "echo"
	roleFanout = "fanout"
)

// runRole serves h on a random loopback port, announces the address on
// stdout the way the switchboard binary does, and exits when its stdin
// reaches EOF, that is when the benchmark process that started it goes
// away, however it ends.
func runRole(h http.Handler) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Printf("%s listening on http://%s\n", os.Getenv(roleEnv), ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	err = (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	fmt.Fprintln(os.Stderr, "bench:", err)
	return 1
}

// proc is a server running as a subprocess of the benchmark.
type proc struct {
	name    string
	pid     int
	addr    string // 127.0.0.1:PORT
	metrics string // where it serves /metrics, when elsewhere than addr
	logs    string // the file its stderr goes to
}

// metricsAddr is where p serves /metrics (or, for the echo role, /memstats).
func (p *proc) metricsAddr() string {
	if p.metrics != "" {
		return p.metrics
	}
	return p.addr
}

var (
	listening   = regexp.MustCompile(`listening on http://(127\.0\.0\.1:\d+)`)
	metricsLine = regexp.MustCompile(`metrics: http://(127\.0\.0\.1:\d+)/metrics`)
)

// startProc starts cmd, waits for it to announce its address and kills it
// when tb ends.
func startProc(tb testing.TB, name string, cmd *exec.Cmd) *proc {
	tb.Helper()
	logs, err := os.CreateTemp(tb.TempDir(), name+"-*.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer logs.Close()
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	// The roles exit when stdin closes; the switchboard binary ignores it.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		<-exited
		reportLogProblems(tb, name, logs.Name())
	})

	banner := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if listening.MatchString(sc.Text()) {
				banner <- sc.Text()
				break
			}
		}
		io.Copy(io.Discard, stdout) // keep the pipe drained until exit
	}()
	select {
	case line := <-banner:
		p := &proc{name: name, pid: cmd.Process.Pid, addr: listening.FindStringSubmatch(line)[1], logs: logs.Name()}
		if m := metricsLine.FindStringSubmatch(line); m != nil {
			p.metrics = m[1]
		}
		return p
	case <-exited:
		tb.Fatalf("%s exited before listening; its log:\n%s", name, tail(logs.Name()))
	case <-time.After(15 * time.Second):
		tb.Fatalf("%s did not announce its address within 15s; its log:\n%s", name, tail(logs.Name()))
	}
	return nil
}

// reportLogProblems logs the warnings, errors and panics a server wrote
// while it ran, so that a benchmark does not hide a misbehaving server.
func reportLogProblems(tb testing.TB, name, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var problems []string
	crashed := false
	for line := range strings.SplitSeq(string(b), "\n") {
		died := strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:")
		if died || strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			problems = append(problems, line)
		}
		crashed = crashed || died
	}
	if len(problems) > 0 {
		tb.Logf("%s logged %d problems; the first: %s", name, len(problems), strings.Join(problems[:min(5, len(problems))], "\n"))
	}
	if crashed { // the stack is what says where
		tb.Logf("%s crashed; the end of its log:\n%s", name, tail(path))
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// startSwitchboard runs the real binary with anonymous access, as
// documented: switchboard serve --listen 127.0.0.1:0 --data DIR --anonymous,
// with its metrics on an address of their own.
func startSwitchboard(tb testing.TB, env ...string) *proc {
	tb.Helper()
	bin := switchboardBinary(tb)
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", tb.TempDir(), "--anonymous",
		"--metrics-listen", "127.0.0.1:0") // open to anyone there, as a scraper wants
	cmd.Env = append(append(os.Environ(), serverEnv()...), env...)
	return startProc(tb, "switchboard", cmd)
}

// startRole re-executes the test binary in role.
func startRole(tb testing.TB, role string, env ...string) *proc {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(append(append(os.Environ(), roleEnv+"="+role), serverEnv()...), env...)
	return startProc(tb, role, cmd)
}

// serverEnvVar holds extra environment variables, separated by spaces,
// for the server processes only, e.g. BENCH_SERVER_ENV=GOMAXPROCS=1 to
// see what the servers do on one core while the client keeps two.
const serverEnvVar = "BENCH_SERVER_ENV"

func serverEnv() []string { return strings.Fields(os.Getenv(serverEnvVar)) }

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// switchboardBinary builds ./cmd/switchboard once per benchmark run, from
// the module that holds this package.
func switchboardBinary(tb testing.TB) string {
	tb.Helper()
	built.once.Do(func() {
		gomod, err := goMod()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, err = os.MkdirTemp("", "switchboard-bench-"); err != nil {
			built.err = err
			return
		}
		bin := filepath.Join(built.dir, "switchboard")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/switchboard")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/switchboard: %v\n%s", err, out)
			return
		}
		built.bin = bin
	})
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.bin
}

// goMod returns the path of the module's go.mod: the one go test runs
// in, or, for a test binary run from elsewhere, the one holding this
// source file.
func goMod() (string, error) {
	dirs := []string{""}
	if _, file, _, ok := runtime.Caller(0); ok {
		dirs = append(dirs, filepath.Dir(file))
	}
	for _, dir := range dirs {
		cmd := exec.Command("go", "env", "GOMOD")
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go env GOMOD: %w", err)
		}
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return gomod, nil
		}
	}
	return "", errors.New("go env GOMOD: not inside a module; run the benchmarks from the switchboard module")
}

func removeBuilt() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// processCPU returns the CPU time (user+system) that process pid has used
// so far, all its threads together, those that have exited included. It
// reads the process's CPU-time clock (clock_getcpuclockid(3): the clock
// id for pid is (^pid)<<3 | CPUCLOCK_SCHED), which is the scheduler's
// nanosecond count; /proc/PID/stat reports the same total, but rounded to
// 10 ms clock ticks. procStatCPU is the fallback.
func processCPU(pid int) (time.Duration, error) {
	const cpuclockSched = 2
	clock := int32(^pid)<<3 | cpuclockSched
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(clock), uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return procStatCPU(pid)
	}
	return time.Duration(ts.Nano()), nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStatCPU returns utime+stime of process pid from /proc/PID/stat.
func procStatCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses; fields resume
	// after the last ')'. utime and stime are fields 14 and 15, so the
	// 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// vmRSS returns the resident set size of process pid in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// contextSwitches returns the context switches, voluntary and not, of
// the live threads of process pid. Unlike CPU time, the count does not
// depend on how fast the machine is at the moment: it tells how often
// the server's threads go to sleep and are woken per operation.
func contextSwitches(pid int) (int64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue // the thread has exited
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			name, value, ok := strings.Cut(line, ":")
			if ok && (name == "voluntary_ctxt_switches" || name == "nonvoluntary_ctxt_switches") {
				v, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s/%s/status: %w", dir, t.Name(), err)
				}
				n += v
			}
		}
	}
	return n, nil
}

// ioCalls returns how many read and write system calls (read, readv,
// write, writev…; not sendmsg and the like) process pid has made, from
// /proc/PID/io.
func ioCalls(pid int) (reads, writes int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, 0, err
	}
	found := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "syscr" && name != "syscw") {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/io: %w", pid, err)
		}
		if name == "syscr" {
			reads = v
		} else {
			writes = v
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/proc/%d/io: no syscr or syscw", pid)
	}
	return reads, writes, nil
}

// cpuMeter measures the CPU time a server process and this (client)
// process spend between start and stop, and the server's context
// switches and read and write system calls.
type cpuMeter struct {
	server          *proc
	srv0, cli0      time.Duration
	stat0           time.Duration
	ctxsw0          int64
	reads0, writes0 int64
	srvCPU, cliCPU  time.Duration
}

func startCPU(tb testing.TB, server *proc) *cpuMeter {
	tb.Helper()
	m := &cpuMeter{server: server}
	var err error
	if m.ctxsw0, err = contextSwitches(server.pid); err != nil {
		tb.Fatal(err)
	}
	if m.reads0, m.writes0, err = ioCalls(server.pid); err != nil {
		tb.Fatal(err)
	}
	m.srv0, m.cli0, m.stat0 = m.read(tb)
	return m
}

func (m *cpuMeter) read(tb testing.TB) (srv, cli, stat time.Duration) {
	tb.Helper()
	var err1, err2, err3 error
	srv, err1 = processCPU(m.server.pid)
	cli, err2 = processCPU(os.Getpid())
	stat, err3 = procStatCPU(m.server.pid)
	if err := errors.Join(err1, err2, err3); err != nil {
		tb.Fatal(err)
	}
	return srv, cli, stat
}

// stop ends the measurement and reports the server's and the client's
// CPU time per unit ("op", "delivery"…) over n units.
func (m *cpuMeter) stop(tb testing.TB, n int, unit string) {
	tb.Helper()
	srv, cli, stat := m.read(tb)
	m.srvCPU, m.cliCPU = srv-m.srv0, cli-m.cli0
	ctxsw, err := contextSwitches(m.server.pid)
	if err != nil {
		tb.Fatal(err)
	}
	reads, writes, err := ioCalls(m.server.pid)
	if err != nil {
		tb.Fatal(err)
	}
	// Cross-check the clock against /proc/PID/stat's utime+stime, which
	// may lag by a tick at either end.
	if statCPU := stat - m.stat0; absDur(statCPU-m.srvCPU) > 3*time.Second/clockTicks+m.srvCPU/50 {
		tb.Logf("server CPU clock says %v, /proc/%d/stat says %v", m.srvCPU, m.server.pid, statCPU)
	}
	if b, ok := tb.(*testing.B); ok && n > 0 {
		b.ReportMetric(float64(m.srvCPU.Nanoseconds())/float64(n), "server-ns/"+unit)
		b.ReportMetric(float64(m.cliCPU.Nanoseconds())/float64(n), "client-ns/"+unit)
		b.ReportMetric(float64(ctxsw-m.ctxsw0)/float64(n), "server-ctxsw/"+unit)
		b.ReportMetric(float64(reads-m.reads0)/float64(n), "server-reads/"+unit)
		b.ReportMetric(float64(writes-m.writes0)/float64(n), "server-writes/"+unit)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// scrape fetches a text page (such as /metrics) from a server.
func scrape(ctx context.Context, addr, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(body), err
}

// metricValues picks the named unlabelled samples out of a Prometheus
// text page.
func metricValues(page string, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string]float64{}
	for line := range strings.SplitSeq(page, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		got[name] = v
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("metric %s missing", n)
		}
	}
	return got, nil
}
