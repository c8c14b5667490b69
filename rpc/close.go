package rpc

import (
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// WebSocket close codes the server sends. The 4000s are Switchboard's own;
// each says what a client should do next. They are listed in the README.
const (
	// CloseNormal: the client asked to close.
	CloseNormal = websocket.StatusNormalClosure // 1000
	// CloseGoingAway: the server is shutting down; reconnect, to another
	// node if there is one.
	CloseGoingAway = websocket.StatusGoingAway // 1001
	// CloseUnsupportedData: a binary frame arrived; send JSON as text.
	CloseUnsupportedData = websocket.StatusUnsupportedData // 1003
	// CloseMessageTooBig: a message exceeded the size limit.
	CloseMessageTooBig = websocket.StatusMessageTooBig // 1009
	// CloseSlowConsumer: the client read too slowly and its send queue
	// overflowed; reconnect and recover what was missed.
	CloseSlowConsumer websocket.StatusCode = 4000
	// CloseTokenExpired: the token that opened the connection expired;
	// reconnect with a fresh one.
	CloseTokenExpired websocket.StatusCode = 4001
	// ClosePingTimeout: the client did not answer a ping in time.
	ClosePingTimeout websocket.StatusCode = 4002
	// CloseDisconnected: an admin cut the user off (adminDisconnect,
	// adminRevoke); the close reason says why. Do not reconnect with the
	// same token without a person's say.
	CloseDisconnected websocket.StatusCode = 4003
)

// CloseCode documents one close code for the README.
type CloseCode struct {
	Code    websocket.StatusCode
	Meaning string
}

// CloseCodes lists the close codes the server sends, for docs.
var CloseCodes = []CloseCode{
	{CloseNormal, "normal closure"},
	{CloseGoingAway, "the server is shutting down; reconnect"},
	{CloseUnsupportedData, "a binary frame was sent; send JSON text frames"},
	{CloseMessageTooBig, "a message exceeded the size limit"},
	{CloseSlowConsumer, "the client read too slowly; reconnect and recover"},
	{CloseTokenExpired, "the token expired; reconnect with a fresh token"},
	{ClosePingTimeout, "the client did not answer a ping in time"},
	{CloseDisconnected, "an admin disconnected the user; the reason says why"},
}

// Disconnect closes every WebSocket connection of user with
// CloseDisconnected and reason, writing first what is queued for them,
// and returns how many it closed. It is how an admin cuts a user off
// (the api's adminDisconnect and adminRevoke).
func (s *Server) Disconnect(user, reason string) int {
	text := closeText(reason)
	now := time.Now()
	s.mu.Lock()
	for u, c := range s.cutOff {
		if now.Sub(c.at) > cutOffMemory {
			delete(s.cutOff, u)
		}
	}
	s.cutOff[user] = cut{at: now, text: text}
	var theirs []*conn
	for c := range s.conns {
		if caller := c.sess.Caller(); !caller.Anonymous && caller.User == user {
			theirs = append(theirs, c)
		}
	}
	s.mu.Unlock()
	for _, c := range theirs {
		c.closeWith(CloseDisconnected, text, ReasonDisconnected, true)
	}
	return len(theirs)
}

// cut is a user's being cut off: when, and the close text.
type cut struct {
	at   time.Time
	text string
}

// cutOffMemory is how long Disconnect remembers a user for upgrades that
// were under way: far longer than one takes.
const cutOffMemory = time.Minute

// maxCloseText is how many bytes of text a close frame holds: 125 for the
// payload, less 2 for the code.
const maxCloseText = 123

// closeText returns reason cut to fit a close frame, at a rune boundary.
func closeText(reason string) string {
	if reason == "" {
		return "disconnected by an admin"
	}
	if len(reason) <= maxCloseText {
		return reason
	}
	cut := maxCloseText
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
