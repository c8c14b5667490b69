package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// Open loads what sequencing goes on from: the database's epoch, each
// channel's position and latest time, and the keys within the window; a
// removal leaves its channel at offset 0 in its new epoch, keys gone.
func TestOpenLoadsWhatIsStored(t *testing.T) {
	path := tempPath(t)
	opts := Options{KeyWindow: time.Hour}
	s := openStore(t, path, opts)
	epoch := s.stored.Epoch
	if epoch == "" || len(s.stored.Positions) != 0 || len(s.stored.Keys) != 0 {
		t.Fatalf("a new database holds %+v", s.stored)
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
	st := s.stored
	if st.Epoch != epoch {
		t.Errorf("after reopening, epoch %q, want %q", st.Epoch, epoch)
	}
	want := map[string]service.Position{"a": {Offset: 2, Epoch: epoch}, "b": {Offset: 0, Epoch: removed}}
	if len(st.Positions) != len(want) || st.Positions["a"] != want["a"] || st.Positions["b"] != want["b"] {
		t.Errorf("Positions %v, want %v", st.Positions, want)
	}
	if at, ok := st.LastTimes["a"]; !ok || !at.Equal(last.Time) {
		t.Errorf("LastTimes %v, want a at %v", st.LastTimes, last.Time)
	}
	if len(st.Keys) != 1 || st.Keys[0].Channel != "a" || st.Keys[0].Key != "k" || st.Keys[0].Offset != 2 || !st.Keys[0].Time.Equal(last.Time) {
		t.Errorf("Keys %+v, want only a's k at offset 2", st.Keys)
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
	if err := s.TrimBefore(cutoff); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetKeys(cutoff); err != nil {
		t.Fatal(err)
	}
	if got := offsets(readAll(t, s, "a")); !sameOffsets(got, []uint64{3}) {
		t.Errorf("after TrimBefore, history %v, want [3]", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, opts)
	if pos := s.stored.Positions["a"]; pos.Offset != 3 {
		t.Errorf("after trimming and reopening, position %+v, want offset 3", pos)
	}
	if len(s.stored.Keys) != 1 || s.stored.Keys[0].Key != "k2" {
		t.Errorf("after ForgetKeys, keys %+v, want only k2", s.stored.Keys)
	}
}

// A change of no known kind is refused, and nothing of its batch is
// written: a zero Kind must not pass for a publication.
func TestAppendRefusesUnknownKind(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	p := pub("a", 1)
	p.Offset = 1
	good := &Change{Kind: Publication, Pub: p, Epoch: s.stored.Epoch}
	p.Offset = 2
	if err := s.Append([]*Change{good, {Pub: p, Epoch: s.stored.Epoch}}); err == nil {
		t.Fatal("Append took a change of kind 0")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if st := openStore(t, path, Options{}).stored; len(st.Positions) != 0 {
		t.Errorf("after a refused batch, the database holds %+v", st.Positions)
	}
}
