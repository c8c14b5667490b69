// Package redistest starts real redis-server processes for tests, each on
// its own loopback port with its own data directory, so that a test can
// kill one with SIGKILL and start it again from what it wrote. Tests that
// need Redis skip when redis-server is not installed, unless
// SWITCHBOARD_REQUIRE_REDIS is set (as .ci/run sets it), where they fail.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	t        testing.TB
	Dir      string // its data directory
	Port     int
	TLS      *TLS // with Options.TLS
	args     []string
	password string
	cmd      *exec.Cmd
	done     chan struct{}
}

// Options say how a Server runs.
type Options struct {
	// AppendFsyncAlways turns on the append-only file with an fsync
	// before each reply: what an acknowledged publication needs to
	// survive a SIGKILL of Redis.
	AppendFsyncAlways bool
	// Cluster starts the server in cluster mode, to be joined by
	// StartCluster.
	Cluster bool
	// Port is the port to listen on; 0 picks a free one.
	Port int
	// ReplicaOf, host:port, starts the server as a replica of that one.
	ReplicaOf string
	// TLS adds a TLS port (Server.TLS) with a certificate made for it.
	TLS bool
	// Password is required of clients (requirepass); Command then
	// cannot be used.
	Password string
}

// binary finds redis-server, skipping (or failing, when Redis is
// required) the test without it.
func binary(t testing.TB) string {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_REDIS") != "" {
			t.Fatalf("redis-server is required (SWITCHBOARD_REQUIRE_REDIS) but not installed: %v", err)
		}
		t.Skip("redis-server is not installed; apt-get install redis-server")
	}
	return path
}

// Start starts a redis-server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := binary(t)
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	s := &Server{t: t, Dir: t.TempDir(), Port: port}
	s.args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"}
	if opts.AppendFsyncAlways {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	}
	if opts.TLS {
		s.withTLS(t)
	}
	if opts.Password != "" {
		s.password = opts.Password
		s.args = append(s.args, "--requirepass", opts.Password)
	}
	if opts.ReplicaOf != "" {
		host, port, _ := strings.Cut(opts.ReplicaOf, ":")
		s.args = append(s.args, "--replicaof", host, port)
	}
	if opts.Cluster {
		// The bus port defaults to port+10000, which for a free port from
		// the ephemeral range is often past 65535 or taken: pick one too.
		bus := FreePort(t)
		for bus == port {
			bus = FreePort(t)
		}
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.Dir, "nodes.conf"),
			"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(bus))
	}
	s.args = append([]string{bin}, s.args...)
	s.start()
	t.Cleanup(func() { s.Kill() })
	return s
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	log, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		s.t.Fatalf("start redis-server: %v", err)
	}
	log.Close()
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if reply, err := s.Command("PING"); err == nil && (reply == "+PONG" || s.password != "" && strings.HasPrefix(reply, "-NOAUTH")) {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("redis-server exited at start; its log:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not answer within 10s; its log:\n%s", s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the process id of the running server, for measuring its CPU.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port and data directory,
// after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Wipe deletes what the server keeps on disk, so that a Restart starts
// it empty, as a Redis that lost its data.
func (s *Server) Wipe() {
	s.t.Helper()
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "redis.log" && e.Name() != "nodes.conf" {
			os.RemoveAll(filepath.Join(s.Dir, e.Name()))
		}
	}
}

// Log is what the server has written to its log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

// Command sends one command in Redis's inline form and returns the first
// line of the reply, such as "+OK" or ":3"; enough for tests to set
// things up without a client of their own.
func (s *Server) Command(args ...string) (string, error) {
	return command(s.Addr(), args...)
}

// Text sends a command whose reply is one bulk string, such as INFO or
// CLUSTER NODES, and returns it whole.
func (s *Server) Text(args ...string) (string, error) {
	return bulk(s.Addr(), args...)
}

func command(addr string, args ...string) (string, error) {
	return roundTrip(addr, args, func(r *bufio.Reader) (string, error) {
		line, err := r.ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err
	})
}

// roundTrip sends one command and reads its reply with read.
func roundTrip(addr string, args []string, read func(*bufio.Reader) (string, error)) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return read(bufio.NewReader(conn))
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Cluster is a Redis Cluster of three masters on loopback.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts three cluster-mode servers and joins them with
// redis-cli --cluster create, waiting until the cluster is ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	binary(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli: %v", err)
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range 3 {
		n := Start(t, Options{Cluster: true})
		c.Nodes = append(c.Nodes, n)
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(t)
	return c
}

// WaitOK waits until every node reports the cluster ok and knows the
// others (PUBLISH reaches only the nodes a node knows): after
// StartCluster, or after a node's Restart. A master that was down longer
// than the node timeout is taken back only after twice that.
func (c *Cluster) WaitOK(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := bulk(n.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok on %s within 20s: %v %q", n.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// URL is a redis:// URL naming every node, for go-redis's
// ParseClusterURL.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr()
	for i, n := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + n.Addr()
	}
	return u
}

// bulk sends a command and reads a bulk string reply whole.
func bulk(addr string, args ...string) (string, error) {
	return roundTrip(addr, args, func(r *bufio.Reader) (string, error) {
		head, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
		if err != nil || n < 0 {
			return "", fmt.Errorf("reply %q", head)
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	})
}

// Owner returns the index in Nodes of the master that serves key's slot.
func (c *Cluster) Owner(t testing.TB, key string) int {
	t.Helper()
	reply, err := command(c.Nodes[0].Addr(), "CLUSTER", "KEYSLOT", key)
	if err != nil || !strings.HasPrefix(reply, ":") {
		t.Fatalf("CLUSTER KEYSLOT %s: %q %v", key, reply, err)
	}
	slot, _ := strconv.Atoi(reply[1:])
	for i, n := range c.Nodes {
		if n.serves(t, slot) {
			return i
		}
	}
	t.Fatalf("no node serves slot %d of %s", slot, key)
	return -1
}

// serves reports whether the node's own line of CLUSTER NODES lists
// slot, in ranges such as "0-5460" or single slots.
func (s *Server) serves(t testing.TB, slot int) bool {
	t.Helper()
	nodes, err := bulk(s.Addr(), "CLUSTER", "NODES")
	if err != nil {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "myself") {
			continue
		}
		for _, r := range f[8:] {
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				return true
			}
		}
	}
	return false
}

// Spread returns names prefix.0, prefix.1, … chosen so that each master
// serves perNode of them: as keys, or as the hash tag {name} of keys.
func (c *Cluster) Spread(t testing.TB, prefix string, perNode int) []string {
	t.Helper()
	count := make([]int, len(c.Nodes))
	var names []string
	for i := 0; len(names) < perNode*len(c.Nodes); i++ {
		if i == 1000 {
			t.Fatalf("1000 names and still not %d on each master: %v", perNode, count)
		}
		name := prefix + "." + strconv.Itoa(i)
		if n := c.Owner(t, name); count[n] < perNode {
			count[n]++
			names = append(names, name)
		}
	}
	return names
}
