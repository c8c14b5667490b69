package rpc

import "context"

// AfterReply arranges for f to run once the reply to the call whose
// context is ctx is queued for the client, such as the start of a
// subscription whose notifications must not overtake the reply that
// starts it: anything queued on the session from f on is written after
// the reply. For a call in a batch, f runs once the whole batch's reply
// is queued; over HTTP, once the reply is made. It runs only if the
// handler returns no error (a result that fails to encode still runs it),
// on the connection's goroutines, and must not block.
//
// The hook comes with the call's context, as go-ethereum's notifier
// does, rather than with the result: results stay plain data. Only calls
// of methods marked Notifies carry it, sparing every other call the
// allocation; AfterReply panics elsewhere, as it is a programming error.
// The handler must call it before it returns.
func AfterReply(ctx context.Context, f func()) {
	h, _ := ctx.Value(afterReplyKey{}).(*afterReply)
	if h == nil {
		panic("rpc: AfterReply outside the call of a method marked Notifies")
	}
	h.fs = append(h.fs, f)
}

type afterReplyKey struct{}

// afterReply gathers a call's AfterReply hooks. Only the call's handler
// adds to it, and invoke reads it once the handler has returned, so it
// needs no lock.
type afterReply struct {
	fs []func()
}

// withAfterReply returns ctx carrying a new, empty set of hooks.
func withAfterReply(ctx context.Context) (context.Context, *afterReply) {
	h := &afterReply{}
	return context.WithValue(ctx, afterReplyKey{}, h), h
}

// all returns a function running every hook in the order they were
// added, or nil when there are none. h may be nil.
func (h *afterReply) all() func() {
	switch {
	case h == nil || len(h.fs) == 0:
		return nil
	case len(h.fs) == 1:
		return h.fs[0]
	}
	fs := h.fs
	return func() {
		for _, f := range fs {
			f()
		}
	}
}
