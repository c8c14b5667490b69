package service

import "context"

// Engine keeps channels' histories and carries their events to
// subscribers. The embedded engine keeps history in SQLite and fans out
// within the process; an engine backed by a shared broker would let
// several nodes serve the same channels. Both fan out to a node's own
// subscribers through package fanout. The Hub checks names and
// permissions before it calls the engine, so engines trust their input.
type Engine interface {
	// Publish appends p (its Channel, Data, Publisher and Time) to the
	// channel's history and returns once it is durable, with its offset
	// and the channel's epoch. Receivers subscribed to the channel get it
	// afterwards, in offset order. The engine may move Time forward so
	// that times never go down along a channel's offsets.
	//
	// When key is not "" and a publication with the same key was made to
	// the channel within the engine's idempotency window, Publish appends
	// nothing and returns that publication's result with Duplicate set.
	Publish(ctx context.Context, p Publication, key string) (Published, error)

	// History reads publications of a channel, along with the channel's
	// current position.
	History(ctx context.Context, channel string, q HistoryQuery) (History, error)

	// Subscribe joins r to the channel's events and returns the channel's
	// position at that moment: r receives every publication after it, and
	// none up to it, so a reader of history up to that position followed
	// by the live stream misses nothing and sees nothing twice. With
	// joinLeave, r also receives the joins and leaves of other
	// subscribers. Subscribing r twice to a channel is a conflict.
	Subscribe(ctx context.Context, channel string, r Receiver, joinLeave bool) (Position, error)

	// Unsubscribe takes r off the channel. It reports false when r was
	// not subscribed.
	Unsubscribe(channel string, r Receiver) bool

	// Presence lists the channel's subscribers.
	Presence(ctx context.Context, channel string) ([]Member, error)

	// Channels lists up to limit channels, in name order, whose names
	// start with prefix and for which visible is true, among those with
	// publications (offset above 0) or subscribers. more reports that
	// there were others.
	Channels(ctx context.Context, prefix string, visible func(string) bool, limit int) (channels []ChannelInfo, more bool, err error)

	// Remove deletes the channel's history and ends its subscriptions,
	// each receiver being told with EventUnsubscribed. The channel starts
	// again from offset 0 in a new epoch, so that clients holding old
	// positions see that they cannot recover.
	Remove(ctx context.Context, channel string) (Position, error)
}

// Published is what Publish returns.
type Published struct {
	Position
	// Duplicate is set when the idempotency key had been seen, and the
	// position is that of the earlier publication.
	Duplicate bool
}

// HistoryQuery selects publications by offset. Without Reverse they come
// oldest first, starting after After; with Reverse, newest first,
// starting before Before. Either way only offsets strictly between After
// and Before are read (Before 0 means no upper bound), at most Limit, and
// when MaxBytes is above 0 no more once their data add up to MaxBytes
// (the first always comes).
type HistoryQuery struct {
	After    uint64
	Before   uint64
	Limit    int
	Reverse  bool
	MaxBytes int
}

// History is a page of a channel's history.
type History struct {
	Publications []Publication
	// Position is the channel's latest offset and epoch when it was read.
	Position Position
}
