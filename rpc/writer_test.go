package rpc

import (
	"bytes"
	"testing"
	"time"
)

// Held replies wait in the queue with nobody writing them, so they may
// take at most half of it, in frames and in bytes: a reply queued after
// them then finds room at once, and becomes the drainer that takes them
// along. TestHeldRepliesNeverBlockTheReadLoop shows what goes wrong on
// the wire when they may fill it.
func TestHeldRepliesTakeAtMostHalfTheQueue(t *testing.T) {
	t.Run("in frames", func(t *testing.T) {
		o := newOutbox(8, 1<<20)
		for i := range 4 {
			if !o.hold([]byte("{}")) {
				t.Fatalf("held reply %d refused in a queue of 8", i+1)
			}
		}
		if o.hold([]byte("{}")) {
			t.Fatal("a fifth held reply took more than half a queue of 8")
		}
		pushAtOnce(t, &o, []byte("{}"))
	})
	t.Run("in bytes", func(t *testing.T) {
		o := newOutbox(100, 100)
		if !o.hold(bytes.Repeat([]byte("x"), 50)) {
			t.Fatal("a held reply of half the bytes refused")
		}
		if o.hold([]byte("x")) {
			t.Fatal("held replies took more than half the bytes")
		}
		pushAtOnce(t, &o, bytes.Repeat([]byte("x"), 49))
	})
	t.Run("none once closed", func(t *testing.T) {
		o := newOutbox(8, 1<<20)
		o.close()
		if o.hold([]byte("{}")) {
			t.Fatal("a closed queue held a reply")
		}
	})
}

// pushAtOnce pushes a reply, which must neither wait for room nor find a
// drainer at work: nobody writes held replies.
func pushAtOnce(t *testing.T, o *outbox, frame []byte) {
	t.Helper()
	stop := make(chan struct{})
	timer := time.AfterFunc(5*time.Second, func() { close(stop) })
	defer timer.Stop()
	drain, err := o.push(frame, true, stop)
	if err != nil {
		t.Fatalf("a reply after the held ones waited for room nobody makes: %v", err)
	}
	if !drain {
		t.Fatal("a reply after the held ones was not elected to write them")
	}
}
