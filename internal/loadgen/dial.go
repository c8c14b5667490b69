package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// DialTimeout bounds each WebSocket handshake.
const DialTimeout = 10 * time.Second

// ReadLimit is the largest message a connection accepts: more than a
// publication of the server's largest data (64 KiB by default) with its
// framing.
const ReadLimit = 4 << 20

// Target is the one server a run talks to. Its connections go to the
// host and port of its URL and nowhere else: no proxy from the
// environment, no redirect, no address but that one. A load generator
// pointed at the wrong place is an attack, so a redirect to another host
// (or to the same one) fails the handshake instead of being followed.
type Target struct {
	url    string // ws:// or wss://, ending in /rpc
	addr   string // host:port the connections may go to
	header http.Header
	client *http.Client
}

// NewTarget parses rawURL as the command-line client does (ws, wss, http
// or https, with or without /rpc; host:port alone is http) and prepares
// connections to it with token (none when "") trusting roots for wss
// (the system's when nil).
func NewTarget(rawURL, token string, roots *x509.CertPool) (*Target, error) {
	u, err := wsURL(rawURL)
	if err != nil {
		return nil, err
	}
	t := &Target{url: u.String(), addr: hostPort(u), header: http.Header{}}
	if token != "" {
		t.header.Set("Authorization", "Bearer "+token)
	}
	dialer := &net.Dialer{Timeout: DialTimeout}
	transport := &http.Transport{
		Proxy: nil, // not the environment's: the server itself, or nothing
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != t.addr {
				return nil, fmt.Errorf("refusing to connect to %s: bench talks only to %s", addr, t.addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		// The WebSocket handshake is HTTP/1.1 only.
		TLSClientConfig:     &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}},
		TLSHandshakeTimeout: DialTimeout,
	}
	t.client = &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			return fmt.Errorf("refusing to follow a redirect to %s", req.URL.Redacted())
		},
	}
	return t, nil
}

// URL is the WebSocket URL the connections open.
func (t *Target) URL() string { return t.url }

// Dial opens one WebSocket to the target. A refusal by the server (an
// HTTP status instead of the upgrade) is said with the status and the
// start of its body.
func (t *Target) Dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, t.url, &websocket.DialOptions{
		HTTPClient:      t.client,
		HTTPHeader:      t.header,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(resp.Body)
			}
			err = &RefusedError{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
		}
		return nil, err
	}
	c.SetReadLimit(ReadLimit)
	return c, nil
}

// RefusedError is a handshake the server answered with an HTTP status.
type RefusedError struct {
	Status int
	Body   string
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("the server refused the WebSocket: HTTP %d", e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// wsURL is rawURL as a ws:// or wss:// URL of /rpc.
func wsURL(rawURL string) (*url.URL, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", rawURL, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q has no host", rawURL)
	}
	if u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("server URL %q: user info and fragments are not allowed", rawURL)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return nil, errors.New("server URL " + rawURL + ": the scheme must be ws, wss, http or https")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/rpc") {
		u.Path += "/rpc"
	}
	u.RawPath = ""
	return u, nil
}

// hostPort is u's host with its port, the scheme's default if it has
// none: the address the transport dials.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
