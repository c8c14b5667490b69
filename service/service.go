// Package service holds Switchboard's domain: who is calling, what they may
// do, and the hub's operations. It knows nothing of sockets, HTTP or
// JSON-RPC; the packages at the edge (rpc, api, auth) adapt it to the wire.
package service

import (
	"time"
)

// Caller is the identity behind a connection or an HTTP call, as proven by
// its token (or granted to anonymous callers by configuration).
type Caller struct {
	// User is the token's subject. Anonymous callers have the user "".
	User string
	// Anonymous is true when the caller presented no token and the server
	// is configured to let such callers in.
	Anonymous bool
	// Permissions are what the caller may do.
	Permissions Permissions
	// ExpiresAt is when the caller's token expires; zero means never.
	ExpiresAt time.Time
}

// Permissions say which channels a caller may publish to and subscribe to.
// Patterns are channel names in which "*" matches one dot-separated segment
// and a trailing ">" matches one or more segments.
type Permissions struct {
	Publish   []string
	Subscribe []string
	// Admin callers may do everything.
	Admin bool
}

// Node describes this running server.
type Node struct {
	// ID names this node; it is kept in the data directory so that it
	// survives restarts.
	ID string
	// Version is the build's version.
	Version string
	// StartedAt is when the node started serving.
	StartedAt time.Time
}

// Uptime is how long the node has been running at now.
func (n Node) Uptime(now time.Time) time.Duration {
	return now.Sub(n.StartedAt)
}
