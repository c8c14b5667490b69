package service

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxChannelLength is the longest channel name, in bytes.
const MaxChannelLength = 255

// ValidateChannel reports whether name is a channel name: 1 to 255
// characters of A-Z a-z 0-9 _ - : and ".", where "." separates segments
// and so may not start or end a name or appear twice in a row.
func ValidateChannel(name string) error {
	if name == "" || len(name) > MaxChannelLength {
		return Errorf(EINVALID, "channel name must be 1 to %d characters long", MaxChannelLength)
	}
	for i := 0; i < len(name); i++ {
		if !channelByte(name[i]) {
			return Errorf(EINVALID, "channel %q: %s is not allowed; use A-Z a-z 0-9 _ - : and . between segments", name, describeChar(name[i:]))
		}
	}
	if name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return Errorf(EINVALID, "channel %q: segments between dots must not be empty", name)
	}
	return nil
}

// describeChar names the character that s starts with, quoted: a whole
// rune ('é', not the 'Ã' of its first byte), or the byte in hex when s
// does not start with valid UTF-8.
func describeChar(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf("byte 0x%02x", s[0])
	}
	return strconv.QuoteRune(r)
}

func channelByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '_' || b == '-' || b == ':' || b == '.'
}

// Position is a place in a channel's history: an offset within one
// incarnation of it, named by its epoch. Offsets start at 1 and rise by
// exactly 1 with each publication; offset 0 is before the first.
type Position struct {
	Offset uint64
	Epoch  string
}

// Publication is one message published to a channel.
type Publication struct {
	Channel string
	Offset  uint64
	// Data is the message: any JSON value, kept as the publisher sent it.
	Data json.RawMessage
	// Publisher is the user who published it; "" for anonymous callers.
	Publisher string
	Time      time.Time
}

// Member is one subscriber of a channel, as presence reports it.
type Member struct {
	User         string
	ConnectionID string
	Since        time.Time
}

// SortMembers puts members in presence's order: longest subscribed
// first, then by connection ID.
func SortMembers(members []Member) {
	slices.SortFunc(members, func(a, b Member) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.ConnectionID, b.ConnectionID)
	})
}

// ChannelInfo describes a channel for listings.
type ChannelInfo struct {
	Name string
	// Subscribers counts the channel's subscriptions: on this node, or on
	// every node for an engine that several share.
	Subscribers int
	// Offset is the channel's latest offset: 0 before its first publication.
	Offset uint64
}

// EventKind tells what an Event reports.
type EventKind int

const (
	EventPublication  EventKind = iota + 1 // a publication to the channel
	EventJoin                              // a subscriber joined the channel
	EventLeave                             // a subscriber left the channel
	EventUnsubscribed                      // the server ended the receiver's subscription
)

// Reasons the server ends a subscription (EventUnsubscribed).
const (
	// ReasonRemoved: the channel was removed, its history with it.
	ReasonRemoved = "removed"
	// ReasonPermission: the connection's refreshed token no longer lets
	// it subscribe to the channel.
	ReasonPermission = "permission"
	// ReasonInterrupted: the engine could not deliver the channel's
	// publications in order (its broker lost some that history no longer
	// holds, or lost the channel's data); subscribing again with the last
	// position seen recovers what can be, and says whether anything was
	// lost.
	ReasonInterrupted = "interrupted"
)

// Event is what a Receiver is told about a channel it subscribed to. One
// Event is shared by every receiver it goes to; receivers must not change
// it.
type Event struct {
	Kind        EventKind
	Channel     string
	Publication *Publication // for EventPublication
	Member      *Member      // for EventJoin and EventLeave
	Reason      string       // for EventUnsubscribed

	once sync.Once
	wire any
}

// Wire returns the event as encode renders it for the wire, calling encode
// once however many receivers the event goes to: a publication fanned out
// to a thousand subscribers is encoded once, not a thousand times.
func (e *Event) Wire(encode func(*Event) any) any {
	e.once.Do(func() { e.wire = encode(e) })
	return e.wire
}

// Receiver is the receiving end of a subscription. Receive is called for
// each of the channel's events in order, from the engine's own goroutines
// and with the channel's fan-out waiting: it must not block. A receiver
// that cannot keep up must drop its connection, never slow the channel.
type Receiver interface {
	Receive(e *Event)
	// Member is who the receiver is, for presence.
	Member() Member
}
