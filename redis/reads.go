package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/service"
)

// History implements service.Engine: the page and the position are read
// in one script, at one moment.
func (e *Engine) History(ctx context.Context, name string, q service.HistoryQuery) (service.History, error) {
	if err := e.refuse(); err != nil {
		return service.History{}, err
	}
	return e.history(ctx, name, q)
}

// history is History without the refusal while Redis is thought down:
// filling a gap after a reconnect must not wait for the next ping.
func (e *Engine) history(ctx context.Context, name string, q service.HistoryQuery) (service.History, error) {
	first, last := "-", "+"
	if q.After > 0 {
		first = "(" + strconv.FormatUint(q.After, 10) + "-0"
	}
	if q.Before > 0 {
		last = "(" + strconv.FormatUint(q.Before, 10) + "-0"
	}
	dir, lo, hi := "", first, last
	if q.Reverse {
		dir, lo, hi = "rev", first, last
	}
	// Limit 0 reads the position alone (COUNT 0 reads nothing), as the
	// hub asks when nothing can come before offset 0.
	limit := max(q.Limit, 0)
	k := e.keys(name)
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	res, err := historyScript.Run(ctx, e.rdb, []string{k.meta, k.history}, newEpoch(), lo, hi, limit, dir).Slice()
	if err != nil {
		return service.History{}, e.unavailable("history", err)
	}
	pos, err := position(res)
	if err != nil {
		return service.History{}, err
	}
	entries, _ := res[2].([]any)
	h := service.History{Position: pos, Publications: make([]service.Publication, 0, len(entries))}
	var cutoff int64
	if e.opts.MaxAge > 0 {
		cutoff = time.Now().Add(-e.opts.MaxAge).UnixMilli()
	}
	size := 0
	for _, entry := range entries {
		p, err := publicationOf(name, entry)
		if err != nil {
			return service.History{}, err
		}
		if p.Time.UnixMilli() < cutoff {
			continue // expired, not yet trimmed
		}
		// No more once the data add up to MaxBytes, the first whatever
		// its size.
		if q.MaxBytes > 0 && size >= q.MaxBytes {
			break
		}
		size += len(p.Data)
		h.Publications = append(h.Publications, p)
	}
	return h, nil
}

// position reads {epoch, offset, ...} as a script returns it.
func position(res []any) (service.Position, error) {
	if len(res) < 2 {
		return service.Position{}, fmt.Errorf("script returned %d values", len(res))
	}
	epoch, _ := res[0].(string)
	o, _ := res[1].(string)
	offset, err := strconv.ParseUint(o, 10, 64)
	if err != nil || epoch == "" {
		return service.Position{}, fmt.Errorf("script returned position %v", res[:2])
	}
	return service.Position{Offset: offset, Epoch: epoch}, nil
}

// publicationOf reads a stream entry, {id, {"t", time, "b", body}}.
func publicationOf(name string, entry any) (service.Publication, error) {
	e, _ := entry.([]any)
	if len(e) != 2 {
		return service.Publication{}, fmt.Errorf("history entry of %q: %v", name, entry)
	}
	id, _ := e[0].(string)
	fields, _ := e[1].([]any)
	var t, body string
	for i := 0; i+1 < len(fields); i += 2 {
		switch fields[i] {
		case "t":
			t, _ = fields[i+1].(string)
		case "b":
			body, _ = fields[i+1].(string)
		}
	}
	o, _, _ := strings.Cut(id, "-")
	offset, err1 := strconv.ParseUint(o, 10, 64)
	ms, err2 := strconv.ParseInt(t, 10, 64)
	publisher, data, err3 := decodeBody(body)
	if err1 != nil || err2 != nil || err3 != nil {
		return service.Publication{}, fmt.Errorf("history entry %s of %q is malformed", id, name)
	}
	return service.Publication{Channel: name, Offset: offset, Data: data, Publisher: publisher, Time: time.UnixMilli(ms)}, nil
}

// Presence implements service.Engine: the members every node keeps
// alive, longest subscribed first.
func (e *Engine) Presence(ctx context.Context, name string) ([]service.Member, error) {
	if err := e.refuse(); err != nil {
		return nil, err
	}
	k := e.keys(name)
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	res, err := membersScript.Run(ctx, e.rdb, []string{k.presence, k.expiries}, "", k.events).Slice()
	if err != nil {
		return nil, e.unavailable("presence", err)
	}
	members := make([]service.Member, 0, max(len(res)-1, 0))
	for _, v := range res[min(1, len(res)):] {
		s, _ := v.(string)
		var m wireMember
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("presence of %q: %w", name, err)
		}
		members = append(members, m.member())
	}
	slices.SortFunc(members, func(a, b service.Member) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.ConnectionID, b.ConnectionID)
	})
	return members, nil
}

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

func isNil(err error) bool { return err == goredis.Nil }

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// wireMember is a member as presence keeps it in Redis.
type wireMember struct {
	User  string `json:"u"`
	Conn  string `json:"c"`
	Since int64  `json:"s"` // Unix ms
}

func wireOf(m service.Member) wireMember {
	return wireMember{User: m.User, Conn: m.ConnectionID, Since: m.Since.UnixMilli()}
}

func (w wireMember) member() service.Member {
	return service.Member{User: w.User, ConnectionID: w.Conn, Since: time.UnixMilli(w.Since)}
}
