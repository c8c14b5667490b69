package rpc

import (
	"fmt"
	"net/http"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/service"
)

// Upgrade accepts the WebSocket handshake in r and serves JSON-RPC on the
// connection for caller, as ServeWebSocket does, under the connection id
// id (unique, and of the server's making), with writes coalesced:
// replies and notifications that are queued together leave in one system
// call. It returns once the connection is handed over; on a failed
// handshake the HTTP error has been written to w.
//
// Upgrade does not check the Origin header: the caller must, before.
// Compression is off: with context takeover it costs about 1.2 MiB per
// connection, and JSON-RPC messages are small.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request, id string, caller service.Caller, remoteAddr string) error {
	cw := &corkingWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // see above: origins are the caller's to check
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return fmt.Errorf("websocket handshake: %w", err)
	}
	s.serve(ws, cw.conn, Session{ID: id, Caller: caller, RemoteAddr: remoteAddr})
	return nil
}
