package api

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/subscriptions"
)

// Identity is what the methods that change who may do what need.
type Identity struct {
	// Tokens verifies sessionRefresh's tokens, as the upgrade does.
	Tokens Verifier
	// Conns closes a user's connections on this node.
	Conns interface {
		Disconnect(user, reason string) int
	}
	// Revocations keep the users cut off; nil makes adminRevoke
	// unavailable.
	Revocations interface {
		Revoke(user string, until time.Time) error
	}
}

// registerIdentity adds sessionRefresh, adminDisconnect and adminRevoke,
// and the sessionExpiring notification, to reg.
func registerIdentity(reg *rpc.Registry, id Identity, subs *subscriptions.Registry) {
	rpc.Register(reg, rpc.Method{
		Name:        "sessionRefresh",
		NeedsSocket: true,
		Notifies:    true, // channelUnsubscribed for what the new token no longer allows
		Summary:     "Replaces the connection's token with a fresh one",
		Description: "The new token must be of the same user. Its expiry and permissions apply from the reply on: the connection now closes with 4001 when the new token expires, " +
			"and subscriptions the new permissions do not allow end, after the reply, with channelUnsubscribed and reason \"permission\". " +
			"Send it when sessionExpiring arrives. A refused token leaves the connection as it was.",
		Errors: []int{rpc.CodeUnauthorized, rpc.CodeForbidden},
		Examples: []rpc.Example{{Name: "refresh", Params: RefreshParams{Token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"},
			Result: WhoamiResult{User: "alice", ConnectionID: "9c1d2e3f4a5b6c7d", Transport: "websocket",
				Permissions: Permissions{Publish: []string{"chat.>"}, Subscribe: []string{"chat.>"}}, ExpiresAt: &exampleTime}}},
	}, func(ctx context.Context, s *rpc.Session, p RefreshParams) (WhoamiResult, error) {
		old := s.Caller()
		caller, err := id.Tokens.Verify(p.Token)
		switch {
		case err != nil:
			return WhoamiResult{}, err
		case !caller.ExpiresAt.IsZero() && !caller.ExpiresAt.After(time.Now()):
			// Within the leeway, but it would close the connection at once.
			return WhoamiResult{}, service.Errorf(service.EUNAUTHORIZED, "token expired")
		case old.Anonymous:
			return WhoamiResult{}, service.Errorf(service.EFORBIDDEN, "an anonymous connection cannot take a token: reconnect with it")
		case caller.User != old.User:
			return WhoamiResult{}, service.Errorf(service.EFORBIDDEN, "the token is for user %q, and the connection is %q's: reconnect to change users", caller.User, old.User)
		}
		s.SetCaller(caller)
		subs.Narrow(ctx, s)
		return whoami(s), nil
	})

	rpc.RegisterNotification(reg, rpc.SessionExpiring, "The connection's token is about to expire",
		"Sent once per token, a while before it expires (the server's --token-expiry-notice, or halfway through a shorter token's life). "+
			"Answer with sessionRefresh and a fresh token to keep the connection and its subscriptions; otherwise it closes with 4001 at expiresAt.",
		rpc.ExpiringParams{ExpiresAt: exampleTime})

	rpc.Register(reg, rpc.Method{
		Name:    "adminDisconnect",
		Summary: "Closes every WebSocket connection of a user on this node",
		Description: "Each closes with code 4003 and the reason. The user may connect again at once with a valid token: " +
			"to keep them out, use adminRevoke. Needs an admin token.",
		Errors: []int{rpc.CodeForbidden},
		Examples: []rpc.Example{{Name: "disconnect", Params: DisconnectParams{User: "mallory", Reason: "account suspended"},
			Result: DisconnectResult{User: "mallory", Connections: 2}}},
	}, func(_ context.Context, s *rpc.Session, p DisconnectParams) (DisconnectResult, error) {
		if err := mayCutOff(s, p.User); err != nil {
			return DisconnectResult{}, err
		}
		return DisconnectResult{User: p.User, Connections: id.Conns.Disconnect(p.User, p.Reason)}, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:    "adminRevoke",
		Summary: "Refuses a user's tokens issued until now, and disconnects the user",
		Description: "Until until, every upgrade, HTTP call and sessionRefresh with a token of the user issued at or before now " +
			"(in whole seconds, as iat counts them, plus the server's --token-leeway for an issuer whose clock runs ahead; a token without iat counts as old) is refused with -32001; tokens issued later are accepted. " +
			"The user's connections on this node close with 4003. The revocation is kept in the data directory and outlives a restart. " +
			"An until that is not in the future lifts the user's revocation. Needs an admin token.",
		Errors: []int{rpc.CodeForbidden},
		Examples: []rpc.Example{{Name: "revoke", Params: RevokeParams{User: "mallory", Until: exampleUntil},
			Result: RevokeResult{User: "mallory", Until: exampleUntil, Connections: 1}}},
	}, func(_ context.Context, s *rpc.Session, p RevokeParams) (RevokeResult, error) {
		if err := mayCutOff(s, p.User); err != nil {
			return RevokeResult{}, err
		}
		if id.Revocations == nil {
			return RevokeResult{}, service.Errorf(service.EUNAVAILABLE, "this server keeps no revocations")
		}
		if err := id.Revocations.Revoke(p.User, p.Until); err != nil {
			return RevokeResult{}, service.Errorf(service.EUNAVAILABLE, "the revocation could not be kept: %v", err)
		}
		res := RevokeResult{User: p.User, Until: p.Until.UTC()}
		if p.Until.After(time.Now()) {
			res.Connections = id.Conns.Disconnect(p.User, "revoked by an admin")
		}
		return res, nil
	})
}

// exampleUntil is in the future, for the examples that servers replay.
var exampleUntil = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

// mayCutOff checks that s may cut user off.
func mayCutOff(s *rpc.Session, user string) error {
	switch {
	case !s.Caller().Permissions.Admin:
		return service.Errorf(service.EFORBIDDEN, "only admins may cut users off")
	case user == "":
		return service.Errorf(service.EINVALID, "user must not be empty")
	}
	return nil
}

// RefreshParams are sessionRefresh's params.
type RefreshParams struct {
	Token string `json:"token" doc:"A fresh access token of the connection's user."`
}

// DisconnectParams are adminDisconnect's params.
type DisconnectParams struct {
	User   string `json:"user" doc:"The user (a token's subject) to disconnect."`
	Reason string `json:"reason,omitempty" doc:"Sent as the close frame's reason, cut to 123 bytes; absent, \"disconnected by an admin\"."`
}

// DisconnectResult is adminDisconnect's result.
type DisconnectResult struct {
	User        string `json:"user"`
	Connections int    `json:"connections" doc:"How many connections were closed."`
}

// RevokeParams are adminRevoke's params.
type RevokeParams struct {
	User  string    `json:"user" doc:"The user (a token's subject) to cut off."`
	Until time.Time `json:"until" doc:"When the user's old tokens may be used again; make it no earlier than their expiry."`
}

// RevokeResult is adminRevoke's result.
type RevokeResult struct {
	User        string    `json:"user"`
	Until       time.Time `json:"until"`
	Connections int       `json:"connections" doc:"How many connections were closed."`
}
