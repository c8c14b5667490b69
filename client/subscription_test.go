package client

// Unit tests of the Subscription state machine, without a network: the
// Client is never started, the socket is a dummy pointer, and the tests
// drive offer, starting, subscribed and Next by hand, as the supervisor
// and the socket's read loop would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const testChannel = "chat.lobby"

// newTestSub returns a subscription of a fresh, unstarted client with a
// buffer of n, in state, on sock, at pos when pos is not nil.
func newTestSub(t *testing.T, n int, state subState, sock *socket, pos *Position) *Subscription {
	t.Helper()
	c, err := New("", Options{Buffer: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := newSubscription(c, testChannel, pos)
	s.state, s.sock = state, sock
	c.subs[testChannel] = s
	return s
}

func pub(offset uint64) Publication {
	return Publication{Channel: testChannel, Offset: offset, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, offset))}
}

func pubs(from, to uint64) []Publication {
	var ps []Publication
	for o := from; o <= to; o++ {
		ps = append(ps, pub(o))
	}
	return ps
}

// queued drains s's buffer without going through Next, describing each
// item: a publication's offset, or "lost(AFTER->RESUMED)".
func queued(s *Subscription) []string {
	var out []string
	for {
		select {
		case it := <-s.items:
			if it.lost != nil {
				out = append(out, fmt.Sprintf("lost(%d/%s->%d/%s)", it.lost.After.Offset, it.lost.After.Epoch, it.lost.Resumed.Offset, it.lost.Resumed.Epoch))
			} else {
				out = append(out, fmt.Sprint(it.pub.Offset))
			}
		default:
			return out
		}
	}
}

func strs(offsets ...any) []string {
	var out []string
	for _, o := range offsets {
		out = append(out, fmt.Sprint(o))
	}
	return out
}

// kicked reports whether the supervisor was told there is work, and
// clears it.
func kicked(c *Client) bool {
	select {
	case <-c.wake:
		return true
	default:
		return false
	}
}

func (s *Subscription) snapshotState() (st subState, pos Position, have, broken bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.pos, s.have, s.broken()
}

func TestAcceptTakesOnlyTheNextOffset(t *testing.T) {
	sock := &socket{}
	s := newTestSub(t, 16, stateLive, sock, &Position{Offset: 5, Epoch: "e"})
	for _, o := range []uint64{6, 6, 5, 1, 7, 7, 8} {
		s.offer(sock, pub(o))
	}
	s.offer(&socket{}, pub(9)) // another socket's: ignored
	s.offer(nil, pub(9))
	if _, pos, _, broken := s.snapshotState(); pos.Offset != 8 || pos.Epoch != "e" || broken {
		t.Fatalf("after 6..8 with repeats: pos %+v broken %v; want 8/e, not broken", pos, broken)
	}
	if got := queued(s); !slices.Equal(got, strs(6, 7, 8)) {
		t.Fatalf("queued %v, want 6 7 8 once each", got)
	}
	if kicked(s.c) {
		t.Fatal("the supervisor was kicked with no gap")
	}
}

func TestAcceptGapBreaks(t *testing.T) {
	sock := &socket{}
	s := newTestSub(t, 16, stateLive, sock, &Position{Offset: 5, Epoch: "e"})
	s.offer(sock, pub(6))
	s.offer(sock, pub(8)) // 7 is missing
	_, pos, _, broken := s.snapshotState()
	if !broken || pos.Offset != 6 {
		t.Fatalf("after a gap: pos %+v broken %v; want 6, broken", pos, broken)
	}
	// Broken, it takes nothing live, not even the missing one.
	s.offer(sock, pub(7))
	s.offer(sock, pub(9))
	if _, pos, _, _ := s.snapshotState(); pos.Offset != 6 {
		t.Fatalf("a broken subscription took a live publication: pos %+v", pos)
	}
	if got := queued(s); !slices.Equal(got, strs(6)) {
		t.Fatalf("queued %v, want 6 alone", got)
	}
}

func TestAcceptGapWithEmptyBufferKicks(t *testing.T) {
	sock := &socket{}
	s := newTestSub(t, 16, stateLive, sock, &Position{Offset: 5, Epoch: "e"})
	s.offer(sock, pub(7))
	if _, _, _, broken := s.snapshotState(); !broken {
		t.Fatal("a gap did not break the subscription")
	}
	if !kicked(s.c) {
		t.Fatal("a gap with nothing to read did not kick the supervisor: nothing would resubscribe")
	}
}

func TestAcceptFullBufferBreaks(t *testing.T) {
	sock := &socket{}
	s := newTestSub(t, 3, stateLive, sock, &Position{Offset: 0, Epoch: "e"})
	for o := uint64(1); o <= 5; o++ {
		s.offer(sock, pub(o))
	}
	_, pos, _, broken := s.snapshotState()
	if !broken || pos.Offset != 3 {
		t.Fatalf("after 5 publications into a buffer of 3: pos %+v broken %v; want 3 (the last queued), broken", pos, broken)
	}
	if kicked(s.c) {
		t.Fatal("kicked while the reader has 3 publications to read")
	}
	if got := queued(s); !slices.Equal(got, strs(1, 2, 3)) {
		t.Fatalf("queued %v, want 1 2 3", got)
	}
}

func TestStartingWaitsForTheReader(t *testing.T) {
	sock := &socket{}
	s := newTestSub(t, 3, stateLive, sock, &Position{Offset: 0, Epoch: "e"})
	for o := uint64(1); o <= 4; o++ {
		s.offer(sock, pub(o))
	}
	if due, _, _ := s.starting(sock); due {
		t.Fatal("starting: due while broken with 3 publications unread")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for want := uint64(1); want <= 2; want++ {
		if p, err := s.Next(ctx); err != nil || p.Offset != want {
			t.Fatalf("Next: %+v, %v; want %d", p, err, want)
		}
		if due, _, _ := s.starting(sock); due {
			t.Fatalf("starting: due with %d publications unread", 3-want)
		}
	}
	if kicked(s.c) {
		t.Fatal("kicked before the reader caught up")
	}
	if p, err := s.Next(ctx); err != nil || p.Offset != 3 {
		t.Fatalf("Next: %+v, %v; want 3", p, err)
	}
	if !kicked(s.c) {
		t.Fatal("the reader caught up with a broken subscription, and the supervisor was not kicked")
	}
	due, since, resubscribe := s.starting(sock)
	if !due || !resubscribe || since == nil || *since != (Position{Offset: 3, Epoch: "e"}) {
		t.Fatalf("starting after catching up: due %v since %+v resubscribe %v; want true, 3/e, true", due, since, resubscribe)
	}
	if st, _, _, broken := s.snapshotState(); st != stateSubscribing || broken {
		t.Fatalf("after starting: state %v broken %v; want subscribing, not broken", st, broken)
	}
	// Under way: not due again.
	if due, _, _ := s.starting(sock); due {
		t.Fatal("starting: due twice")
	}
}

func TestStartingStates(t *testing.T) {
	sock := &socket{}
	t.Run("idle, fresh", func(t *testing.T) {
		s := newTestSub(t, 4, stateIdle, nil, nil)
		due, since, resubscribe := s.starting(sock)
		if !due || since != nil || resubscribe {
			t.Fatalf("starting: due %v since %+v resubscribe %v; want true, nil, false", due, since, resubscribe)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.sock != sock {
			t.Fatal("starting did not record the socket")
		}
	})
	t.Run("idle, with a position", func(t *testing.T) {
		s := newTestSub(t, 4, stateIdle, nil, &Position{Offset: 9, Epoch: "e"})
		due, since, resubscribe := s.starting(sock)
		if !due || since == nil || *since != (Position{Offset: 9, Epoch: "e"}) || resubscribe {
			t.Fatalf("starting: due %v since %+v resubscribe %v; want true, 9/e, false", due, since, resubscribe)
		}
	})
	t.Run("live and whole", func(t *testing.T) {
		s := newTestSub(t, 4, stateLive, sock, &Position{Offset: 9, Epoch: "e"})
		if due, _, _ := s.starting(sock); due {
			t.Fatal("starting: a live subscription with no gap is due")
		}
	})
	t.Run("live on another socket", func(t *testing.T) {
		s := newTestSub(t, 4, stateLive, &socket{}, &Position{Offset: 9, Epoch: "e"})
		s.state = stateBroken
		if due, _, _ := s.starting(sock); due {
			t.Fatal("starting: due on a socket it is not subscribed on")
		}
	})
	t.Run("ended", func(t *testing.T) {
		s := newTestSub(t, 4, stateEnded, nil, nil)
		if due, _, _ := s.starting(sock); due {
			t.Fatal("starting: an ended subscription is due")
		}
	})
	t.Run("unsubscribed by the server", func(t *testing.T) {
		s := newTestSub(t, 4, stateLive, sock, &Position{Offset: 9, Epoch: "e"})
		s.unsubscribed(&socket{}) // another socket's: nothing
		if due, _, _ := s.starting(sock); due {
			t.Fatal("another socket's channelUnsubscribed broke the subscription")
		}
		s.unsubscribed(sock)
		if !kicked(s.c) {
			t.Fatal("channelUnsubscribed did not kick the supervisor")
		}
		due, since, resubscribe := s.starting(sock)
		if !due || !resubscribe || since == nil || since.Offset != 9 {
			t.Fatalf("starting after channelUnsubscribed: due %v since %+v resubscribe %v", due, since, resubscribe)
		}
	})
	t.Run("detached", func(t *testing.T) {
		s := newTestSub(t, 4, stateSubscribing, sock, &Position{Offset: 9, Epoch: "e"})
		s.offer(sock, pub(10)) // pending
		s.detach()
		st, _, _, _ := s.snapshotState()
		s.mu.Lock()
		pending, sk := len(s.pending), s.sock
		s.mu.Unlock()
		if st != stateIdle || pending != 0 || sk != nil {
			t.Fatalf("after detach: state %v pending %d sock %p; want idle, none, nil", st, pending, sk)
		}
		s.offer(sock, pub(10)) // the old socket's: ignored
		if got := queued(s); len(got) != 0 {
			t.Fatalf("a detached subscription queued %v", got)
		}
	})
}

// subscribing returns a subscription with a subscribe under way on a new
// socket, from pos (nil for a fresh one).
func subscribing(t *testing.T, n int, pos *Position) (*Subscription, *socket, *Position) {
	t.Helper()
	sock := &socket{}
	s := newTestSub(t, n, stateIdle, nil, pos)
	due, since, _ := s.starting(sock)
	if !due {
		t.Fatal("starting: not due")
	}
	return s, sock, since
}

func TestSubscribedFresh(t *testing.T) {
	s, _, since := subscribing(t, 8, nil)
	if !s.subscribed(since, subscribed{Channel: testChannel, Offset: 42, Epoch: "e", Publications: []Publication{}}) {
		t.Fatal("subscribed reported the subscription ended")
	}
	st, pos, have, broken := s.snapshotState()
	if st != stateLive || !have || pos != (Position{Offset: 42, Epoch: "e"}) || broken {
		t.Fatalf("after a fresh subscribe: state %v have %v pos %+v broken %v", st, have, pos, broken)
	}
	select {
	case err := <-s.first:
		if err != nil {
			t.Fatalf("first: %v", err)
		}
	default:
		t.Fatal("Subscribe was not answered")
	}
	if got := queued(s); len(got) != 0 {
		t.Fatalf("a fresh subscribe queued %v", got)
	}
}

func TestSubscribedRecovered(t *testing.T) {
	s, sock, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s.subscribed(since, subscribed{Offset: 6, Epoch: "e", Recovered: true, Publications: pubs(4, 6)})
	if _, pos, _, broken := s.snapshotState(); pos != (Position{Offset: 6, Epoch: "e"}) || broken {
		t.Fatalf("pos %+v broken %v; want 6/e, not broken", pos, broken)
	}
	s.offer(sock, pub(7))
	if got := queued(s); !slices.Equal(got, strs(4, 5, 6, 7)) {
		t.Fatalf("queued %v, want 4 5 6 and then the live 7", got)
	}
}

// TestSubscribedContiguousPrefix: a recovery cut short by the server's
// limit holds the oldest part of what was missed. It is taken, nothing
// is said lost, and the subscription comes back for the rest.
func TestSubscribedContiguousPrefix(t *testing.T) {
	s, sock, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Recovered: false, Publications: pubs(4, 6)})
	_, pos, _, broken := s.snapshotState()
	if pos != (Position{Offset: 6, Epoch: "e"}) || !broken {
		t.Fatalf("pos %+v broken %v; want 6/e, broken (to come back for 7..10)", pos, broken)
	}
	s.offer(sock, pub(11)) // live, but 7..10 come first
	if got := queued(s); !slices.Equal(got, strs(4, 5, 6)) {
		t.Fatalf("queued %v, want 4 5 6 and no LostError", got)
	}
	// The reader has read it all (queued drained it): it resubscribes from 6.
	due, since2, resubscribe := s.starting(sock)
	if !due || !resubscribe || since2 == nil || *since2 != (Position{Offset: 6, Epoch: "e"}) {
		t.Fatalf("starting: due %v since %+v resubscribe %v; want true 6/e true", due, since2, resubscribe)
	}
	s.subscribed(since2, subscribed{Offset: 11, Epoch: "e", Recovered: true, Publications: pubs(7, 11)})
	if got := queued(s); !slices.Equal(got, strs(7, 8, 9, 10, 11)) {
		t.Fatalf("after resubscribing: queued %v, want 7..11", got)
	}
}

func TestSubscribedTrimmedHistory(t *testing.T) {
	s, sock, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Recovered: false, Publications: pubs(8, 10)})
	_, pos, _, broken := s.snapshotState()
	if pos != (Position{Offset: 10, Epoch: "e"}) || broken {
		t.Fatalf("pos %+v broken %v; want 10/e, not broken", pos, broken)
	}
	s.offer(sock, pub(11))
	if got := queued(s); !slices.Equal(got, []string{"lost(3/e->7/e)", "8", "9", "10", "11"}) {
		t.Fatalf("queued %v, want lost 4..7, then 8..11", got)
	}
}

// TestSubscribedHistoryGone: the channel went on, and its history keeps
// nothing after since (history-ttl): everything up to the reply's offset
// is lost.
func TestSubscribedHistoryGone(t *testing.T) {
	s, _, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Recovered: false, Publications: []Publication{}})
	if _, pos, _, broken := s.snapshotState(); pos != (Position{Offset: 10, Epoch: "e"}) || broken {
		t.Fatalf("pos %+v broken %v; want 10/e, not broken", pos, broken)
	}
	if got := queued(s); !slices.Equal(got, []string{"lost(3/e->10/e)"}) {
		t.Fatalf("queued %v", got)
	}
}

// TestSubscribedEpochChange: another history (the channel was removed,
// or hub.db lost) is all new to the reader: it is told of the loss, and
// the subscription comes back for the new history from its start.
func TestSubscribedEpochChange(t *testing.T) {
	s, sock, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s.subscribed(since, subscribed{Offset: 2, Epoch: "f", Recovered: false, Publications: []Publication{}})
	if _, pos, _, broken := s.snapshotState(); pos != (Position{Offset: 0, Epoch: "f"}) || !broken {
		t.Fatalf("pos %+v broken %v; want 0/f, broken (to recover 1 and 2)", pos, broken)
	}
	s.offer(sock, pub(3)) // live, but 1 and 2 come first
	if got := queued(s); !slices.Equal(got, []string{"lost(3/e->0/f)"}) {
		t.Fatalf("queued %v, want the loss (epoch e to f) alone", got)
	}
	due, since2, resubscribe := s.starting(sock)
	if !due || !resubscribe || since2 == nil || *since2 != (Position{Offset: 0, Epoch: "f"}) {
		t.Fatalf("starting: due %v resubscribe %v since %+v; want a resubscribe from 0/f", due, resubscribe, since2)
	}
	s.subscribed(since2, subscribed{Offset: 3, Epoch: "f", Recovered: true, Publications: pubs(1, 3)})
	if got := queued(s); !slices.Equal(got, strs(1, 2, 3)) {
		t.Fatalf("queued %v, want 1 2 3 of f", got)
	}
}

// TestSubscribedNoRoomForLostError: a reader whose buffer is full cannot be
// told of the loss yet: the subscription keeps its old position, and
// tries again once the reader has caught up.
func TestSubscribedNoRoomForLostError(t *testing.T) {
	s, sock, since := subscribing(t, 2, &Position{Offset: 3, Epoch: "e"})
	s.items <- item{pub: pub(2)}
	s.items <- item{pub: pub(3)}
	s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Recovered: false, Publications: pubs(8, 10)})
	_, pos, _, broken := s.snapshotState()
	if pos != (Position{Offset: 3, Epoch: "e"}) || !broken {
		t.Fatalf("pos %+v broken %v; want the old 3/e, broken", pos, broken)
	}
	if due, _, _ := s.starting(sock); due {
		t.Fatal("due before the reader caught up")
	}
	if got := queued(s); !slices.Equal(got, strs(2, 3)) {
		t.Fatalf("queued %v, want what was there before, 2 3", got)
	}
	due, since2, _ := s.starting(sock)
	if !due || since2 == nil || *since2 != (Position{Offset: 3, Epoch: "e"}) {
		t.Fatalf("starting once caught up: due %v since %+v; want 3/e", due, since2)
	}
	s.subscribed(since2, subscribed{Offset: 10, Epoch: "e", Recovered: false, Publications: pubs(9, 10)})
	// The buffer holds 2: the LostError and 9; 10 waits for the next round.
	if got := queued(s); !slices.Equal(got, []string{"lost(3/e->8/e)", "9"}) {
		t.Fatalf("queued %v, want lost 4..8, then 9", got)
	}
	if _, pos, _, broken := s.snapshotState(); pos != (Position{Offset: 9, Epoch: "e"}) || !broken {
		t.Fatalf("pos %+v broken %v; want 9/e, broken", pos, broken)
	}
}

func TestSubscribedNoRoomForLostErrorOnEpochChange(t *testing.T) {
	s, _, since := subscribing(t, 1, &Position{Offset: 3, Epoch: "e"})
	s.items <- item{pub: pub(3)}
	s.subscribed(since, subscribed{Offset: 5, Epoch: "f", Publications: []Publication{}})
	if _, pos, _, broken := s.snapshotState(); pos != (Position{Offset: 3, Epoch: "e"}) || !broken {
		t.Fatalf("pos %+v broken %v; want the old 3/e, broken", pos, broken)
	}
}

// TestSubscribedReplaysPending: publications that arrived while the
// subscribe was out follow the reply's, repeats dropped.
func TestSubscribedReplaysPending(t *testing.T) {
	t.Run("fresh", func(t *testing.T) {
		s, sock, since := subscribing(t, 8, nil)
		for _, o := range []uint64{11, 12} {
			s.offer(sock, pub(o))
		}
		if got := queued(s); len(got) != 0 {
			t.Fatalf("queued %v before the reply", got)
		}
		s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Publications: []Publication{}})
		if got := queued(s); !slices.Equal(got, strs(11, 12)) {
			t.Fatalf("queued %v, want 11 12", got)
		}
		if _, pos, _, broken := s.snapshotState(); pos.Offset != 12 || broken {
			t.Fatalf("pos %+v broken %v", pos, broken)
		}
	})
	t.Run("recovering", func(t *testing.T) {
		s, sock, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
		// An old subscription's stragglers, then the new one's.
		for _, o := range []uint64{5, 6, 7, 8} {
			s.offer(sock, pub(o))
		}
		s.subscribed(since, subscribed{Offset: 6, Epoch: "e", Recovered: true, Publications: pubs(4, 6)})
		if got := queued(s); !slices.Equal(got, strs(4, 5, 6, 7, 8)) {
			t.Fatalf("queued %v, want 4..8 once each", got)
		}
		if _, pos, _, broken := s.snapshotState(); pos.Offset != 8 || broken {
			t.Fatalf("pos %+v broken %v", pos, broken)
		}
	})
	t.Run("with a gap", func(t *testing.T) {
		s, sock, since := subscribing(t, 8, nil)
		s.offer(sock, pub(11))
		s.offer(sock, pub(13))
		s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Publications: []Publication{}})
		if _, pos, _, broken := s.snapshotState(); pos.Offset != 11 || !broken {
			t.Fatalf("pos %+v broken %v; want 11, broken", pos, broken)
		}
	})
}

func TestSubscribedPendingOverflow(t *testing.T) {
	s, sock, since := subscribing(t, 2, nil)
	for _, o := range []uint64{11, 12, 13} {
		s.offer(sock, pub(o))
	}
	s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Publications: []Publication{}})
	_, pos, _, broken := s.snapshotState()
	if !broken || pos.Offset != 12 {
		t.Fatalf("after the pending list overflowed: pos %+v broken %v; want 12, broken", pos, broken)
	}
	if got := queued(s); !slices.Equal(got, strs(11, 12)) {
		t.Fatalf("queued %v, want 11 12", got)
	}
	// The reader has caught up: it resubscribes from 12 and gets 13.
	due, since2, _ := s.starting(sock)
	if !due || since2 == nil || since2.Offset != 12 {
		t.Fatalf("starting: due %v since %+v; want 12", due, since2)
	}
}

// TestPendingOverflowWithRoomToSpare: the pending list overflows when it
// holds as many publications as the buffer; a reply that makes most of
// them repeats must still resubscribe for the ones that were dropped.
func TestPendingOverflowWithRoomToSpare(t *testing.T) {
	s, sock, since := subscribing(t, 3, nil)
	for o := uint64(8); o <= 12; o++ {
		s.offer(sock, pub(o))
	}
	s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Publications: []Publication{}})
	_, pos, _, broken := s.snapshotState()
	if pos.Offset != 10 || !broken {
		t.Fatalf("pos %+v broken %v; want 10 (11 and 12 were dropped), broken", pos, broken)
	}
	if !kicked(s.c) {
		t.Fatal("nothing to read, broken, and the supervisor was not kicked")
	}
}

func TestSubscribedAfterEnd(t *testing.T) {
	s, _, since := subscribing(t, 4, nil)
	s.end(ErrClosed)
	if s.subscribed(since, subscribed{Offset: 1, Epoch: "e"}) {
		t.Fatal("subscribed reported true for an ended subscription")
	}
	if err := <-s.first; !errors.Is(err, ErrClosed) {
		t.Fatalf("first: %v, want ErrClosed", err)
	}
}

func TestNextLostThenPublications(t *testing.T) {
	s, _, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s.subscribed(since, subscribed{Offset: 10, Epoch: "e", Publications: pubs(8, 10)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.Next(ctx)
	var lost *LostError
	if !errors.As(err, &lost) {
		t.Fatalf("first Next: %v, want a *LostError", err)
	}
	want := LostError{Channel: testChannel, After: Position{Offset: 3, Epoch: "e"}, Resumed: Position{Offset: 7, Epoch: "e"}}
	if *lost != want {
		t.Fatalf("LostError %+v, want %+v", *lost, want)
	}
	if msg := lost.Error(); msg != "chat.lobby: publications 4 to 7 were lost: the history no longer holds them" {
		t.Errorf("LostError message %q", msg)
	}
	for o := uint64(8); o <= 10; o++ {
		p, err := s.Next(ctx)
		if err != nil || p.Offset != o || string(p.Data) != fmt.Sprintf(`{"n":%d}`, o) {
			t.Fatalf("Next: %+v, %v; want publication %d", p, err, o)
		}
	}
	// Nothing more: Next waits until its context ends.
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := s.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing queued: %v, want the context's error", err)
	}
}

func TestNextAfterEndDrainsFirst(t *testing.T) {
	sock := &socket{}
	s := newTestSub(t, 8, stateLive, sock, &Position{Offset: 0, Epoch: "e"})
	for o := uint64(1); o <= 3; o++ {
		s.offer(sock, pub(o))
	}
	cause := &ConnectionError{URL: "ws://x/rpc", Err: ErrUnauthorized}
	if _, live := s.c.endSubscription(s, cause); !live {
		t.Fatal("end: a live subscription reported not live")
	}
	s.offer(sock, pub(4)) // after the end: dropped
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Many times over, as Next picks among ready cases at random.
	for o := uint64(1); o <= 3; o++ {
		if p, err := s.Next(ctx); err != nil || p.Offset != o {
			t.Fatalf("Next after the end: %+v, %v; want the queued %d", p, err, o)
		}
	}
	for range 3 {
		_, err := s.Next(ctx)
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Next once drained: %v, want the end's error", err)
		}
	}
	if s.c.subscription(testChannel) != nil {
		t.Fatal("the ended subscription is still the client's")
	}
}

// TestNextAfterEndDrainsFirstRepeatedly repeats the race between a ready
// item and the end in Next's select.
func TestNextAfterEndDrainsFirstRepeatedly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	refused := &Error{Code: -32003, Message: "forbidden"}
	for range 200 {
		sock := &socket{}
		s := newTestSub(t, 1, stateLive, sock, &Position{Offset: 0, Epoch: "e"})
		s.offer(sock, pub(1))
		s.end(refused)
		if p, err := s.Next(ctx); err != nil || p.Offset != 1 {
			t.Fatalf("Next: %+v, %v; want 1", p, err)
		}
		if _, err := s.Next(ctx); err != refused {
			t.Fatalf("Next: %v, want the server's refusal", err)
		}
	}
}

// TestNextAfterCloseStopsAtOnce: Close asks for nothing more; what was
// queued is dropped and Next says ErrClosed.
func TestNextAfterCloseStopsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sock := &socket{}
	s := newTestSub(t, 4, stateSubscribing, sock, &Position{Offset: 0, Epoch: "e"})
	s.subscribed(&Position{Offset: 0, Epoch: "e"}, subscribed{Offset: 3, Epoch: "e", Recovered: true, Publications: pubs(1, 3)})
	// Not live on a real socket: end it as Close does, without the
	// unsubscribe call.
	s.c.endSubscription(s, ErrClosed)
	for range 3 {
		if p, err := s.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %+v, %v; want ErrClosed", p, err)
		}
	}
}

func TestLostErrorMessages(t *testing.T) {
	e := &LostError{Channel: "c", After: Position{Offset: 3, Epoch: "a"}, Resumed: Position{Offset: 0, Epoch: "b"}}
	if got, want := e.Error(), `c: publications lost: the channel's history was removed or lost (epoch "a", now "b"); going on from what the new history holds`; got != want {
		t.Errorf("epoch change: %q, want %q", got, want)
	}
}

func TestClientClosedRefusesSubscribe(t *testing.T) {
	c, err := New("", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close() // twice is fine
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Subscribe(ctx, "x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe on a closed client: %v, want ErrClosed", err)
	}
}

// TestSubscribedHistoryWentBack: the server answers a since beyond the
// channel's latest offset, in the same epoch (its history went back, as
// when hub.db is restored from a backup), with recovered false and no
// publications. The subscription goes on from the channel's offset; its
// LostError must not describe a backward range of lost publications.
func TestSubscribedHistoryWentBack(t *testing.T) {
	s, sock, since := subscribing(t, 8, &Position{Offset: 10, Epoch: "e"})
	s.subscribed(since, subscribed{Offset: 5, Epoch: "e", Publications: []Publication{}})
	if _, pos, _, broken := s.snapshotState(); pos != (Position{Offset: 5, Epoch: "e"}) || broken {
		t.Fatalf("pos %+v broken %v; want 5/e, not broken", pos, broken)
	}
	s.offer(sock, pub(6))
	got := queued(s)
	if !slices.Equal(got, []string{"lost(10/e->5/e)", "6"}) {
		t.Fatalf("queued %v, want a LostError, then 6", got)
	}
	lost := &LostError{Channel: testChannel, After: Position{Offset: 10, Epoch: "e"}, Resumed: Position{Offset: 5, Epoch: "e"}}
	if msg := lost.Error(); strings.Contains(msg, "11 to 5") {
		t.Errorf("LostError message %q: a backward range", msg)
	}
}

// TestUnsubscribedWhileSubscribing: the server may end the subscription
// being made (channelRemove) before the reply has been handled, since
// jsonrpc2 reads on meanwhile. The subscription must be made again, not
// left for live when the server has dropped it.
func TestUnsubscribedWhileSubscribing(t *testing.T) {
	s, sock, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s.unsubscribed(sock)
	s.subscribed(since, subscribed{Offset: 3, Epoch: "e", Recovered: true, Publications: []Publication{}})
	if _, _, _, broken := s.snapshotState(); !broken {
		t.Fatal("the subscription ended by the server is taken for live")
	}
	due, since2, resubscribe := s.starting(sock)
	if !due || !resubscribe || since2 == nil || *since2 != (Position{Offset: 3, Epoch: "e"}) {
		t.Fatalf("starting: due %v resubscribe %v since %+v; want a resubscribe from 3/e", due, resubscribe, since2)
	}
}

// TestPositionFollowsTheReader: Position is what Next returned last, not
// what is queued.
func TestPositionFollowsTheReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, _, since := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	if got := s.Position(); got != *since {
		t.Fatalf("Position before any Next: %+v, want since %+v", got, *since)
	}
	s.subscribed(since, subscribed{Offset: 6, Epoch: "e", Recovered: true, Publications: pubs(4, 6)})
	if _, err := s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Position(); got != (Position{Offset: 4, Epoch: "e"}) {
		t.Fatalf("Position after one Next: %+v, want 4/e", got)
	}

	// After a loss, it is where the LostError says the reader goes on.
	s2, _, since2 := subscribing(t, 8, &Position{Offset: 3, Epoch: "e"})
	s2.subscribed(since2, subscribed{Offset: 9, Epoch: "e", Publications: pubs(8, 9)})
	var lost *LostError
	if _, err := s2.Next(ctx); !errors.As(err, &lost) {
		t.Fatalf("Next: %v, want a LostError", err)
	}
	if got := s2.Position(); got != (Position{Offset: 7, Epoch: "e"}) {
		t.Fatalf("Position after the loss: %+v, want 7/e", got)
	}
}
