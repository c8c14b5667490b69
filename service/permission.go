package service

import "strings"

// MatchChannel reports whether channel matches pattern. Patterns are
// channel names whose segments (separated by ".") may be "*", matching
// any one segment, and whose last segment may be ">", matching one or
// more segments. "news.*" matches "news.sport" but not "news" or
// "news.sport.live"; "news.>" matches both of the latter's longer forms
// but not "news"; ">" matches every channel.
func MatchChannel(pattern, channel string) bool {
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		c, crest, cmore := strings.Cut(channel, ".")
		switch {
		case p == ">" && !pmore:
			return true // c is non-empty: channel names have no empty segments
		case p != "*" && p != c:
			return false
		case !pmore || !cmore:
			return pmore == cmore
		}
		pattern, channel = prest, crest
	}
}

func matchAny(patterns []string, channel string) bool {
	for _, p := range patterns {
		if MatchChannel(p, channel) {
			return true
		}
	}
	return false
}

// CanPublish reports whether the permissions allow publishing to channel.
func (p Permissions) CanPublish(channel string) bool {
	return p.Admin || matchAny(p.Publish, channel)
}

// CanSubscribe reports whether the permissions allow subscribing to
// channel, and so reading its history and presence.
func (p Permissions) CanSubscribe(channel string) bool {
	return p.Admin || matchAny(p.Subscribe, channel)
}

// CanSee reports whether channel shows in the caller's channel listings:
// it may publish or subscribe to it.
func (p Permissions) CanSee(channel string) bool {
	return p.CanPublish(channel) || p.CanSubscribe(channel)
}
