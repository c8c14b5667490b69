package client

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in       string
		http, ws string // both "" when in must be refused
	}{
		// The default.
		{"", "http://127.0.0.1:8080/rpc", "ws://127.0.0.1:8080/rpc"},
		// Each scheme, with and without /rpc.
		{"ws://example.com:8080/rpc", "http://example.com:8080/rpc", "ws://example.com:8080/rpc"},
		{"ws://example.com:8080", "http://example.com:8080/rpc", "ws://example.com:8080/rpc"},
		{"wss://example.com/rpc", "https://example.com/rpc", "wss://example.com/rpc"},
		{"wss://example.com", "https://example.com/rpc", "wss://example.com/rpc"},
		{"http://127.0.0.1:8080/rpc", "http://127.0.0.1:8080/rpc", "ws://127.0.0.1:8080/rpc"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/rpc", "ws://127.0.0.1:8080/rpc"},
		{"https://example.com/rpc", "https://example.com/rpc", "wss://example.com/rpc"},
		{"https://example.com", "https://example.com/rpc", "wss://example.com/rpc"},
		{"HTTPS://example.com", "https://example.com/rpc", "wss://example.com/rpc"},
		{"WS://example.com", "http://example.com/rpc", "ws://example.com/rpc"},
		// Trailing slashes.
		{"http://example.com/", "http://example.com/rpc", "ws://example.com/rpc"},
		{"http://example.com/rpc/", "http://example.com/rpc", "ws://example.com/rpc"},
		{"wss://example.com//", "https://example.com/rpc", "wss://example.com/rpc"},
		// host:port alone is http.
		{"127.0.0.1:9000", "http://127.0.0.1:9000/rpc", "ws://127.0.0.1:9000/rpc"},
		{"localhost:9000/rpc", "http://localhost:9000/rpc", "ws://localhost:9000/rpc"},
		{"localhost", "http://localhost/rpc", "ws://localhost/rpc"},
		{"[::1]:9000", "http://[::1]:9000/rpc", "ws://[::1]:9000/rpc"},
		// A proxy's prefix.
		{"https://example.com/switchboard", "https://example.com/switchboard/rpc", "wss://example.com/switchboard/rpc"},
		{"https://example.com/switchboard/", "https://example.com/switchboard/rpc", "wss://example.com/switchboard/rpc"},
		{"https://example.com/switchboard/rpc", "https://example.com/switchboard/rpc", "wss://example.com/switchboard/rpc"},
		{"http://example.com/a/b", "http://example.com/a/b/rpc", "ws://example.com/a/b/rpc"},
		{"http://example.com/rpcx", "http://example.com/rpcx/rpc", "ws://example.com/rpcx/rpc"},
		// The query is kept.
		{"http://example.com/rpc?access_token=abc", "http://example.com/rpc?access_token=abc", "ws://example.com/rpc?access_token=abc"},
		{"wss://example.com?x=1&y=2", "https://example.com/rpc?x=1&y=2", "wss://example.com/rpc?x=1&y=2"},
		{"example.com:80/sb/?x=1", "http://example.com:80/sb/rpc?x=1", "ws://example.com:80/sb/rpc?x=1"},
		// Refused.
		{"ftp://example.com", "", ""},
		{"file:///tmp/x", "", ""},
		{"unix:///tmp/sock", "", ""},
		{"tcp://example.com:80", "", ""},
		{"http://", "", ""},
		{"ws:///rpc", "", ""},
		{"://example.com", "", ""},
		{"http://user:secret@example.com", "", ""},
		{"http://user@example.com/rpc", "", ""},
		{"http://example.com/rpc#frag", "", ""},
		{"http://example.com:port", "", ""},
		{"http://exa mple.com", "", ""},
	}
	for _, tc := range cases {
		ep, err := parseEndpoint(tc.in)
		if tc.http == "" {
			if err == nil {
				t.Errorf("parseEndpoint(%q) = %+v, want an error", tc.in, ep)
			} else if !strings.Contains(err.Error(), "server URL") {
				t.Errorf("parseEndpoint(%q): error %q does not say it is about the server URL", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseEndpoint(%q): %v", tc.in, err)
			continue
		}
		if ep.http != tc.http || ep.ws != tc.ws {
			t.Errorf("parseEndpoint(%q) = http %q, ws %q; want %q, %q", tc.in, ep.http, ep.ws, tc.http, tc.ws)
		}
	}
}

// TestNewRefusesBadURL: New reports a bad URL rather than failing on
// first use.
func TestNewRefusesBadURL(t *testing.T) {
	if c, err := New("ftp://example.com", Options{}); err == nil {
		t.Fatalf("New(ftp://…) = %+v, want an error", c)
	}
	c, err := New("example.com:1234/x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ep.http != "http://example.com:1234/x/rpc" || c.ep.ws != "ws://example.com:1234/x/rpc" {
		t.Fatalf("New: endpoint %+v", c.ep)
	}
}
