package api

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/subscriptions"
)

// APIVersion is the version of the JSON-RPC contract in openrpc.json. It
// changes when methods change, not with every build.
const APIVersion = "0.1.0"

// Stats is what serverInfo reports of the server's load.
type Stats struct {
	Conns interface{ Connections() int } // the WebSocket connections open
	// Totals gives the calls finished and the notifications queued since
	// start; nil reports zeros.
	Totals interface {
		Totals() (calls, notifications uint64)
	}
	// MaxBatch is the most calls a batch may hold.
	MaxBatch int
}

// RegisterMethods adds Switchboard's methods to reg, rpc.discover and the
// hub's channel methods among them, and returns the function that renders
// the OpenRPC document.
func RegisterMethods(reg *rpc.Registry, node service.Node, stats Stats, hub *service.Hub, cfg subscriptions.Limits, id Identity) func() ([]byte, error) {
	rpc.Register(reg, rpc.Method{
		Name:        "serverPing",
		Inline:      true,
		Summary:     "Checks that the server answers",
		Description: "Returns the server's clock. Cheap: use it for liveness checks and to measure round trips.",
		Examples: []rpc.Example{{
			Name:   "ping",
			Params: PingParams{},
			Result: PingResult{Time: exampleTime},
		}},
	}, func(context.Context, *rpc.Session, PingParams) (PingResult, error) {
		return PingResult{Time: time.Now().UTC()}, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:    "serverInfo",
		Inline:  true,
		Summary: "Describes the running server",
		Examples: []rpc.Example{{
			Name:   "info",
			Params: InfoParams{},
			Result: ServerInfoResult{Version: "v0.1.0", NodeID: "3f9a1c2b7d4e5f60", StartedAt: exampleTime,
				UptimeSeconds: 3600.5, Connections: 12, CallsTotal: 48210, NotificationsTotal: 1532044, MaxBatch: 100},
		}},
	}, func(context.Context, *rpc.Session, InfoParams) (ServerInfoResult, error) {
		now := time.Now()
		r := ServerInfoResult{
			Version:       node.Version,
			NodeID:        node.ID,
			StartedAt:     node.StartedAt.UTC(),
			UptimeSeconds: node.Uptime(now).Seconds(),
			Connections:   stats.Conns.Connections(),
			MaxBatch:      stats.MaxBatch,
		}
		if stats.Totals != nil {
			r.CallsTotal, r.NotificationsTotal = stats.Totals.Totals()
		}
		return r, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:        "sessionWhoami",
		Inline:      true,
		Summary:     "Describes the caller: user, connection and permissions",
		Description: "Permissions come from the caller's token, or from the server's configuration for anonymous callers.",
		Examples: []rpc.Example{{
			Name:   "whoami",
			Params: WhoamiParams{},
			Result: WhoamiResult{User: "alice", ConnectionID: "9c1d2e3f4a5b6c7d", Transport: "websocket",
				Permissions: Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>", "news.*"}},
				ExpiresAt:   &exampleTime},
		}},
	}, func(_ context.Context, s *rpc.Session, _ WhoamiParams) (WhoamiResult, error) {
		return whoami(s), nil
	})

	subs := subscriptions.New(hub, cfg, notificationOf)
	registerChannels(reg, hub, subs)
	registerIdentity(reg, id, subs)

	return rpc.RegisterDiscover(reg, rpc.Info{
		Title:       "Switchboard",
		Description: "A real-time hub speaking JSON-RPC 2.0 over WebSocket (GET /rpc) and HTTP POST (/rpc).",
		Version:     APIVersion,
	})
}

var exampleTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// PingParams are serverPing's params: none.
type PingParams struct{}

// PingResult is serverPing's result.
type PingResult struct {
	Time time.Time `json:"time" doc:"The server's clock when it answered, in UTC."`
}

// InfoParams are serverInfo's params: none.
type InfoParams struct{}

// ServerInfoResult is serverInfo's result.
type ServerInfoResult struct {
	Version       string    `json:"version" doc:"The server build's version."`
	NodeID        string    `json:"nodeId" doc:"This node's id, kept across restarts in the data directory."`
	StartedAt     time.Time `json:"startedAt" doc:"When the server started."`
	UptimeSeconds float64   `json:"uptimeSeconds" doc:"Seconds since the server started."`
	Connections   int       `json:"connections" doc:"WebSocket connections open now."`
	// Counters, so that a dashboard can draw rates from two readings.
	CallsTotal         uint64 `json:"callsTotal" doc:"JSON-RPC calls finished since the server started."`
	NotificationsTotal uint64 `json:"notificationsTotal" doc:"Notifications queued for connections since the server started."`
	MaxBatch           int    `json:"maxBatch" doc:"The most calls one batch may hold (--max-batch). A batch's channelPublish and channelRemove calls take effect in its order and stop at the first that fails or is refused; servers from before that do not send this member."`
}

// WhoamiParams are sessionWhoami's params: none.
type WhoamiParams struct{}

// WhoamiResult is sessionWhoami's result.
type WhoamiResult struct {
	User         string      `json:"user" doc:"The token's subject; empty for anonymous callers."`
	Anonymous    bool        `json:"anonymous" doc:"True when the caller presented no token."`
	ConnectionID string      `json:"connectionId" doc:"The connection's id (over HTTP, the request's id)."`
	Transport    string      `json:"transport" doc:"websocket or http."`
	Permissions  Permissions `json:"permissions"`
	ExpiresAt    *time.Time  `json:"expiresAt,omitempty" doc:"When the token expires; absent when it never does."`
}

// Permissions are what a caller may do.
type Permissions struct {
	Publish   []string `json:"publish" itemTitle:"ChannelPattern" doc:"Channel patterns the caller may publish to."`
	Subscribe []string `json:"subscribe" itemTitle:"ChannelPattern" doc:"Channel patterns the caller may subscribe to."`
	Admin     bool     `json:"admin" doc:"True when the caller may do everything."`
}

func whoami(s *rpc.Session) WhoamiResult {
	caller := s.Caller()
	p := caller.Permissions
	w := WhoamiResult{
		User:         caller.User,
		Anonymous:    caller.Anonymous,
		ConnectionID: s.ID,
		Transport:    s.Transport(),
		Permissions:  Permissions{Publish: nonNil(p.Publish), Subscribe: nonNil(p.Subscribe), Admin: p.Admin},
	}
	if exp := caller.ExpiresAt; !exp.IsZero() {
		exp = exp.UTC()
		w.ExpiresAt = &exp
	}
	return w
}

// nonNil keeps empty lists as [] rather than null on the wire.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
