package redis

import (
	"context"
	"fmt"
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

func isNil(err error) bool { return err == goredis.Nil }

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
