package servertest

import (
	"encoding/json"
	"time"
)

// Result shapes, as openrpc.json describes them. They are declared here
// rather than taken from package api so that a renamed JSON field breaks
// the tests as it would break clients.

// WhoamiResult is sessionWhoami's result.
type WhoamiResult struct {
	User         string     `json:"user"`
	Anonymous    bool       `json:"anonymous"`
	ConnectionID string     `json:"connectionId"`
	Transport    string     `json:"transport"`
	Permissions  PermsJSON  `json:"permissions"`
	ExpiresAt    *time.Time `json:"expiresAt"`
}

// PermsJSON is a caller's permissions.
type PermsJSON struct {
	Publish   []string `json:"publish"`
	Subscribe []string `json:"subscribe"`
	Admin     bool     `json:"admin"`
}

// InfoResult is serverInfo's result.
type InfoResult struct {
	Version       string    `json:"version"`
	NodeID        string    `json:"nodeId"`
	StartedAt     time.Time `json:"startedAt"`
	UptimeSeconds float64   `json:"uptimeSeconds"`
	Connections   int       `json:"connections"`
}

// PingResult is serverPing's result.
type PingResult struct {
	Time time.Time `json:"time"`
}

// PublicationNote is channelPublication's params.
type PublicationNote struct {
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Data      json.RawMessage `json:"data"`
	Publisher string          `json:"publisher"`
	Time      time.Time       `json:"time"`
}

// SubscribeResult is channelSubscribe's result.
type SubscribeResult struct {
	Channel      string            `json:"channel"`
	Offset       uint64            `json:"offset"`
	Epoch        string            `json:"epoch"`
	Recovered    bool              `json:"recovered"`
	Publications []PublicationNote `json:"publications"`
}

// PublishResult is channelPublish's result.
type PublishResult struct {
	Channel   string `json:"channel"`
	Offset    uint64 `json:"offset"`
	Epoch     string `json:"epoch"`
	Duplicate bool   `json:"duplicate"`
}

// HistoryResult is channelHistory's result.
type HistoryResult struct {
	Channel      string            `json:"channel"`
	Publications []PublicationNote `json:"publications"`
	Offset       uint64            `json:"offset"`
	Epoch        string            `json:"epoch"`
}

// PresenceResult is channelPresence's result.
type PresenceResult struct {
	Channel string       `json:"channel"`
	Members []MemberJSON `json:"members"`
}

// MemberJSON is a presence member, and the params of channelJoin and
// channelLeave (which add the channel).
type MemberJSON struct {
	Channel      string    `json:"channel,omitempty"`
	User         string    `json:"user"`
	ConnectionID string    `json:"connectionId"`
	Since        time.Time `json:"since"`
}

// ChannelListResult is channelList's result.
type ChannelListResult struct {
	Channels []ChannelSummaryJSON `json:"channels"`
	More     bool                 `json:"more"`
}

// ChannelSummaryJSON is one channel of channelList.
type ChannelSummaryJSON struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
	Offset      uint64 `json:"offset"`
}

// RemoveResult is channelRemove's result.
type RemoveResult struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

// UnsubscribedNote is channelUnsubscribed's params.
type UnsubscribedNote struct {
	Channel string `json:"channel"`
	Reason  string `json:"reason"`
}

// OffsetsOf lists the publications' offsets.
func OffsetsOf(ps []PublicationNote) []uint64 {
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = p.Offset
	}
	return out
}

// Seq returns from, from+1, … to; nothing when to < from.
func Seq(from, to uint64) []uint64 {
	var out []uint64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}
