package sqlite

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

func TestRead(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	var want []service.Publication
	for i := 1; i <= 10; i++ {
		p := pub("ch", i)
		p.Time = p.Time.Add(time.Duration(i) * time.Second)
		res := mustAppend(t, s, p, "")
		p.Offset = res.Offset
		want = append(want, p)
	}
	mustAppend(t, s, pub("other", 1), "")
	mustAppend(t, s, pub("ch.sub", 1), "")

	all := readAll(t, s, "ch")
	if len(all) != 10 {
		t.Fatalf("read %d publications, want 10", len(all))
	}
	for i, p := range all {
		w := want[i]
		if p.Channel != w.Channel || p.Offset != w.Offset || string(p.Data) != string(w.Data) ||
			p.Publisher != w.Publisher || !p.Time.Equal(w.Time) || p.Time.Location() != time.UTC {
			t.Errorf("read %+v, want %+v", p, w)
		}
	}

	const maxU = ^uint64(0)
	for _, tt := range []struct {
		q    service.HistoryQuery
		want []uint64
	}{
		{service.HistoryQuery{Limit: 100}, span(1, 10)},
		{service.HistoryQuery{Limit: 3}, span(1, 3)},
		{service.HistoryQuery{After: 3, Limit: 4}, span(4, 7)},
		{service.HistoryQuery{After: 3, Limit: 100}, span(4, 10)},
		{service.HistoryQuery{After: 3, Before: 7, Limit: 100}, span(4, 6)},
		{service.HistoryQuery{After: 3, Before: 4, Limit: 100}, nil},
		{service.HistoryQuery{After: 3, Before: 3, Limit: 100}, nil},
		{service.HistoryQuery{After: 10, Limit: 100}, nil},
		{service.HistoryQuery{Before: 1, Limit: 100}, nil},
		{service.HistoryQuery{Before: 2, Limit: 100}, []uint64{1}},
		{service.HistoryQuery{Before: maxU, Limit: 100}, span(1, 10)},
		{service.HistoryQuery{Limit: 100, Reverse: true}, []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{service.HistoryQuery{Limit: 3, Reverse: true}, []uint64{10, 9, 8}},
		{service.HistoryQuery{Before: 5, Limit: 100, Reverse: true}, []uint64{4, 3, 2, 1}},
		{service.HistoryQuery{Before: 5, Limit: 2, Reverse: true}, []uint64{4, 3}},
		{service.HistoryQuery{After: 3, Before: 8, Limit: 100, Reverse: true}, []uint64{7, 6, 5, 4}},
		{service.HistoryQuery{After: 3, Limit: 2, Reverse: true}, []uint64{10, 9}},
		{service.HistoryQuery{Before: 1, Limit: 100, Reverse: true}, nil},
		{service.HistoryQuery{Before: maxU, Limit: 2, Reverse: true}, []uint64{10, 9}},
		{service.HistoryQuery{Limit: 0}, nil},
		{service.HistoryQuery{Limit: 0, Reverse: true}, nil},
		{service.HistoryQuery{Limit: -1}, nil},
	} {
		pubs, err := s.Read(context.Background(), "ch", tt.q)
		if err != nil {
			t.Errorf("Read(%+v): %v", tt.q, err)
			continue
		}
		if !sameOffsets(offsets(pubs), tt.want) {
			t.Errorf("Read(%+v) = %v, want %v", tt.q, offsets(pubs), tt.want)
		}
	}

	// After beyond any offset reads nothing, however large: offsets are
	// uint64 on the wire, and SQLite's integers are int64.
	for _, after := range []uint64{11, 1<<63 - 1, 1 << 63, maxU - 1, maxU} {
		for _, reverse := range []bool{false, true} {
			q := service.HistoryQuery{After: after, Limit: 100, Reverse: reverse}
			if pubs, err := s.Read(context.Background(), "ch", q); err != nil || len(pubs) != 0 {
				t.Errorf("Read(%+v) = %v, %v; want nothing", q, offsets(pubs), err)
			}
		}
	}

	pubs, err := s.Read(context.Background(), "nothing", service.HistoryQuery{Limit: 10})
	if err != nil || len(pubs) != 0 {
		t.Errorf("Read of an unknown channel = %v, %v", pubs, err)
	}
}

func TestReadStopsAtMaxBytes(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	data := json.RawMessage(`"` + strings.Repeat("x", 98) + `"`) // 100 bytes
	for range 10 {
		p := pub("a", 0)
		p.Data = data
		mustAppend(t, s, p, "")
	}
	for _, tc := range []struct {
		maxBytes int
		reverse  bool
		want     []uint64
	}{
		{0, false, span(1, 10)},
		{250, false, span(1, 3)}, // the third reaches 250; no more after it
		{300, false, span(1, 3)},
		{301, false, span(1, 4)},
		{1, false, span(1, 1)}, // the first always comes
		{250, true, []uint64{10, 9, 8}},
	} {
		got, err := s.Read(context.Background(), "a", service.HistoryQuery{Limit: 100, MaxBytes: tc.maxBytes, Reverse: tc.reverse})
		if err != nil {
			t.Fatal(err)
		}
		if !sameOffsets(offsets(got), tc.want) {
			t.Errorf("MaxBytes %d, reverse %v: offsets %v, want %v", tc.maxBytes, tc.reverse, offsets(got), tc.want)
		}
	}
}

// History that older servers stored without checking its UTF-8 is read
// back as valid UTF-8, and still as the same JSON shape: every bad byte
// becomes U+FFFD, which clients can put in a text frame.
func TestReadRepairsInvalidUTF8(t *testing.T) {
	path := tempPath(t)
	s := openStore(t, path, Options{})
	bad := pub("a", 0)
	bad.Data = json.RawMessage("{\"t\":\"a\xffb\",\"u\":[\"\xed\xa0\x80\"]}")
	mustAppend(t, s, bad, "")
	mustAppend(t, s, pub("a", 2), "")
	s.Close()

	s = openStore(t, path, Options{})
	got := readAll(t, s, "a")
	if len(got) != 2 {
		t.Fatalf("read %d publications, want 2", len(got))
	}
	want := "{\"t\":\"a\uFFFDb\",\"u\":[\"\uFFFD\"]}"
	if d := string(got[0].Data); d != want || !json.Valid(got[0].Data) {
		t.Errorf("data %q, want %q (valid JSON)", d, want)
	}
	if d := string(got[1].Data); d != `{"n":2}` {
		t.Errorf("a valid publication came back as %q", d)
	}
}
