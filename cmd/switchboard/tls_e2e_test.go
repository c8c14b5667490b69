package main

// Tests of HTTPS and WSS: the real server with --tls-cert and --tls-key,
// real clients, and certificates from a CA made by the test.

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

func TestTLSCommandLineClient(t *testing.T) {
	ca := servertest.NewCA(t)
	ta := servertest.StartTLS(t, ca, t.TempDir())
	tok := ta.Token("admin", service.Permissions{Admin: true}, time.Hour)
	url := "https://" + ta.Addr

	out := mustRun(t, nil, "", "call", "serverPing", "--url", url, "--cacert", ca.File, "--token", tok)
	if !strings.Contains(out, `"time"`) {
		t.Errorf("call serverPing printed %q", out)
	}
	r := runCLI(t, nil, "", "call", "serverPing", "--url", url, "--token", tok)
	if r.code != exitConnect || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("without --cacert: exit %d, stderr %q; want %d, about the certificate", r.code, r.stderr, exitConnect)
	}

	// From the environment, and over wss: subscribe uses a WebSocket.
	env := []string{"SWITCHBOARD_URL=wss://" + ta.Addr, "SWITCHBOARD_TOKEN=" + tok, "SWITCHBOARD_CACERT=" + ca.File}
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
	ca := servertest.NewCA(t)
	certFile, keyFile := ca.Issue(t.TempDir(), 1)
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
	ca := servertest.NewCA(t)
	certFile, keyFile := ca.Issue(t.TempDir(), 1)
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

	c := &servertest.Server{T: t, Addr: s.addr, Config: server.Config{TLSCert: certFile}, HTTP: ca.Client()}
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
	ca := servertest.NewCA(t)
	cert, key := ca.Issue(dir, 1)
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
	hc := ca.Client()
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
