package service_test

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/service"
)

func TestMatchChannel(t *testing.T) {
	tests := []struct {
		pattern, channel string
		want             bool
	}{
		// Exact names.
		{"news", "news", true},
		{"news.sport", "news.sport", true},
		{"news", "News", false},
		{"news", "newsroom", false},
		{"newsroom", "news", false},
		{"news", "news.sport", false},
		{"news.sport", "news", false},
		{"news.sport", "news.sports", false},
		{"news.sport", "news.spor", false},
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "a.b.d", false},
		{"a.b.c", "x.b.c", false},

		// "*" is exactly one segment.
		{"*", "news", true},
		{"*", "a", true},
		{"*", "news.sport", false},
		{"news.*", "news.sport", true},
		{"news.*", "news", false},
		{"news.*", "news.sport.live", false},
		{"news.*", "newsroom.sport", false},
		{"*.b", "a.b", true},
		{"*.b", "xyz.b", true},
		{"*.b", "b", false},
		{"*.b", "a.c", false},
		{"*.b", "a.b.c", false},
		{"*.b", "x.a.b", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.xyz.c", true},
		{"a.*.c", "a.c", false},
		{"a.*.c", "a.b.b.c", false},
		{"a.*.c", "a.b.d", false},
		{"a.*.c", "b.b.c", false},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{"*.*", "a.b.c", false},
		{"a*", "ab", false}, // "*" only as a whole segment
		{"a*", "a*", true},  // otherwise it is a literal

		// A trailing ">" is one or more segments.
		{">", "a", true},
		{">", "a.b", true},
		{">", "a.b.c.d.e", true},
		{"news.>", "news.sport", true},
		{"news.>", "news.sport.live", true},
		{"news.>", "news", false},
		{"news.>", "newsroom.sport", false},
		{"news.>", "newsroom", false},
		{"news.>", "other.sport", false},
		{"a.>", "a.b", true},
		{"a.>", "a", false},
		{"*.>", "a.b", true},
		{"*.>", "a.b.c", true},
		{"*.>", "a", false},
		{"a.*.>", "a.b.c", true},
		{"a.*.>", "a.b", false},

		// ">" anywhere but at the end matches no valid channel name.
		{">.b", "a.b", false},
		{">.b", "b", false},
		{"a.>.c", "a.b.c", false},
		{"a.>.c", "a.b.x.c", false},
		{"a>", "ab", false},
	}
	for _, tt := range tests {
		if got := service.MatchChannel(tt.pattern, tt.channel); got != tt.want {
			t.Errorf("MatchChannel(%q, %q) = %v, want %v", tt.pattern, tt.channel, got, tt.want)
		}
	}
}

func TestPermissions(t *testing.T) {
	p := service.Permissions{
		Publish:   []string{"chat.*", "news.>"},
		Subscribe: []string{"chat.>", "public"},
	}
	admin := service.Permissions{Admin: true}
	none := service.Permissions{}

	tests := []struct {
		channel                 string
		publish, subscribe, see bool
	}{
		{"chat.room", true, true, true},
		{"chat.room.thread", false, true, true},
		{"chat", false, false, false},
		{"news.sport", true, false, true},
		{"news.sport.live", true, false, true},
		{"news", false, false, false},
		{"public", false, true, true},
		{"public.x", false, false, false},
		{"private", false, false, false},
	}
	for _, tt := range tests {
		if got := p.CanPublish(tt.channel); got != tt.publish {
			t.Errorf("CanPublish(%q) = %v, want %v", tt.channel, got, tt.publish)
		}
		if got := p.CanSubscribe(tt.channel); got != tt.subscribe {
			t.Errorf("CanSubscribe(%q) = %v, want %v", tt.channel, got, tt.subscribe)
		}
		if got := p.CanSee(tt.channel); got != tt.see {
			t.Errorf("CanSee(%q) = %v, want %v", tt.channel, got, tt.see)
		}
		if !admin.CanPublish(tt.channel) || !admin.CanSubscribe(tt.channel) || !admin.CanSee(tt.channel) {
			t.Errorf("admin may not do everything with %q", tt.channel)
		}
		if none.CanPublish(tt.channel) || none.CanSubscribe(tt.channel) || none.CanSee(tt.channel) {
			t.Errorf("empty permissions allow something on %q", tt.channel)
		}
	}
}

// validChannel reports whether s is a valid channel name.
func validChannel(s string) bool { return service.ValidateChannel(s) == nil }

func FuzzMatchChannel(f *testing.F) {
	for _, s := range [][2]string{
		{"news.*", "news.sport"},
		{"news.>", "news.sport.live"},
		{">", "a"},
		{"*", "a.b"},
		{"a.*.c", "a.b.c"},
		{">.a", "b.a"},
		{"", ""},
		{"a..b", "a..b"},
		{"*.>", "x"},
		{"a.b", "a.b."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		got := service.MatchChannel(pattern, channel) // must not panic
		if !validChannel(channel) {
			return
		}
		if !service.MatchChannel(channel, channel) {
			t.Errorf("MatchChannel(%q, %q) = false: a name must match itself", channel, channel)
		}
		if !service.MatchChannel(">", channel) {
			t.Errorf("MatchChannel(\">\", %q) = false", channel)
		}
		segments := strings.Split(channel, ".")
		if want := len(segments) == 1; service.MatchChannel("*", channel) != want {
			t.Errorf("MatchChannel(\"*\", %q) = %v, want %v", channel, !want, want)
		}
		// The same number of "*" as segments matches; one more or one
		// fewer does not.
		stars := strings.Repeat("*.", len(segments)-1) + "*"
		if !service.MatchChannel(stars, channel) {
			t.Errorf("MatchChannel(%q, %q) = false", stars, channel)
		}
		if service.MatchChannel(stars+".*", channel) {
			t.Errorf("MatchChannel(%q, %q) = true", stars+".*", channel)
		}
		// "first.>" matches exactly the names of two or more segments
		// that start with first.
		want := len(segments) > 1
		if service.MatchChannel(segments[0]+".>", channel) != want {
			t.Errorf("MatchChannel(%q, %q) = %v, want %v", segments[0]+".>", channel, !want, want)
		}
		// A pattern without wildcards matches only the name it spells.
		if validChannel(pattern) && !strings.ContainsAny(pattern, "*>") && got != (pattern == channel) {
			t.Errorf("MatchChannel(%q, %q) = %v", pattern, channel, got)
		}
		// A ">" that is not the last segment matches nothing valid.
		if p, _, ok := strings.Cut(pattern, ">."); ok && (p == "" || strings.HasSuffix(p, ".")) && got {
			t.Errorf("MatchChannel(%q, %q) = true: \">\" not at the end", pattern, channel)
		}
		// Replacing one segment by "*" keeps the match, and a ">" for the
		// rest after the first segment matches too.
		for i := range segments {
			s := append([]string(nil), segments...)
			s[i] = "*"
			if p := strings.Join(s, "."); !service.MatchChannel(p, channel) {
				t.Errorf("MatchChannel(%q, %q) = false", p, channel)
			}
			if i > 0 {
				if p := strings.Join(segments[:i], ".") + ".>"; !service.MatchChannel(p, channel) {
					t.Errorf("MatchChannel(%q, %q) = false", p, channel)
				}
			}
		}
	})
}
