package rpc_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/rpc"
)

// Replies of inline calls held back for the read loop count against the
// send queue, but nobody is elected to write them. If they could fill the
// queue, a reply the read loop itself then queues (a parse error here; a
// CodeUnavailable refusal during shutdown takes the same path) would wait
// for room that only the read loop could make, and the connection would
// hang until the ping timeout.
func TestHeldRepliesNeverBlockTheReadLoop(t *testing.T) {
	const queue = 8 // --send-queue=8; anything up to the calls one read takes in
	ts := newTestServer(t, rpc.Limits{SendQueue: queue}, registerInline)
	var frames [][]byte
	for i := range queue {
		frames = append(frames, maskedTextFrame(`{"jsonrpc":"2.0","method":"inline.subtract","params":[3,1],"id":`+itoa(i)+`}`))
	}
	frames = append(frames, maskedTextFrame(`{`))
	conn, br := dialWithFrames(t, ts, frames...)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for i := range queue {
		checkReply(t, readServerFrame(t, br), false, []want{{id: itoa(i), result: `2`}})
	}
	checkReply(t, readServerFrame(t, br), false, []want{{id: `null`, code: rpc.CodeParseError}})
}
