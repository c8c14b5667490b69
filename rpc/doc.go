// Package rpc serves JSON-RPC 2.0 over WebSocket and over HTTP POST. It
// knows nothing of HTTP routing or authentication: the api package
// authenticates, then hands the upgrade (Server.Upgrade) or a request
// body (Server.ServeHTTP) to a Server along with the caller's identity.
//
// Each WebSocket connection is a jsonrpc2.Conn
// (github.com/sourcegraph/jsonrpc2), which keeps what it does well: the
// read loop, dispatch to the handler and cancellation when the
// connection ends. A call goes
// from a text frame to that dispatch and back like this. The frame is
// parsed first, by the connection's parsingStream, because jsonrpc2
// closes the connection on malformed input, has no batches and cannot
// echo every id the specification allows; what is not a valid call is
// answered there. Each valid call waits in the connection's handover,
// and jsonrpc2 reads in its place a stand-in request, decoded once for
// the process by jsonrpc2's own decoder and copied for each call;
// conn.Handle, which jsonrpc2 dispatches it to, takes the parsed call
// back and runs it. The reply, with the
// client's own id, bypasses jsonrpc2's send path, which ignores contexts:
// it goes to the connection's writer, a bounded queue written by whoever
// finds it idle, corked so that what is queued together leaves in one
// system call. Notifications take the same way out.
package rpc
