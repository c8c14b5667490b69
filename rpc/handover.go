package rpc

import "slices"

// handover passes the calls the stream parsed to conn.Handle, past
// jsonrpc2: jsonrpc2 dispatches a stand-in request, and Handle takes the
// parsed call it stands for. Only the read loop touches it: jsonrpc2
// calls ReadObject and then Handle, one after the other, on the same
// goroutine, so the call handed last is the one dispatched.
type handover struct {
	queue   []call // parsed, not yet handed to jsonrpc2
	current call
	handed  bool
}

// add queues a parsed call.
func (h *handover) add(cl call) { h.queue = append(h.queue, cl) }

// expect makes room for n more calls at once: those of a batch.
func (h *handover) expect(n int) { h.queue = slices.Grow(h.queue, n) }

// empty reports whether every parsed call has been handed on.
func (h *handover) empty() bool { return len(h.queue) == 0 }

// hand takes the next parsed call, for which jsonrpc2 is to dispatch the
// stand-in request.
func (h *handover) hand() {
	cl := h.queue[0]
	h.queue[0] = call{}
	if h.queue = h.queue[1:]; len(h.queue) == 0 {
		h.queue = nil // let an idle connection hold no queue
	}
	h.current, h.handed = cl, true
}

// take returns the call handed to jsonrpc2 last.
func (h *handover) take() (call, bool) {
	if !h.handed {
		return call{}, false
	}
	h.handed = false
	cl := h.current
	h.current = call{}
	return cl, true
}

// standIn is the request jsonrpc2 dispatches for each parsed call,
// decoded once (see parsingStream.ReadObject). It has no id (jsonrpc2
// takes it for a notification, which changes nothing: replies bypass it),
// and no method: Handle takes the parsed call, method and id and all,
// from the handover.
var standIn = []byte(`{"method":""}`)
