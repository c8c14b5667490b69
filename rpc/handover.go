package rpc

import "strconv"

// handover passes the calls the stream parsed to conn.Handle, past
// jsonrpc2: jsonrpc2 dispatches a stand-in request whose id is a
// connection-local sequence number, and Handle takes the parsed call by
// it. Only the read loop touches it: jsonrpc2 calls ReadObject and then
// Handle, one after the other, on the same goroutine.
type handover struct {
	queue   []call // parsed, not yet handed to jsonrpc2
	seq     uint64
	current call
	handed  bool
}

// add queues a parsed call.
func (h *handover) add(cl call) { h.queue = append(h.queue, cl) }

// empty reports whether every parsed call has been handed on.
func (h *handover) empty() bool { return len(h.queue) == 0 }

// hand takes the next parsed call and returns the stand-in request that
// jsonrpc2 is to dispatch for it.
func (h *handover) hand() []byte {
	cl := h.queue[0]
	h.queue[0] = call{}
	if h.queue = h.queue[1:]; len(h.queue) == 0 {
		h.queue = nil // let an idle connection hold no queue
	}
	h.seq++
	h.current, h.handed = cl, true
	return standIn(h.seq)
}

// take returns the call handed to jsonrpc2 under seq.
func (h *handover) take(seq uint64) (call, bool) {
	if !h.handed || seq != h.seq {
		return call{}, false
	}
	h.handed = false
	cl := h.current
	h.current = call{}
	return cl, true
}

// standIn renders the minimal request that hands a parsed call to
// jsonrpc2 under the connection-local sequence number seq. The method is
// left empty: conn.Handle takes the parsed call, method and all, from the
// handover, and a shorter message is cheaper for jsonrpc2 to decode.
func standIn(seq uint64) []byte {
	b := make([]byte, 0, 40)
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, `,"method":""}`...)
}
