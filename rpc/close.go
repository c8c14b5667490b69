package rpc

import "github.com/coder/websocket"

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
