package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/ratelimit"
)

// HubLimits bound what one call to the hub may ask for. Zero fields take
// DefaultHubLimits' values; for PublishRate that is 0: no limit.
type HubLimits struct {
	// MaxDataSize is the largest publication, in bytes of JSON.
	MaxDataSize int
	// HistoryPage is how many publications channelHistory returns when
	// the caller names no limit; MaxHistoryPage is the most it may ask for.
	HistoryPage    int
	MaxHistoryPage int
	// RecoveryLimit is the most publications a subscription recovers.
	RecoveryLimit int
	// ListLimit is the most channels one listing returns.
	ListLimit int
	// MaxPageBytes bounds the data of the publications in one history
	// page or recovery, so that no reply grows past a few megabytes.
	MaxPageBytes int
	// PublishRate, when above zero, is how many publications a second
	// one user may make, in bursts of up to PublishBurst (default: one
	// second's worth). Anonymous callers share one allowance.
	PublishRate  float64
	PublishBurst int
}

// DefaultHubLimits are the limits a Hub gets for fields left zero.
var DefaultHubLimits = HubLimits{
	MaxDataSize:    64 << 10,
	HistoryPage:    100,
	MaxHistoryPage: 1000,
	RecoveryLimit:  1000,
	ListLimit:      1000,
	MaxPageBytes:   4 << 20,
}

func (l HubLimits) withDefaults() HubLimits {
	d := DefaultHubLimits
	if l.MaxDataSize > 0 {
		d.MaxDataSize = l.MaxDataSize
	}
	if l.HistoryPage > 0 {
		d.HistoryPage = l.HistoryPage
	}
	if l.MaxHistoryPage > 0 {
		d.MaxHistoryPage = l.MaxHistoryPage
	}
	if l.RecoveryLimit > 0 {
		d.RecoveryLimit = l.RecoveryLimit
	}
	if l.ListLimit > 0 {
		d.ListLimit = l.ListLimit
	}
	if l.MaxPageBytes > 0 {
		d.MaxPageBytes = l.MaxPageBytes
	}
	d.PublishRate, d.PublishBurst = l.PublishRate, l.PublishBurst // zero: no limit
	return d
}

// MaxIdempotencyKeyLength is the longest idempotency key, in bytes.
const MaxIdempotencyKeyLength = 128

// Hub is the real-time hub: it checks every call against the rules and
// the caller's permissions, and leaves storage and fan-out to its engine.
type Hub struct {
	engine Engine
	limits HubLimits
	now    func() time.Time
	pubs   *ratelimit.Keyed // per user; nil without PublishRate
}

// NewHub returns a hub over engine.
func NewHub(engine Engine, limits HubLimits) *Hub {
	limits = limits.withDefaults()
	h := &Hub{engine: engine, limits: limits, now: time.Now}
	if limits.PublishRate > 0 {
		h.pubs = ratelimit.New(limits.PublishRate, limits.PublishBurst)
	}
	return h
}

// Limits returns the hub's limits, defaults filled in.
func (h *Hub) Limits() HubLimits { return h.limits }

// Publish publishes data to channel as c, returning once it is durable.
func (h *Hub) Publish(ctx context.Context, c Caller, channel string, data json.RawMessage, key string) (Published, error) {
	if err := ValidateChannel(channel); err != nil {
		return Published{}, err
	}
	if !c.Permissions.CanPublish(channel) {
		return Published{}, Errorf(EFORBIDDEN, "not allowed to publish to %q", channel)
	}
	if len(data) > h.limits.MaxDataSize {
		return Published{}, Errorf(EINVALID, "data is %d bytes; the most is %d", len(data), h.limits.MaxDataSize)
	}
	if !utf8.Valid(data) {
		// Subscribers get data in text frames, which must be UTF-8: one
		// bad byte would make their clients drop the connection.
		return Published{}, Errorf(EINVALID, "data is not valid UTF-8")
	}
	if len(key) > MaxIdempotencyKeyLength {
		return Published{}, Errorf(EINVALID, "idempotencyKey is %d bytes; the most is %d", len(key), MaxIdempotencyKeyLength)
	}
	if h.pubs != nil {
		// Last: a call refused for its content costs no allowance.
		if ok, wait := h.pubs.Allow(c.User); !ok {
			return Published{}, &Error{Code: ELIMIT, RetryAfter: wait,
				Message: fmt.Sprintf("more than %g publications a second (--rate-publish); retry in %v", h.limits.PublishRate, wait.Round(time.Millisecond))}
		}
	}
	p := Publication{Channel: channel, Data: data, Publisher: c.User, Time: h.now().UTC()}
	return h.engine.Publish(ctx, p, key)
}

// Subscribed is the outcome of a subscription.
type Subscribed struct {
	// Position is the channel's position when r joined: r receives every
	// publication after it.
	Position Position
	// Recovered is true when since was given and Publications holds
	// everything published after it up to Position.
	Recovered    bool
	Publications []Publication
}

// Subscribe subscribes r to channel as c. With since, it also reads what
// was published after since, up to the point from which r receives
// publications live: nothing falls between the two, and nothing is in both.
func (h *Hub) Subscribe(ctx context.Context, c Caller, channel string, since *Position, r Receiver, joinLeave bool) (Subscribed, error) {
	if err := h.canRead(c, channel, "subscribe to"); err != nil {
		return Subscribed{}, err
	}
	pos, err := h.engine.Subscribe(ctx, channel, r, joinLeave)
	if err != nil {
		return Subscribed{}, err
	}
	s := Subscribed{Position: pos, Publications: []Publication{}}
	if since == nil || since.Epoch != pos.Epoch || since.Offset > pos.Offset {
		// Another epoch's offsets mean nothing in this one; an offset
		// beyond the channel's is from history that was lost.
		return s, nil
	}
	if since.Offset == pos.Offset {
		s.Recovered = true
		return s, nil
	}
	hist, err := h.engine.History(ctx, channel, HistoryQuery{After: since.Offset, Before: pos.Offset + 1,
		Limit: h.limits.RecoveryLimit, MaxBytes: h.limits.MaxPageBytes})
	if err != nil {
		h.engine.Unsubscribe(channel, r)
		return Subscribed{}, err
	}
	pubs := hist.Publications
	if hist.Position.Epoch != pos.Epoch {
		// The channel was removed meanwhile: these offsets are another
		// epoch's.
		return s, nil
	}
	s.Publications = pubs
	// The history is whole when it holds one publication per offset from
	// just after since up to pos: the engine returns rising offsets in
	// that range only, so counting them says it.
	s.Recovered = uint64(len(pubs)) == pos.Offset-since.Offset
	return s, nil
}

// Unsubscribe takes r off channel. It reports false when r was not
// subscribed to it.
func (h *Hub) Unsubscribe(channel string, r Receiver) bool {
	return h.engine.Unsubscribe(channel, r)
}

// HistoryRequest is a channelHistory call.
type HistoryRequest struct {
	Channel string
	// Since, when set, starts the page after (or, with Reverse, before)
	// its offset; its epoch must be the channel's.
	Since   *Position
	Limit   int // 0 for the default page
	Reverse bool
}

// History reads a page of channel's history as c.
func (h *Hub) History(ctx context.Context, c Caller, req HistoryRequest) (History, error) {
	if err := h.canRead(c, req.Channel, "read the history of"); err != nil {
		return History{}, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = h.limits.HistoryPage
	case limit < 0 || limit > h.limits.MaxHistoryPage:
		return History{}, Errorf(EINVALID, "limit must be 1 to %d", h.limits.MaxHistoryPage)
	}
	q := HistoryQuery{Limit: limit, Reverse: req.Reverse, MaxBytes: h.limits.MaxPageBytes}
	if req.Since != nil {
		if req.Reverse {
			q.Before = req.Since.Offset
			if q.Before == 0 {
				// Nothing comes before offset 0, and Before 0 would mean
				// no bound: read only the position.
				q.Limit = 0
			}
		} else {
			q.After = req.Since.Offset
		}
	}
	hist, err := h.engine.History(ctx, req.Channel, q)
	if err != nil {
		return History{}, err
	}
	if err := sameEpoch(req.Since, hist.Position); err != nil {
		return History{}, err
	}
	if hist.Publications == nil {
		hist.Publications = []Publication{}
	}
	return hist, nil
}

func sameEpoch(since *Position, pos Position) error {
	if since != nil && since.Epoch != pos.Epoch {
		return Errorf(ECONFLICT, "epoch %q is not the channel's (%q): its history was lost or removed since; start again without since", since.Epoch, pos.Epoch)
	}
	return nil
}

// Presence lists channel's subscribers, as c.
func (h *Hub) Presence(ctx context.Context, c Caller, channel string) ([]Member, error) {
	if err := h.canRead(c, channel, "see the presence of"); err != nil {
		return nil, err
	}
	return h.engine.Presence(ctx, channel)
}

// Channels lists the channels visible to c whose names start with prefix.
func (h *Hub) Channels(ctx context.Context, c Caller, prefix string) ([]ChannelInfo, bool, error) {
	if len(prefix) > MaxChannelLength || strings.IndexFunc(prefix, func(r rune) bool { return r > 0x7f || !channelByte(byte(r)) }) >= 0 {
		return nil, false, Errorf(EINVALID, "prefix %q: not the start of a channel name", prefix)
	}
	return h.engine.Channels(ctx, prefix, c.Permissions.CanSee, h.limits.ListLimit)
}

// Remove deletes channel's history and ends its subscriptions. Only
// admins may.
func (h *Hub) Remove(ctx context.Context, c Caller, channel string) (Position, error) {
	if err := ValidateChannel(channel); err != nil {
		return Position{}, err
	}
	if !c.Permissions.Admin {
		return Position{}, Errorf(EFORBIDDEN, "only admins may remove channels")
	}
	return h.engine.Remove(ctx, channel)
}

func (h *Hub) canRead(c Caller, channel, what string) error {
	if err := ValidateChannel(channel); err != nil {
		return err
	}
	if !c.Permissions.CanSubscribe(channel) {
		return Errorf(EFORBIDDEN, "not allowed to %s %q", what, channel)
	}
	return nil
}
