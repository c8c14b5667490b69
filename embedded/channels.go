package embedded

import (
	"context"
	"strings"

	"github.com/switchboard/switchboard/service"
)

// listBatch is how many names Channels reads from the database at a
// time.
const listBatch = 256

// Channels implements service.Engine: channels with publications come
// from the database's index of names, in order, from the prefix on;
// those with subscribers here, publications or not, from the fan-out,
// which knows only those. The two are merged by name. The cost is in
// the channels listed and skipped, not in all there are, and nothing of
// a channel is loaded to list it. Publications queued and not yet
// committed are not listed, as History does not show them: a channel
// appears once its first publication is committed.
func (e *Engine) Channels(ctx context.Context, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool, error) {
	local, localMore := e.local.Channels(prefix, visible, limit)
	stored, storedMore, err := e.stored(ctx, prefix, visible, limit)
	if err != nil {
		return nil, false, err
	}
	infos := merge(local, stored)
	if len(infos) > limit {
		return infos[:limit], true, nil
	}
	return infos, localMore || storedMore, nil
}

// stored lists up to limit visible channels with publications from the
// database, and reports whether there were more.
func (e *Engine) stored(ctx context.Context, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool, error) {
	infos := []service.ChannelInfo{}
	after := ""
	for {
		page, err := e.db.Channels(ctx, prefix, after, listBatch)
		if err != nil {
			return nil, false, err
		}
		for _, l := range page {
			if !visible(l.Name) {
				continue
			}
			if len(infos) == limit {
				return infos, true, nil
			}
			infos = append(infos, service.ChannelInfo{Name: l.Name, Offset: l.Offset})
		}
		if len(page) < listBatch {
			return infos, false, nil
		}
		after = page[len(page)-1].Name
	}
}

// merge merges two lists in name order into one, taking a's entry where
// both name a channel: the fan-out's, which counts its subscribers. Its
// offset and the database's may be a batch apart, either way; each is
// one the channel was at.
func merge(a, b []service.ChannelInfo) []service.ChannelInfo {
	out := make([]service.ChannelInfo, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := strings.Compare(a[0].Name, b[0].Name); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}
