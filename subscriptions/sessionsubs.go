package subscriptions

// sessionSubs is one session's subscriptions, by channel. Most sessions
// hold one or a few, for which a map would cost more than the rest of the
// subscription: they are kept in a slice, searched, and in a map only
// once there are more than fewSubs.
type sessionSubs struct {
	few    []*subscription
	many   map[string]*subscription // once made, holds them all
	closed bool                     // the connection ended; no more subscriptions
}

// fewSubs is the most subscriptions kept in the slice.
const fewSubs = 8

func (ss *sessionSubs) len() int {
	if ss.many != nil {
		return len(ss.many)
	}
	return len(ss.few)
}

// get returns the subscription to channel, or nil.
func (ss *sessionSubs) get(channel string) *subscription {
	if ss.many != nil {
		return ss.many[channel]
	}
	for _, s := range ss.few {
		if s.channel == channel {
			return s
		}
	}
	return nil
}

// put adds s, whose channel has none yet.
func (ss *sessionSubs) put(s *subscription) {
	switch {
	case ss.many != nil:
		ss.many[s.channel] = s
	case len(ss.few) < fewSubs:
		ss.few = append(ss.few, s)
	default:
		ss.many = make(map[string]*subscription, 2*fewSubs)
		for _, o := range ss.few {
			ss.many[o.channel] = o
		}
		ss.many[s.channel] = s
		ss.few = nil
	}
}

// remove forgets the subscription to channel and returns it, or nil.
func (ss *sessionSubs) remove(channel string) *subscription {
	if ss.many != nil {
		s := ss.many[channel]
		delete(ss.many, channel)
		return s
	}
	for i, s := range ss.few {
		if s.channel == channel {
			last := len(ss.few) - 1
			ss.few[i], ss.few[last] = ss.few[last], nil
			if ss.few = ss.few[:last]; last == 0 {
				ss.few = nil // an idle session keeps no slice
			}
			return s
		}
	}
	return nil
}

// take forgets every subscription and returns them.
func (ss *sessionSubs) take() []*subscription {
	all := ss.few
	for _, s := range ss.many {
		all = append(all, s)
	}
	ss.few, ss.many = nil, nil
	return all
}
