package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// Load reads what sequencing a channel goes on from: its position and
// latest time, and its keys within the window; a channel never written
// is at 0 in the database's epoch, and a removal leaves its channel at
// offset 0 in its new epoch, keys gone.
func TestLoadReadsWhatIsStored(t *testing.T) {
	path := tempPath(t)
	opts := Options{KeyWindow: time.Hour}
	s := openStore(t, path, opts)
	epoch := s.Epoch()
	if st := load(t, s, "a"); epoch == "" || st.Position != (service.Position{Epoch: epoch}) || !st.LastTime.IsZero() || len(st.Keys) != 0 {
		t.Fatalf("a new database holds %+v of a, epoch %q", st, epoch)
	}
	old := pub("a", 1)
	old.Time = old.Time.Add(-2 * time.Hour)
	mustAppend(t, s, old, "old")
	last := pub("a", 2)
	mustAppend(t, s, last, "k")
	mustAppend(t, s, pub("b", 1), "kb")
	removed := NewEpoch()
	if err := s.Append([]*Change{{Kind: Removal, Pub: service.Publication{Channel: "b"}, Epoch: removed}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path, opts)
	if s.Epoch() != epoch {
		t.Errorf("after reopening, epoch %q, want %q", s.Epoch(), epoch)
	}
	a, b := load(t, s, "a"), load(t, s, "b")
	if a.Position != (service.Position{Offset: 2, Epoch: epoch}) || b.Position != (service.Position{Offset: 0, Epoch: removed}) {
		t.Errorf("positions a %+v, b %+v; want a at 2 in %q, b at 0 in %q", a.Position, b.Position, epoch, removed)
	}
	if !a.LastTime.Equal(last.Time) || !b.LastTime.IsZero() {
		t.Errorf("latest times a %v, b %v; want a at %v, b none", a.LastTime, b.LastTime, last.Time)
	}
	if len(a.Keys) != 1 || a.Keys[0].Key != "k" || a.Keys[0].Offset != 2 || !a.Keys[0].Time.Equal(last.Time) || len(b.Keys) != 0 {
		t.Errorf("keys a %+v, b %+v; want only a's k at offset 2", a.Keys, b.Keys)
	}
	if pubs := readAll(t, s, "b"); len(pubs) != 0 {
		t.Errorf("a removed channel holds %v", offsets(pubs))
	}
}

// TrimBefore deletes publications by time, ForgetKeys keys by time, and
// neither moves a channel's position.
func TestTrimBeforeAndForgetKeys(t *testing.T) {
	path := tempPath(t)
	opts := Options{KeyWindow: 24 * time.Hour}
	s := openStore(t, path, opts)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, 0} {
		p := pub("a", i)
		p.Time = now.Add(-age)
		mustAppend(t, s, p, fmt.Sprint("k", i))
	}
	cutoff := now.Add(-90 * time.Minute)
	if n, err := s.TrimBefore(cutoff, 1); err != nil || n != 1 {
		t.Fatalf("TrimBefore, one at a time: %d, %v; want 1 deleted", n, err)
	}
	if n, err := s.TrimBefore(cutoff, 0); err != nil || n != 1 {
		t.Fatalf("TrimBefore, the rest: %d, %v; want 1 deleted", n, err)
	}
	if n, err := s.ForgetKeys(cutoff, 10); err != nil || n != 2 {
		t.Fatalf("ForgetKeys: %d, %v; want 2 deleted", n, err)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, []uint64{3}) {
		t.Errorf("after TrimBefore, history %v, want [3]", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, opts)
	st := load(t, s, "a")
	if st.Position.Offset != 3 {
		t.Errorf("after trimming and reopening, position %+v, want offset 3", st.Position)
	}
	if len(st.Keys) != 1 || st.Keys[0].Key != "k2" {
		t.Errorf("after ForgetKeys, keys %+v, want only k2", st.Keys)
	}
}

// A change of no known kind is refused, and nothing of its batch is
// written: a zero Kind must not pass for a publication.
func TestAppendRefusesUnknownKind(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	p := pub("a", 1)
	p.Offset = 1
	good := &Change{Kind: Publication, Pub: p, Epoch: s.Epoch()}
	p.Offset = 2
	if err := s.Append([]*Change{good, {Pub: p, Epoch: s.Epoch()}}); err == nil {
		t.Fatal("Append took a change of kind 0")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := load(t, openStore(t, path, Options{}), "a"); st.Position.Offset != 0 {
		t.Errorf("after a refused batch, the database holds %+v", st.Position)
	}
}
