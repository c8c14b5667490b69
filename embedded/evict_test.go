package embedded

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/service"
)

// recorder is a subscriber that keeps the offsets it is given.
type recorder struct {
	member service.Member
	mu     sync.Mutex
	got    []uint64
}

func newRecorder(conn string) *recorder {
	return &recorder{member: service.Member{User: "u", ConnectionID: conn, Since: time.Now()}}
}

func (r *recorder) Receive(ev *service.Event) {
	if ev.Kind == service.EventPublication {
		r.mu.Lock()
		r.got = append(r.got, ev.Publication.Offset)
		r.mu.Unlock()
	}
}

func (r *recorder) Member() service.Member { return r.member }

func (r *recorder) offsets() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func inMemory(e *Engine, name string) bool {
	e.seq.mu.Lock()
	defer e.seq.mu.Unlock()
	return e.seq.channels[name] != nil
}

func listed(t *testing.T, e *Engine, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool) {
	t.Helper()
	infos, more, err := e.Channels(context.Background(), prefix, visible, limit)
	if err != nil {
		t.Fatal(err)
	}
	return infos, more
}

// Idle channels leave memory, beyond the cache: the sequencer's and the
// fan-out's; a channel with subscribers stays until they go.
func TestIdleChannelsLeaveMemory(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{CachedChannels: 3})
	r := newRecorder("c")
	if _, err := s.Subscribe(context.Background(), "kept", r, false); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mustPublish(t, s, pub(fmt.Sprint("c", i), i), "")
	}
	if all, idle := s.seq.inMemory(); all != 4 || idle != 3 || !inMemory(s, "kept") {
		t.Errorf("after using 10 channels with a cache of 3: %d in memory, %d idle, kept there: %v; want 4, 3 idle, and kept",
			all, idle, inMemory(s, "kept"))
	}
	// The fan-out holds only the channel with a subscriber: a channel it
	// held would be listed with its offset.
	if infos, _ := s.local.Channels("", all, 100); !slices.Equal(infos, []service.ChannelInfo{{Name: "kept", Subscribers: 1}}) {
		t.Errorf("the fan-out holds %+v; want only kept", infos)
	}
	s.Unsubscribe("kept", r)
	if all, idle := s.seq.inMemory(); all != 3 || idle != 3 {
		t.Errorf("after the last subscriber left: %d in memory, %d idle; want 3", all, idle)
	}
}

// With no cache, a channel leaves memory as soon as nothing holds it,
// but never while a subscriber does, and comes back as it was.
func TestEvictionKeepsWhatIsHeld(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{CachedChannels: -1})
	r := newRecorder("c")
	if pos, err := s.Subscribe(context.Background(), "a", r, false); err != nil || pos.Offset != 0 {
		t.Fatalf("Subscribe = %+v, %v", pos, err)
	}
	for i := 1; i <= 3; i++ {
		mustPublish(t, s, pub("a", i), "")
		mustPublish(t, s, pub(fmt.Sprint("other", i), i), "")
	}
	if !inMemory(s, "a") || inMemory(s, "other1") {
		t.Errorf("in memory: a %v, other1 %v; want a (subscribed) only", inMemory(s, "a"), inMemory(s, "other1"))
	}
	mustPublish(t, s, pub("a", 4), "")
	poll.Until(t, 5*time.Second, "the subscriber to get offset 4", func() bool { return len(r.offsets()) == 4 })
	if got := r.offsets(); !slices.Equal(got, span(1, 4)) {
		t.Errorf("the subscriber got %v, want 1 to 4", got)
	}
	s.Unsubscribe("a", r)
	if inMemory(s, "a") {
		t.Error("a stayed in memory after its last subscriber left")
	}
	if pos := positionsOf(t, s, "a")["a"]; pos != (service.Position{Offset: 4, Epoch: s.seq.epoch}) {
		t.Errorf("a loaded again at %+v, want offset 4", pos)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, span(1, 4)) {
		t.Errorf("a's history after eviction: %v", got)
	}
	if res := mustPublish(t, s, pub("a", 5), ""); res.Offset != 5 {
		t.Errorf("a after eviction went on at %d, want 5", res.Offset)
	}
}

// After a restart nothing is loaded; each channel, touched or not, is
// where it was: offset, epoch, keys, and a history trimmed to nothing
// keeps its offset, so that no offset is given twice in one epoch.
func TestLazyLoadAfterRestart(t *testing.T) {
	path := tempPath(t)
	opts := Options{IdempotencyWindow: time.Hour, MaxAge: time.Hour, CachedChannels: -1}
	s := openEngine(t, path, opts)
	for i := 1; i <= 3; i++ {
		mustPublish(t, s, pub("a", i), fmt.Sprint("k", i))
	}
	mustPublish(t, s, pub("b", 1), "")
	mustPublish(t, s, pub("c", 1), "")
	if _, err := s.Remove(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		old := pub("trimmed", i)
		old.Time = old.Time.Add(-2 * time.Hour)
		mustPublish(t, s, old, "")
	}
	s.commits.trim()
	if got := readAll(t, s, "trimmed"); len(got) != 0 {
		t.Fatalf("trimmed still holds %v", offsets(got))
	}
	names := []string{"a", "b", "c", "trimmed", "never"}
	before := positionsOf(t, s, names...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openEngine(t, path, opts)
	if all, _ := s.seq.inMemory(); all != 0 {
		t.Errorf("%d channels loaded at start", all)
	}
	want := []service.ChannelInfo{{Name: "a", Offset: 3}, {Name: "b", Offset: 1}, {Name: "trimmed", Offset: 2}}
	if infos, more := listed(t, s, "", all, 10); !slices.Equal(infos, want) || more {
		t.Errorf("Channels after restart = %+v, %v; want %+v", infos, more, want)
	}
	if after := positionsOf(t, s, names...); !mapsEqual(before, after) {
		t.Errorf("positions before closing %v, after reopening %v", before, after)
	}
	if res := mustPublish(t, s, pub("a", 9), "k2"); res != (service.Published{Position: service.Position{Offset: 2, Epoch: s.seq.epoch}, Duplicate: true}) {
		t.Errorf("a key seen before the restart, on a channel loaded since: %+v, want offset 2, duplicate", res)
	}
	for _, name := range names {
		res := mustPublish(t, s, pub(name, 9), "")
		if want := before[name]; res.Epoch != want.Epoch || res.Offset != want.Offset+1 {
			t.Errorf("%s after restart went on at %+v, want the offset after %+v", name, res.Position, want)
		}
	}
}

// A channel whose history expired, dropped from memory and loaded again,
// goes on after its last offset in its epoch: a client holding
// {epoch, 2} must not be told of a new publication 2.
func TestTrimmedThenDroppedKeepsItsPlace(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{MaxAge: time.Hour, CachedChannels: -1})
	for i := 1; i <= 2; i++ {
		old := pub("t", i)
		old.Time = old.Time.Add(-2 * time.Hour)
		mustPublish(t, s, old, "")
	}
	s.commits.trim()
	if got := readAll(t, s, "t"); len(got) != 0 || inMemory(s, "t") {
		t.Fatalf("after trimming, t holds %v, in memory %v; want nothing, dropped", offsets(got), inMemory(s, "t"))
	}
	at := service.Position{Offset: 2, Epoch: s.seq.epoch}
	if pos := s.local.Position("t"); pos.Offset != 0 {
		t.Fatalf("the fan-out holds t at %+v", pos) // it should not hold t at all
	}
	r := newRecorder("c")
	if pos, err := s.Subscribe(context.Background(), "t", r, false); err != nil || pos != at {
		t.Errorf("Subscribe to t = %+v, %v; want %+v", pos, err, at)
	}
	if h, err := s.History(context.Background(), "t", service.HistoryQuery{Limit: 10}); err != nil || h.Position != at || len(h.Publications) != 0 {
		t.Errorf("History of t = %+v, %v; want none at %+v", h, err, at)
	}
	if res := mustPublish(t, s, pub("t", 3), ""); res.Position != (service.Position{Offset: 3, Epoch: at.Epoch}) {
		t.Errorf("t went on at %+v, want offset 3 in %q", res.Position, at.Epoch)
	}
}

// channelList merges the database's channels (dropped from memory or
// not) with the fan-out's subscribed ones, pages by limit, and lists no
// channel whose first publication is not yet committed.
func TestChannelsAcrossMemory(t *testing.T) {
	path := tempPath(t)
	s := openEngine(t, path, Options{CachedChannels: 1})
	ctx := context.Background()
	for _, name := range []string{"s1", "s3", "s5", "s4", "s2"} {
		mustPublish(t, s, pub(name, 1), "")
	}
	if _, err := s.Remove(ctx, "s5"); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, s, pub("s2", 2), "") // the one cached
	for _, sub := range []struct{ name, conn string }{{"s0", "c1"}, {"s4", "c1"}, {"s4", "c2"}} {
		if _, err := s.Subscribe(ctx, sub.name, newRecorder(sub.conn), false); err != nil {
			t.Fatal(err)
		}
	}
	if inMemory(s, "s1") || inMemory(s, "s3") || !inMemory(s, "s2") {
		t.Fatalf("in memory: s1 %v, s3 %v, s2 %v; want s2 only of them", inMemory(s, "s1"), inMemory(s, "s3"), inMemory(s, "s2"))
	}
	all5 := []service.ChannelInfo{{Name: "s0", Subscribers: 1}, {Name: "s1", Offset: 1}, {Name: "s2", Offset: 2},
		{Name: "s3", Offset: 1}, {Name: "s4", Offset: 1, Subscribers: 2}}
	for _, tt := range []struct {
		prefix  string
		visible func(string) bool
		limit   int
		want    []service.ChannelInfo
		more    bool
	}{
		{"", all, 10, all5, false},
		{"s", all, 5, all5, false},
		{"s", all, 4, all5[:4], true},
		{"", all, 2, all5[:2], true},
		{"s4", all, 10, all5[4:], false},
		{"s", func(n string) bool { return n != "s1" && n != "s4" }, 3, []service.ChannelInfo{all5[0], all5[2], all5[3]}, false},
		{"s", func(n string) bool { return n != "s0" }, 1, all5[1:2], true},
		{"t", all, 10, []service.ChannelInfo{}, false},
	} {
		if infos, more := listed(t, s, tt.prefix, tt.visible, tt.limit); !slices.Equal(infos, tt.want) || more != tt.more {
			t.Errorf("Channels(%q, limit %d) = %+v, more %v; want %+v, more %v", tt.prefix, tt.limit, infos, more, tt.want, tt.more)
		}
	}

	// A publication queued, not committed: another connection holds the
	// write lock, so that the committer waits in BEGIN.
	unlock := lockWrites(t, ctx, path)
	done := make(chan error, 1)
	go func() {
		_, err := s.Publish(ctx, pub("s6", 1), "")
		done <- err
	}()
	awaitTaken(t, s, "s6", 1)
	infos, _ := listed(t, s, "", all, 10)
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(infos, all5) {
		t.Errorf("with s6's first publication not committed, Channels = %+v; want %+v", infos, all5)
	}
	if infos, _ := listed(t, s, "s6", all, 10); !slices.Equal(infos, []service.ChannelInfo{{Name: "s6", Offset: 1}}) {
		t.Errorf("once committed, Channels(s6) = %+v", infos)
	}
}

// Subscribers that join channels while they are loaded, dropped and
// published to get every publication after the position they were
// given, once each, in order.
func TestSubscribeWhileLoading(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{CachedChannels: -1})
	const channels, each, subscribers = 8, 40, 4
	type joined struct {
		r   *recorder
		pos service.Position
	}
	var mu sync.Mutex
	subs := map[string][]joined{}
	var wg sync.WaitGroup
	for c := range channels {
		name := fmt.Sprint("ch", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				mustPublish(t, s, pub(name, i), "")
			}
		}()
		for k := range subscribers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(k) * time.Millisecond) // spread the joins; any order will do
				r := newRecorder(fmt.Sprint(name, k))
				pos, err := s.Subscribe(context.Background(), name, r, false)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				subs[name] = append(subs[name], joined{r, pos})
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for name, js := range subs {
		for _, j := range js {
			poll.Until(t, 5*time.Second, "every publication to arrive", func() bool {
				got := j.r.offsets()
				return len(got) > 0 && got[len(got)-1] == each || j.pos.Offset == each
			})
			if got := j.r.offsets(); !sameOffsets(got, span(j.pos.Offset+1, each)) {
				t.Errorf("%s: a subscriber given %d got %v, want %d to %d", name, j.pos.Offset, got, j.pos.Offset+1, each)
			}
		}
	}
}

// A subscriber that joins while the committer is telling the fan-out of
// a batch starts after the batch or before it, never between: the
// committed position it starts from moves under the same lock as the
// telling. Between, it would start before a publication already told to
// nobody, and miss it.
func TestSubscribeWhileTelling(t *testing.T) {
	s := openEngine(t, tempPath(t), Options{})
	local := s.commits.watcher
	held, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	letGo := func() { released.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	s.commits.watcher = watchFunc(func(channel string, pos service.Position, p *service.Publication) {
		if p == nil {
			local.Removed(channel, pos)
			return
		}
		local.Published(pos, p)
		if p.Offset == 2 { // told, and its committed position not yet moved
			once.Do(func() {
				close(held)
				<-release
			})
		}
	})
	mustPublish(t, s, pub("x", 1), "")
	go s.Publish(context.Background(), pub("x", 2), "")
	<-held
	r := newRecorder("c")
	joined := make(chan service.Position, 1)
	go func() {
		pos, err := s.Subscribe(context.Background(), "x", r, false)
		if err != nil {
			t.Error(err)
		}
		joined <- pos
	}()
	poll.Until(t, 5*time.Second, "the subscriber to hold x, or to have joined", func() bool {
		s.seq.mu.Lock()
		defer s.seq.mu.Unlock()
		return s.seq.channels["x"].holds > 0 || len(joined) > 0
	})
	// Time for a subscriber that does not wait to read x's position: the
	// test passes whatever the timing when subscribers wait, as they must,
	// and fails only if they do not.
	time.Sleep(20 * time.Millisecond)
	letGo()
	pos := <-joined
	mustPublish(t, s, pub("x", 3), "")
	poll.Until(t, 5*time.Second, "offset 3 to arrive", func() bool { return slices.Contains(r.offsets(), 3) })
	if got := r.offsets(); !sameOffsets(got, span(pos.Offset+1, 3)) {
		t.Errorf("a subscriber given offset %d got %v, want %v", pos.Offset, got, span(pos.Offset+1, 3))
	}
}
