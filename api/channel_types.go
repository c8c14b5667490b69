package api

import (
	"encoding/json"
	"time"

	"github.com/switchboard/switchboard/service"
)

// StreamPosition is a place in a channel's history.
type StreamPosition struct {
	Offset uint64 `json:"offset" doc:"An offset in the channel: 0 is before the first publication."`
	Epoch  string `json:"epoch" doc:"The incarnation of the channel's history the offset belongs to."`
}

func (p *StreamPosition) position() *service.Position {
	if p == nil {
		return nil
	}
	return &service.Position{Offset: p.Offset, Epoch: p.Epoch}
}

// PublishParams are channelPublish's params.
type PublishParams struct {
	Channel        string          `json:"channel" doc:"The channel: 1 to 255 characters of A-Z a-z 0-9 _ - : and . between segments."`
	Data           json.RawMessage `json:"data" doc:"The message: any JSON value but null, up to the server's data size limit (64 KiB unless configured)."`
	IdempotencyKey string          `json:"idempotencyKey,omitempty" doc:"Up to 128 bytes. A publication repeating a key seen on the channel within the idempotency window publishes nothing and answers the first one's offset."`
}

// PublishResult is channelPublish's result.
type PublishResult struct {
	Channel   string `json:"channel" doc:"The channel published to."`
	Offset    uint64 `json:"offset" doc:"The publication's offset."`
	Epoch     string `json:"epoch" doc:"The channel's epoch."`
	Duplicate bool   `json:"duplicate" doc:"True when the idempotency key had been seen: nothing new was published and offset is the first publication's."`
}

// SubscribeParams are channelSubscribe's params.
type SubscribeParams struct {
	Channel   string          `json:"channel" doc:"The channel to subscribe to."`
	Since     *StreamPosition `json:"since,omitempty" doc:"Where the client left off: the offset of the last publication it has, with its epoch. Recovers what was published after it."`
	JoinLeave bool            `json:"joinLeave,omitempty" doc:"Also receive channelJoin and channelLeave."`
}

// SubscribeResult is channelSubscribe's result.
type SubscribeResult struct {
	Channel      string        `json:"channel" doc:"The channel subscribed to."`
	Offset       uint64        `json:"offset" doc:"The channel's latest offset when the subscription began (0 for a channel with no publications); live publications follow it."`
	Epoch        string        `json:"epoch" doc:"The channel's epoch."`
	Recovered    bool          `json:"recovered" doc:"True when since was given and publications holds everything published after it: nothing was lost."`
	Publications []Publication `json:"publications" doc:"What was published after since, oldest first, up to the recovery limit (1000, and 4 MiB of data); empty without since."`
}

// ChannelParams name a channel.
type ChannelParams struct {
	Channel string `json:"channel" doc:"The channel."`
}

// UnsubscribeResult is channelUnsubscribe's result.
type UnsubscribeResult struct {
	Channel string `json:"channel" doc:"The channel unsubscribed from."`
}

// HistoryParams are channelHistory's params.
type HistoryParams struct {
	// The order puts what most calls set first, for callers that pass
	// params by position: the newest ten are ["chat.lobby", 10, true].
	Channel     string          `json:"channel" doc:"The channel."`
	Limit       int             `json:"limit,omitempty" doc:"The most publications to return, 1 to 1000; absent or 0 means the default page of 100."`
	NewestFirst bool            `json:"newestFirst,omitempty" doc:"Newest first, starting before since."`
	Since       *StreamPosition `json:"since,omitempty" doc:"Start after this position (with newestFirst, before it). Its epoch must be the channel's."`
}

// HistoryResult is channelHistory's result.
type HistoryResult struct {
	Channel      string        `json:"channel" doc:"The channel."`
	Publications []Publication `json:"publications" doc:"The page, in the order asked for: at most limit, and no more once they hold 4 MiB of data."`
	Offset       uint64        `json:"offset" doc:"The channel's latest offset when it was read."`
	Epoch        string        `json:"epoch" doc:"The channel's epoch."`
}

// Publication is one publication, in history and in channelPublication
// notifications.
type Publication struct {
	Channel   string          `json:"channel" doc:"The channel."`
	Offset    uint64          `json:"offset" doc:"The publication's offset in the channel."`
	Data      json.RawMessage `json:"data" doc:"The message, as published."`
	Publisher string          `json:"publisher" doc:"The user who published it; empty for anonymous publishers."`
	Time      time.Time       `json:"time" doc:"When the server accepted it."`
}

// PresenceResult is channelPresence's result.
type PresenceResult struct {
	Channel string   `json:"channel" doc:"The channel."`
	Members []Member `json:"members" doc:"One per subscribed connection, oldest first."`
}

// Member is one subscriber of a channel.
type Member struct {
	User         string    `json:"user" doc:"The subscriber's user; empty for anonymous callers."`
	ConnectionID string    `json:"connectionId" doc:"The subscribed connection."`
	Since        time.Time `json:"since" doc:"When it subscribed."`
}

// MemberEvent is the params of channelJoin and channelLeave.
type MemberEvent struct {
	Channel      string    `json:"channel" doc:"The channel."`
	User         string    `json:"user" doc:"The user who joined or left; empty for anonymous callers."`
	ConnectionID string    `json:"connectionId" doc:"The connection that joined or left."`
	Since        time.Time `json:"since" doc:"When that connection subscribed."`
}

// Unsubscribed is the params of channelUnsubscribed.
type Unsubscribed struct {
	Channel string `json:"channel" doc:"The channel whose subscription ended."`
	Reason  string `json:"reason" doc:"Why: removed (the channel was removed), permission (a refreshed token no longer allows the subscription), or interrupted (subscribe again with since to recover)."`
}

// ListParams are channelList's params.
type ListParams struct {
	Prefix string `json:"prefix,omitempty" doc:"Only channels whose names start with this."`
}

// ListResult is channelList's result.
type ListResult struct {
	Channels []ChannelSummary `json:"channels" doc:"The channels, in name order."`
	More     bool             `json:"more" doc:"True when more channels matched than were returned."`
}

// ChannelSummary describes one channel in a listing.
type ChannelSummary struct {
	Channel     string `json:"channel" doc:"The channel."`
	Subscribers int    `json:"subscribers" doc:"Connections subscribed to it: on this server, or with --engine redis, on every node."`
	Offset      uint64 `json:"offset" doc:"Its latest offset."`
}

// RemoveResult is channelRemove's result.
type RemoveResult struct {
	Channel string `json:"channel" doc:"The channel."`
	Offset  uint64 `json:"offset" doc:"0: the channel starts again."`
	Epoch   string `json:"epoch" doc:"The channel's new epoch."`
}
