package rpc

import (
	"context"
	"sync"
)

// Placed tells the batch that the call whose context is ctx belongs to
// that the call's effect has taken its place, such as a publication its
// offset: the batch's next Ordered call may start, while this one goes on
// (to wait for its commit, say). It does nothing for a call that is not
// an Ordered call of a batch, and after its first use.
//
// Ordered calls that never call it are placed when they return.
func Placed(ctx context.Context) {
	if t, _ := ctx.Value(turnKey{}).(*turn); t != nil {
		t.end(false)
	}
}

// Placer returns the function that calls Placed for ctx, or nil when ctx
// is not the context of an Ordered call of a batch: a layer that knows
// nothing of this package can be handed it.
func Placer(ctx context.Context) func() {
	t, _ := ctx.Value(turnKey{}).(*turn)
	if t == nil {
		return nil
	}
	return func() { t.end(false) }
}

type turnKey struct{}

// turn is an Ordered call's place in its batch's order. A batch's Ordered
// calls form a chain: each starts once the one before it has been placed,
// so their effects happen in the batch's order, yet what comes after
// placing (the wait for a group commit) is shared. A call that fails
// before it is placed breaks the chain: the calls after it are not run,
// which keeps what a batch does to its channels a prefix of what it
// asked for.
type turn struct {
	prev   *turn         // the batch's Ordered call before this one, or nil
	placed chan struct{} // closed once the call is placed or has ended
	once   sync.Once
	id     []byte // the call's request id; nil for a notification

	// Written before placed is closed.
	broken bool   // the chain ends here: this call failed unplaced, or was not run
	cause  []byte // the id of the call that failed, when broken
}

// nextTurn returns the turn of a batch's Ordered call whose request id is
// id, after last, the turn of the batch's Ordered call before it (nil for
// the first).
func nextTurn(last *turn, id []byte) *turn {
	return &turn{prev: last, placed: make(chan struct{}), id: id}
}

// wait waits for the call before t to be placed. It reports false when
// that call broke the chain, and t is then to be answered with notRun
// without running; or when ctx ended first. t may be nil.
func (t *turn) wait(ctx context.Context) bool {
	if t == nil || t.prev == nil {
		return true
	}
	select {
	case <-t.prev.placed:
		return !t.prev.broken
	case <-ctx.Done():
		return false
	}
}

// end places t, or, when failed, breaks the chain at t; unless t was
// placed already. t may be nil.
func (t *turn) end(failed bool) {
	if t != nil {
		t.close(failed, t.id)
	}
}

// skip ends t, not run because the call before it broke the chain (or
// because the connection went away while it waited).
func (t *turn) skip() {
	var cause []byte
	select {
	case <-t.prev.placed:
		cause = t.prev.cause
	default:
	}
	t.close(true, cause)
}

func (t *turn) close(broken bool, cause []byte) {
	t.once.Do(func() {
		t.broken, t.cause = broken, cause
		close(t.placed)
	})
}

// notRun answers t's call, which followed one that failed in its batch,
// without running it.
func (s *Server) notRun(ctx context.Context, req *request, t *turn) []byte {
	if err := ctx.Err(); err != nil {
		return s.answer(req, ErrorFrom(err))
	}
	which := "a notification"
	if c := t.prev.cause; c != nil {
		which = "the call with id " + string(c)
	}
	return s.answer(req, Errorf(CodeConflict,
		"Not run: %s, earlier in this batch, failed or was refused, and a batch's %s calls stop at the first that does; send this one again once that one is dealt with",
		which, s.reg.orderedNames()))
}
