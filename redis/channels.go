package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/service"
)

// listBatch is how many names Channels reads from the index at a time.
const listBatch = 256

// Channels implements service.Engine. It pages through the index in name
// order, from the prefix on, and reads each visible channel's offset and
// subscriber count: the cost is in the channels it lists and skips, not
// in all there are.
func (e *Engine) Channels(ctx context.Context, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool, error) {
	if err := e.refuse(); err != nil {
		return nil, false, err
	}
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	infos := []service.ChannelInfo{}
	from := "[" + prefix
	for {
		raw, err := e.rdb.ZRangeByLex(ctx, e.indexKey(), &goredis.ZRangeBy{Min: from, Max: "+", Count: listBatch}).Result()
		if err != nil {
			return nil, false, e.unavailable("channel list", err)
		}
		end := len(raw) < listBatch
		var names []string
		for _, n := range raw {
			if !strings.HasPrefix(n, prefix) {
				end = true
				break
			}
			if visible(n) {
				names = append(names, n)
			}
		}
		found, err := e.describe(ctx, names)
		if err != nil {
			return nil, false, err
		}
		for _, info := range found {
			if len(infos) == limit {
				return infos, true, nil
			}
			infos = append(infos, info)
		}
		if end {
			return infos, false, nil
		}
		from = "(" + raw[len(raw)-1]
	}
}

// describe reads the offset and subscriber count of each named channel,
// in one round trip, leaving out those with neither.
func (e *Engine) describe(ctx context.Context, names []string) ([]service.ChannelInfo, error) {
	if len(names) == 0 {
		return nil, nil
	}
	offsets := make([]*goredis.StringCmd, len(names))
	counts := make([]*goredis.Cmd, len(names))
	_, err := e.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, n := range names {
			k := e.keys(n)
			offsets[i] = p.HGet(ctx, k.meta, "o")
			counts[i] = membersScript.EvalSha(ctx, p, []string{k.presence, k.expiries}, "count", k.events)
		}
		return nil
	})
	if err != nil && !isNil(err) && !isNoScript(err) {
		return nil, e.unavailable("channel list", err)
	}
	infos := make([]service.ChannelInfo, 0, len(names))
	for i, n := range names {
		offset, _ := strconv.ParseUint(offsets[i].Val(), 10, 64)
		subs, err := subscriberCount(ctx, e, counts[i], n)
		if err != nil {
			return nil, err
		}
		if offset > 0 || subs > 0 {
			infos = append(infos, service.ChannelInfo{Name: n, Offset: offset, Subscribers: subs})
		}
	}
	return infos, nil
}

// subscriberCount reads a count from membersScript, run again by Run
// when Redis did not have the script yet.
func subscriberCount(ctx context.Context, e *Engine, c *goredis.Cmd, name string) (int, error) {
	if isNoScript(c.Err()) {
		k := e.keys(name)
		c = membersScript.Run(ctx, e.rdb, []string{k.presence, k.expiries}, "count", k.events)
	}
	res, err := c.Slice()
	if err != nil {
		return 0, e.unavailable("channel list", err)
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("member count of %q: %v", name, res)
	}
	n, _ := res[0].(int64)
	return int(n), nil
}
