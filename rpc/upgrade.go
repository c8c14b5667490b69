package rpc

import (
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Upgrade accepts the WebSocket handshake in r and serves JSON-RPC on the
// connection for p, with writes coalesced: replies and
// notifications that are queued together leave in one system call. It
// returns once the connection is handed over; on a failed handshake the
// HTTP error has been written to w. onClose, when not nil, runs once the
// connection is closed, its socket too, or at once when it is refused.
//
// Upgrade does not check the Origin header: the caller must, before.
// Compression is off: with context takeover it costs about 1.2 MiB per
// connection, and JSON-RPC messages are small.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request, p Peer, onClose func()) error {
	if p.ProvenAt.IsZero() {
		p.ProvenAt = time.Now()
	}
	cw := &corkingWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // see above: origins are the caller's to check
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		if onClose != nil {
			onClose()
		}
		return fmt.Errorf("websocket handshake: %w", err)
	}
	s.serve(ws, cw.conn, p, onClose)
	return nil
}
