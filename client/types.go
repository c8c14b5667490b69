package client

import (
	"encoding/json"
	"time"
)

// Position is a place in a channel's history: the offset of a
// publication, and the epoch (the incarnation of the channel's history)
// that the offset belongs to. Offset 0 is before the first publication.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Publication is one message published to a channel.
type Publication struct {
	Channel   string          `json:"channel"`
	Offset    uint64          `json:"offset"`
	Data      json.RawMessage `json:"data"`
	Publisher string          `json:"publisher"` // "" for anonymous publishers
	Time      time.Time       `json:"time"`
}

// Published is the outcome of a publication.
type Published struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
	// Duplicate is true when the idempotency key had been seen: nothing
	// was published, and Offset is the first publication's.
	Duplicate bool `json:"duplicate"`
}

// HistoryQuery selects a page of a channel's history.
type HistoryQuery struct {
	// Since starts the page after this position (before it, with
	// NewestFirst). Its epoch must be the channel's.
	Since       *Position `json:"since,omitempty"`
	Limit       int       `json:"limit,omitempty"` // 1 to 1000; 0 for the server's default page (100)
	NewestFirst bool      `json:"newestFirst,omitempty"`
}

// History is a page of a channel's history.
type History struct {
	Channel      string        `json:"channel"`
	Publications []Publication `json:"publications"`
	Offset       uint64        `json:"offset"` // the channel's latest offset when it was read
	Epoch        string        `json:"epoch"`
}

// Member is one connection subscribed to a channel.
type Member struct {
	User         string    `json:"user"`
	ConnectionID string    `json:"connectionId"`
	Since        time.Time `json:"since"`
}

// Presence lists a channel's subscribers.
type Presence struct {
	Channel string   `json:"channel"`
	Members []Member `json:"members"`
}

// Method is one method of the server's API, as rpc.discover describes it.
type Method struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
}

// subscribed is channelSubscribe's result.
type subscribed struct {
	Channel      string        `json:"channel"`
	Offset       uint64        `json:"offset"`
	Epoch        string        `json:"epoch"`
	Recovered    bool          `json:"recovered"`
	Publications []Publication `json:"publications"`
}

// unsubscribed is the params of channelUnsubscribed.
type unsubscribed struct {
	Channel string `json:"channel"`
	Reason  string `json:"reason"`
}
