package api_test

// Tests of HTTPS and WSS: the real server with TLSCert and TLSKey, real
// clients, and certificates from a CA made by the test.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/service"
)

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
	ca := servertest.NewCA(t)
	ta := servertest.StartTLS(t, ca, t.TempDir())
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
	ca := servertest.NewCA(t)
	ta := servertest.StartTLS(t, ca, t.TempDir())
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
	ca := servertest.NewCA(t)
	ta := servertest.StartTLS(t, ca, t.TempDir())
	st, err := handshake(t, ta.Addr, &tls.Config{RootCAs: ca.Pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN with h2 offered first negotiated %q, want http/1.1", st.NegotiatedProtocol)
	}
	// The server's own order would pick http/1.1 even with h2 enabled; a
	// client offering h2 alone shows whether it is.
	if st, err := handshake(t, ta.Addr, &tls.Config{RootCAs: ca.Pool, NextProtos: []string{"h2"}}); err == nil && st.NegotiatedProtocol == "h2" {
		t.Errorf("a client offering h2 alone negotiated it")
	}

	h2 := &http.Client{Timeout: servertest.IOTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true,
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

	if _, err := handshake(t, ta.Addr, &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Errorf("a TLS 1.1 handshake succeeded")
	}
}

// A certificate replaced on disk is served from the next handshake that
// looks; a broken one is not, and the one before stays in use.
func TestTLSReloadsTheCertificate(t *testing.T) {
	ca := servertest.NewCA(t)
	dir := t.TempDir()
	ta := servertest.StartTLS(t, ca, dir)
	if s := servedSerial(t, ta.Addr, ca.Pool); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}

	certFile, _ := ca.Issue(dir, 2)
	servertest.Eventually(t, "the renewed certificate", func() bool { return servedSerial(t, ta.Addr, ca.Pool) == 2 })

	const warning = "TLS certificate not reloaded"
	warned := strings.Count(ta.Logs.String(), warning)
	if err := os.WriteFile(certFile, []byte("half a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, "a warning about the broken certificate", func() bool {
		if s := servedSerial(t, ta.Addr, ca.Pool); s != 2 { // the check is made on handshakes
			t.Fatalf("after a broken renewal, serving serial %d, want 2 still", s)
		}
		return strings.Count(ta.Logs.String(), warning) > warned
	})
	if s := servedSerial(t, ta.Addr, ca.Pool); s != 2 {
		t.Errorf("after the warning, serving serial %d, want 2 still", s)
	}
	r, _ := ta.Call(servertest.Bearer(ta.Token("bob", service.Permissions{}, time.Hour)), "serverPing", nil)
	r.Decode(t, &servertest.PingResult{})

	ca.Issue(dir, 3)
	servertest.Eventually(t, "the mended certificate", func() bool { return servedSerial(t, ta.Addr, ca.Pool) == 3 })
}
