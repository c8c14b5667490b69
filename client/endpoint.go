package client

import (
	"fmt"
	"net/url"
	"strings"
)

// DefaultURL is where a local "switchboard serve" listens by default.
const DefaultURL = "http://127.0.0.1:8080"

// endpoint is a server's JSON-RPC route, over HTTP and over WebSocket.
type endpoint struct {
	http, ws string
}

// parseEndpoint accepts ws://, wss://, http:// and https:// URLs, with or
// without the /rpc path, and host:port alone (as http). A path other
// than /rpc is taken as the prefix a proxy serves Switchboard under, and
// /rpc is added to it.
func parseEndpoint(raw string) (endpoint, error) {
	if raw == "" {
		raw = DefaultURL
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, fmt.Errorf("server URL %q: %w", raw, err)
	}
	if u.Host == "" {
		return endpoint{}, fmt.Errorf("server URL %q has no host", raw)
	}
	if u.Fragment != "" || u.User != nil {
		return endpoint{}, fmt.Errorf("server URL %q: user info and fragments are not allowed", raw)
	}
	var httpScheme, wsScheme string
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		httpScheme, wsScheme = "http", "ws"
	case "https", "wss":
		httpScheme, wsScheme = "https", "wss"
	default:
		return endpoint{}, fmt.Errorf("server URL %q: the scheme must be ws, wss, http or https", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/rpc") {
		u.Path += "/rpc"
	}
	u.RawPath = ""
	u.Scheme = httpScheme
	h := u.String()
	u.Scheme = wsScheme
	return endpoint{http: h, ws: u.String()}, nil
}
