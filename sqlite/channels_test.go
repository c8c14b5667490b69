package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/service"
)

// Channels lists by name in byte order, within the prefix, after the
// cursor, and only channels with publications.
func TestChannelsPagesByName(t *testing.T) {
	s := openStore(t, tempPath(t), Options{})
	var batch []*Change
	for i := range 600 {
		p := pub(fmt.Sprintf("p.%03d", i), i)
		p.Offset = 1
		batch = append(batch, &Change{Kind: Publication, Pub: p, Epoch: s.Epoch()})
	}
	for _, name := range []string{"p", "p-", "p/", "q", "P.1", "p.\x7f"} {
		p := pub(name, 1)
		p.Offset = 1
		batch = append(batch, &Change{Kind: Publication, Pub: p, Epoch: s.Epoch()})
	}
	batch = append(batch, &Change{Kind: Removal, Pub: service.Publication{Channel: "p.removed"}, Epoch: NewEpoch()})
	if err := s.Append(batch); err != nil {
		t.Fatal(err)
	}
	names := func(prefix, after string, limit int) []string {
		t.Helper()
		listed, err := s.Channels(context.Background(), prefix, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		n := []string{}
		for _, l := range listed {
			if l.Offset != 1 {
				t.Errorf("%s listed at offset %d, want 1", l.Name, l.Offset)
			}
			n = append(n, l.Name)
		}
		return n
	}
	var paged []string
	for after := ""; ; {
		page := names("p.", after, 256)
		paged = append(paged, page...)
		if len(page) < 256 {
			break
		}
		after = page[len(page)-1]
	}
	var want []string
	for i := range 600 {
		want = append(want, fmt.Sprintf("p.%03d", i))
	}
	want = append(want, "p.\x7f")
	if !slices.Equal(paged, want) {
		t.Errorf("paging through p.: %d names, %q ... %q; want %d, p.000 to p.599 and p.\\x7f", len(paged), paged[:min(3, len(paged))], paged[max(0, len(paged)-3):], len(want))
	}
	for _, tt := range []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 3, []string{"P.1", "p", "p-"}},
		{"p", "p.599", 10, []string{"p.\x7f", "p/"}},
		{"p.59", "p.595", 10, []string{"p.596", "p.597", "p.598", "p.599"}},
		{"p.1", "", 2, []string{"p.100", "p.101"}},
		{"q", "", 10, []string{"q"}},
		{"p.removed", "", 10, []string{}},
		{"r", "", 10, []string{}},
		{"p.\x7f", "", 10, []string{"p.\x7f"}},
	} {
		if got := names(tt.prefix, tt.after, tt.limit); !slices.Equal(got, tt.want) {
			t.Errorf("Channels(%q, after %q, %d) = %q; want %q", tt.prefix, tt.after, tt.limit, got, tt.want)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tt := range []struct {
		prefix, want string
		ok           bool
	}{{"", "", false}, {"a", "b", true}, {"a.", "a/", true}, {"a\xff", "b", true}, {"\xff\xff", "", false}} {
		if got, ok := prefixEnd(tt.prefix); got != tt.want || ok != tt.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tt.prefix, got, ok, tt.want, tt.ok)
		}
	}
}
