package rpc

import "sync"

// batch gathers the replies of one batch so that they go out as one array.
type batch struct {
	mu           sync.Mutex
	replies      [][]byte
	after        []func()
	remaining    int
	size, budget int // bytes of the replies filed so far, and their most
}

func newBatch(n, budget int) *batch {
	return &batch{replies: make([][]byte, n), remaining: n, budget: budget}
}

// spent reports whether the replies filed so far have passed the budget:
// the calls that have yet to run are refused.
func (b *batch) spent() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size > b.budget
}

// finish files the reply of one call (nil for a notification) and what is
// to run after it. When it is the last call of the batch to finish,
// finish returns the batch's reply (the array of replies, or nil when
// none of its calls is answered) and a function running every call's
// after, or nil when there are none.
func (b *batch) finish(slot int, reply []byte, after func()) ([]byte, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replies[slot] = reply
	b.size += len(reply)
	if after != nil {
		b.after = append(b.after, after)
	}
	b.remaining--
	if b.remaining > 0 {
		return nil, nil
	}
	var all func()
	if hooks := b.after; len(hooks) > 0 {
		all = func() {
			for _, f := range hooks {
				f()
			}
		}
	}
	answered := b.replies[:0]
	for _, r := range b.replies {
		if r != nil {
			answered = append(answered, r)
		}
	}
	if len(answered) == 0 {
		return nil, all
	}
	return appendBatch(nil, answered), all
}
