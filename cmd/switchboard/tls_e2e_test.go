package main

// Tests of HTTPS and WSS: the real server with --tls-cert and --tls-key,
// real clients, and certificates from a CA made by the test.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string         // its certificate, PEM: what --cacert takes
	pool *x509.CertPool // the same, for Go clients
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{t: t, key: newKey(t), file: filepath.Join(t.TempDir(), "ca.pem"), pool: x509.NewCertPool()}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Switchboard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if ca.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	ca.pool.AddCert(ca.cert)
	replaceFile(t, ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue writes a certificate for 127.0.0.1 and localhost with serial,
// signed by ca, and its key into dir as cert.pem and key.pem, each
// replacing the file before it by rename, as renewal tools do.
func (ca *testCA) issue(dir string, serial int64) (certFile, keyFile string) {
	ca.t.Helper()
	key := newKey(ca.t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(ca.t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	replaceFile(ca.t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return certFile, keyFile
}

// replaceFile writes b into a new file renamed over path.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// client is an HTTP client that trusts ca alone.
func (ca *testCA) client() *http.Client {
	c := &http.Client{Timeout: servertest.IOTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	ca.t.Cleanup(c.CloseIdleConnections)
	return c
}

// startTLSApp starts the server with a certificate of serial 1 from ca,
// in dir; ta.client trusts ca.
func startTLSApp(t *testing.T, ca *testCA, dir string) *servertest.Server {
	t.Helper()
	certFile, keyFile := ca.issue(dir, 1)
	ta := servertest.Start(t, server.Config{TLSCert: certFile, TLSKey: keyFile})
	ta.HTTP = ca.client()
	return ta
}

// handshake makes a TLS handshake with addr and returns its state.
func handshake(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: servertest.IOTimeout}, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

// servedSerial is the serial of the certificate addr presents now.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	st, err := handshake(t, addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	return st.PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSCallsAndSubscriptions(t *testing.T) {
	ca := newTestCA(t)
	ta := startTLSApp(t, ca, t.TempDir())
	tok := ta.Token("alice", service.Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>"}}, time.Hour)

	var ping servertest.PingResult
	r, _ := ta.Call(servertest.Bearer(tok), "serverPing", nil)
	r.Decode(t, &ping)
	if ping.Time.IsZero() {
		t.Errorf("serverPing over HTTPS: no time")
	}

	ctx, cancel := context.WithTimeout(context.Background(), servertest.IOTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ta.WSURL(), &websocket.DialOptions{HTTPClient: ta.HTTP, HTTPHeader: servertest.Bearer(tok)})
	if err != nil {
		t.Fatalf("dial %s: %v", ta.WSURL(), err)
	}
	defer ws.CloseNow()
	var sub servertest.SubscribeResult
	servertest.WSCall(t, ws, "channelSubscribe", map[string]any{"channel": "chat.lobby"}).Decode(t, &sub)
	r, _ = ta.Call(servertest.Bearer(tok), "channelPublish", map[string]any{"channel": "chat.lobby", "data": map[string]string{"text": "over TLS"}})
	var pub servertest.PublishResult
	r.Decode(t, &pub)

	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("reading the publication: %v", err)
	}
	var n struct {
		Method string                     `json:"method"`
		Params servertest.PublicationNote `json:"params"`
	}
	if err := json.Unmarshal(b, &n); err != nil || n.Method != "channelPublication" ||
		n.Params.Offset != pub.Offset || string(n.Params.Data) != `{"text":"over TLS"}` {
		t.Errorf("over wss, got %s (%v); want the publication at offset %d", b, err, pub.Offset)
	}
}

func TestTLSRefusesAnUntrustingClient(t *testing.T) {
	ca := newTestCA(t)
	ta := startTLSApp(t, ca, t.TempDir())
	plain := &http.Client{Timeout: servertest.IOTimeout} // the system's roots
	t.Cleanup(plain.CloseIdleConnections)
	var unknown x509.UnknownAuthorityError
	if _, err := plain.Get(ta.BaseURL() + "/healthz"); !errors.As(err, &unknown) {
		t.Errorf("HTTPS without trusting the CA: %v, want an unknown authority", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), servertest.IOTimeout)
	defer cancel()
	if _, _, err := websocket.Dial(ctx, ta.WSURL(), &websocket.DialOptions{HTTPClient: plain}); !errors.As(err, &unknown) {
		t.Errorf("WSS without trusting the CA: %v, want an unknown authority", err)
	}
}

// Only HTTP/1.1 is offered, because WebSockets need it; and no TLS older
// than 1.2.
func TestTLSSpeaksHTTP1AndTLS12Up(t *testing.T) {
	ca := newTestCA(t)
	ta := startTLSApp(t, ca, t.TempDir())
	st, err := handshake(t, ta.Addr, &tls.Config{RootCAs: ca.pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN with h2 offered first negotiated %q, want http/1.1", st.NegotiatedProtocol)
	}
	// The server's own order would pick http/1.1 even with h2 enabled; a
	// client offering h2 alone shows whether it is.
	if st, err := handshake(t, ta.Addr, &tls.Config{RootCAs: ca.pool, NextProtos: []string{"h2"}}); err == nil && st.NegotiatedProtocol == "h2" {
		t.Errorf("a client offering h2 alone negotiated it")
	}

	h2 := &http.Client{Timeout: servertest.IOTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true,
	}}
	t.Cleanup(h2.CloseIdleConnections)
	resp, err := h2.Get(ta.BaseURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusOK {
		t.Errorf("a client that wants HTTP/2 got %s %s, want HTTP/1.1 200", resp.Proto, resp.Status)
	}

	if _, err := handshake(t, ta.Addr, &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Errorf("a TLS 1.1 handshake succeeded")
	}
}

// A certificate replaced on disk is served from the next handshake that
// looks; a broken one is not, and the one before stays in use.
func TestTLSReloadsTheCertificate(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	ta := startTLSApp(t, ca, dir)
	if s := servedSerial(t, ta.Addr, ca.pool); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}

	certFile, _ := ca.issue(dir, 2)
	servertest.Eventually(t, "the renewed certificate", func() bool { return servedSerial(t, ta.Addr, ca.pool) == 2 })

	const warning = "TLS certificate not reloaded"
	warned := strings.Count(ta.Logs.String(), warning)
	if err := os.WriteFile(certFile, []byte("half a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "a warning about the broken certificate", func() bool {
		if s := servedSerial(t, ta.Addr, ca.pool); s != 2 { // the check is made on handshakes
			t.Fatalf("after a broken renewal, serving serial %d, want 2 still", s)
		}
		return strings.Count(ta.Logs.String(), warning) > warned
	})
	if s := servedSerial(t, ta.Addr, ca.pool); s != 2 {
		t.Errorf("after the warning, serving serial %d, want 2 still", s)
	}
	r, _ := ta.Call(servertest.Bearer(ta.Token("bob", service.Permissions{}, time.Hour)), "serverPing", nil)
	r.Decode(t, &servertest.PingResult{})

	ca.issue(dir, 3)
	servertest.Eventually(t, "the mended certificate", func() bool { return servedSerial(t, ta.Addr, ca.pool) == 3 })
}

// The Go client trusts Options.RootCAs for its calls and for the
// WebSocket its subscriptions share.
func TestTLSGoClient(t *testing.T) {
	ca := newTestCA(t)
	ta := startTLSApp(t, ca, t.TempDir())
	tok := ta.Token("carol", service.Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>"}}, time.Hour)
	ctx := sdkContext(t, servertest.WaitTimeout)
	c := sdkClient(t, "wss://"+ta.Addr, tok, client.Options{RootCAs: ca.pool})
	sub, err := c.Subscribe(ctx, "chat.go", nil)
	if err != nil {
		t.Fatalf("Subscribe over wss: %v", err)
	}
	pub, err := c.Publish(ctx, "chat.go", json.RawMessage(`{"n":1}`), "")
	if err != nil {
		t.Fatalf("Publish over https: %v", err)
	}
	if p := sdkNext(t, ctx, sub); p.Offset != pub.Offset {
		t.Errorf("got offset %d, want %d", p.Offset, pub.Offset)
	}
	if _, err := client.New(ta.WSURL(), client.Options{RootCAs: ca.pool, HTTPClient: ta.HTTP}); err == nil {
		t.Errorf("client.New took both RootCAs and HTTPClient")
	}
}

func TestTLSCommandLineClient(t *testing.T) {
	ca := newTestCA(t)
	ta := startTLSApp(t, ca, t.TempDir())
	tok := ta.Token("admin", service.Permissions{Admin: true}, time.Hour)
	url := "https://" + ta.Addr

	out := mustRun(t, nil, "", "call", "serverPing", "--url", url, "--cacert", ca.file, "--token", tok)
	if !strings.Contains(out, `"time"`) {
		t.Errorf("call serverPing printed %q", out)
	}
	r := runCLI(t, nil, "", "call", "serverPing", "--url", url, "--token", tok)
	if r.code != exitConnect || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("without --cacert: exit %d, stderr %q; want %d, about the certificate", r.code, r.stderr, exitConnect)
	}

	// From the environment, and over wss: subscribe uses a WebSocket.
	env := []string{"SWITCHBOARD_URL=wss://" + ta.Addr, "SWITCHBOARD_TOKEN=" + tok, "SWITCHBOARD_CACERT=" + ca.file}
	mustRun(t, env, "", "publish", "builds.web", `{"status":"passed"}`)
	out = mustRun(t, env, "", "subscribe", "builds.web", "--since", "0", "--count", "1")
	if ps := publications(t, out); len(ps) != 1 || string(ps[0].Data) != `{"status":"passed"}` {
		t.Errorf("subscribe over wss printed %q", out)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(t.TempDir(), "missing.pem"), garbage} {
		r := runCLI(t, nil, "", "call", "serverPing", "--url", url, "--cacert", file, "--token", tok)
		if r.code != exitUsage || !strings.Contains(r.stderr, file) {
			t.Errorf("--cacert %s: exit %d, stderr %q; want %d, naming the file", file, r.code, r.stderr, exitUsage)
		}
	}
}

func TestTLSServeFlags(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t.TempDir(), 1)
	for _, args := range [][]string{{"--tls-cert", certFile}, {"--tls-key", keyFile}} {
		r := runBinary(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--tls-cert and --tls-key") {
			t.Errorf("serve %v: exit %d, stderr %q; want %d, saying both are needed", args, r.code, r.stderr, exitUsage)
		}
	}
	missing := filepath.Join(t.TempDir(), "cert.pem")
	r := runBinary(t, nil, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--tls-cert", missing, "--tls-key", keyFile)
	if r.code == exitOK || !strings.Contains(r.stderr, missing) {
		t.Errorf("serve with a missing certificate: exit %d, stderr %q; want a failure naming %s", r.code, r.stderr, missing)
	}
}

// The banner of a TLS server, configured from the environment, gives
// https:// and wss://, and its curl line https, without -k: skipping
// verification is not advice to print.
func TestTLSBanner(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t.TempDir(), 1)
	env := []string{"SWITCHBOARD_TLS_CERT=" + certFile, "SWITCHBOARD_TLS_KEY=" + keyFile}
	s := &serverProc{cliProc: startCLI(t, env, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir())}
	listening := regexp.MustCompile(`listening on https://(\S+) \(WebSocket: wss://(\S+)/rpc\)$`)
	m := listening.FindStringSubmatch(s.line("the listening line", listening.MatchString))
	if m[1] != m[2] {
		t.Errorf("the banner gives %s and %s", m[1], m[2])
	}
	s.addr = m[1]
	tok := s.readAdminToken()
	curl := s.line("the curl line", func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "curl ") })
	if !strings.HasSuffix(curl, " https://"+s.addr+"/rpc") || strings.Contains(curl, " -k") {
		t.Errorf("curl line %q: want https://%s/rpc, and no -k", curl, s.addr)
	}

	c := &servertest.Server{T: t, Addr: s.addr, Config: server.Config{TLSCert: certFile}, HTTP: ca.client()}
	var info servertest.InfoResult
	r, _ := c.Call(servertest.Bearer(tok), "serverInfo", nil)
	r.Decode(t, &info)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited %d after SIGTERM", code)
	}
}

// TestREADMETLSExample runs the README's TLS examples as written (with
// openssl and curl, when they are installed): make a self-signed
// certificate, serve with it, and call the server with the CLI and curl
// trusting it.
func TestREADMETLSExample(t *testing.T) {
	for _, tool := range []string{"openssl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	doc := readme(t)
	section := doc[strings.Index(doc, "### TLS\n")+len("### TLS\n"):]
	section = section[:strings.Index(section, "\n#")] // to the next heading
	var blocks []string
	for _, part := range strings.Split(section, "```sh\n")[1:] {
		blocks = append(blocks, part[:strings.Index(part, "```")])
	}
	if len(blocks) != 2 {
		t.Fatalf("the TLS section has %d sh blocks, want 2", len(blocks))
	}
	dir := t.TempDir()
	makeCert, serveLine, ok := strings.Cut(blocks[0], "bin/switchboard serve ")
	if !ok {
		t.Fatalf("the first TLS block does not run bin/switchboard serve:\n%s", blocks[0])
	}
	runScript := func(script string, env ...string) string {
		t.Helper()
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		cmd.Dir, cmd.Env = dir, environ(env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s\n%s", err, out, script)
		}
		return string(out)
	}
	runScript(makeCert)

	args := []string{"serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data")}
	for _, f := range strings.Fields(serveLine) {
		if strings.HasSuffix(f, ".pem") {
			f = filepath.Join(dir, f)
		}
		args = append(args, f)
	}
	s := &serverProc{cliProc: startCLI(t, nil, args...)}
	listening := regexp.MustCompile(`listening on https://(\S+) `)
	s.addr = listening.FindStringSubmatch(s.line("the listening line", listening.MatchString))[1]
	tok := s.readAdminToken()

	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary(t), filepath.Join(dir, "bin", "switchboard")); err != nil {
		t.Fatal(err)
	}
	out := runScript(strings.ReplaceAll(blocks[1], "127.0.0.1:8080", s.addr), "TOKEN="+tok)
	if n := strings.Count(out, `"time":`); n != 2 {
		t.Errorf("want two serverPing results, one from the CLI and one from curl:\n%s", out)
	}
}

// TestREADMEInternetExample starts the server with the README's flags for
// a server on the internet, its addresses and files swapped for the
// test's, and checks that it serves what they say.
func TestREADMEInternetExample(t *testing.T) {
	doc := readme(t)
	section := doc[strings.Index(doc, "<!-- readme-internet:"):]
	block := section[strings.Index(section, "```sh\n")+len("```sh\n"):]
	block = strings.ReplaceAll(block[:strings.Index(block, "```")], "\\\n", " ")
	fields := strings.Fields(block)
	if len(fields) < 3 || fields[0] != "switchboard" || fields[1] != "serve" {
		t.Fatalf("the block is not a switchboard serve command: %q", block)
	}
	dir := t.TempDir()
	ca := newTestCA(t)
	cert, key := ca.issue(dir, 1)
	swap := map[string]string{"--listen": "127.0.0.1:0", "--tls-cert": cert, "--tls-key": key, "--metrics-listen": "127.0.0.1:0"}
	args := []string{"serve", "--data", filepath.Join(dir, "data")}
	for i := 2; i < len(fields); i++ {
		args = append(args, fields[i])
		if v, ok := swap[fields[i]]; ok && i+1 < len(fields) {
			args = append(args, v)
			i++
		}
	}
	p := startCLI(t, nil, args...)
	s := &serverProc{cliProc: p}
	line := s.line("the listening line", regexp.MustCompile(`listening on https://`).MatchString)
	addr := regexp.MustCompile(`listening on https://(\S+) `).FindStringSubmatch(line)[1]
	metrics := metricsLine.FindStringSubmatch(line)
	if metrics == nil {
		t.Fatalf("the banner %q does not say where the metrics are", line)
	}
	hc := ca.client()
	get := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/healthz", nil)
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET /healthz as %s: %v", host, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("switchboard.example.com"); code != http.StatusOK {
		t.Errorf("Host switchboard.example.com: HTTP %d", code)
	}
	if code := get("localhost"); code != http.StatusForbidden {
		t.Errorf("Host localhost, not in --allowed-hosts: HTTP %d, want 403", code)
	}
	resp, err := http.Get("http://" + metrics[1] + "/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics on --metrics-listen: %v %v", err, resp)
	}
	resp.Body.Close()
}
