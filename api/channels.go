package api

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/subscriptions"
)

// registerChannels adds the channel.* methods and notifications to reg:
// the hub's operations, and the connection's subscriptions kept by the
// subscriptions package within limits.
func registerChannels(reg *rpc.Registry, hub *service.Hub, subs *subscriptions.Registry) {
	lim := hub.Limits()

	rpc.Register(reg, rpc.Method{
		Name:    "channelPublish",
		Summary: "Publishes data to a channel",
		Description: "Answers once the publication is durable, with its offset. Offsets start at 1 and rise by exactly 1 per publication. " +
			"A publication repeating an idempotencyKey seen on the channel within the server's idempotency window publishes nothing and answers the first one's offset, with duplicate set. " +
			"Needs publish permission on the channel. Past the server's publication rate for the user, it answers -32029 with data.retryAfterMs. " +
			batchOrder,
		Errors:   []int{rpc.CodeForbidden, rpc.CodeLimitExceeded, rpc.CodeConflict},
		Examples: []rpc.Example{{Name: "publish", Params: examplePublish, Result: PublishResult{Channel: "chat.lobby", Offset: 42, Epoch: exampleEpoch}}},
		Ordered:  true,
	}, func(ctx context.Context, s *rpc.Session, p PublishParams) (PublishResult, error) {
		res, err := hub.Publish(placing(ctx), s.Caller(), p.Channel, p.Data, p.IdempotencyKey)
		if err != nil {
			return PublishResult{}, err
		}
		return PublishResult{Channel: p.Channel, Offset: res.Offset, Epoch: res.Epoch, Duplicate: res.Duplicate}, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:        "channelSubscribe",
		NeedsSocket: true,
		Heavy:       true, // a recovery is up to a history page
		Notifies:    true, // the subscription starts once its reply is queued
		Summary:     "Subscribes the connection to a channel, recovering what it missed",
		Description: "From the reply on, the connection receives every later publication of the channel exactly once, in offset order, as channelPublication notifications. " +
			"With since (a position from an earlier result or publication), publications holds what was published after it, up to the server's recovery limit, and recovered is true only when nothing was lost: the epoch is the same and the history still reaches back that far. " +
			"Nothing falls between the recovered publications and the live ones, and nothing is in both. When recovered is false, publications holds what could be read after since in the same epoch (none when the epoch changed); reload the channel's state or page through channelHistory. " +
			"With joinLeave the connection also receives channelJoin and channelLeave. Needs subscribe permission.",
		Errors: []int{rpc.CodeForbidden, rpc.CodeConflict, rpc.CodeLimitExceeded},
		Examples: []rpc.Example{
			{Name: "subscribe", Params: SubscribeParams{Channel: "chat.lobby"},
				Result: SubscribeResult{Channel: "chat.lobby", Offset: 42, Epoch: exampleEpoch, Publications: []Publication{}}},
			{Name: "recover", Params: SubscribeParams{Channel: "chat.lobby", Since: &StreamPosition{Offset: 41, Epoch: exampleEpoch}, JoinLeave: true},
				Result: SubscribeResult{Channel: "chat.lobby", Offset: 42, Epoch: exampleEpoch, Recovered: true, Publications: []Publication{examplePublication}}},
		},
	}, func(ctx context.Context, s *rpc.Session, p SubscribeParams) (SubscribeResult, error) {
		res, err := subs.Subscribe(ctx, s, p.Channel, p.Since.position(), p.JoinLeave)
		if err != nil {
			return SubscribeResult{}, err
		}
		return SubscribeResult{
			Channel:      p.Channel,
			Offset:       res.Position.Offset,
			Epoch:        res.Position.Epoch,
			Recovered:    res.Recovered,
			Publications: publications(res.Publications),
		}, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:        "channelUnsubscribe",
		NeedsSocket: true,
		Summary:     "Ends the connection's subscription to a channel",
		Description: "No notification of the channel is sent after the reply.",
		Errors:      []int{rpc.CodeNotFound},
		Examples:    []rpc.Example{{Name: "unsubscribe", Params: ChannelParams{Channel: "chat.lobby"}, Result: UnsubscribeResult{Channel: "chat.lobby"}}},
	}, func(_ context.Context, s *rpc.Session, p ChannelParams) (UnsubscribeResult, error) {
		return UnsubscribeResult(p), subs.Unsubscribe(s, p.Channel)
	})

	rpc.Register(reg, rpc.Method{
		Name:    "channelHistory",
		Heavy:   true,
		Summary: "Reads a page of a channel's history",
		Description: "Oldest first, starting after since; with newestFirst, newest first, starting before since. " +
			"Without since, from the oldest publication kept (or, with newestFirst, the newest). " +
			"To page on, pass the last publication's offset with the result's epoch as since. " +
			"Retention trims the oldest publications without renumbering the rest. Needs subscribe permission.",
		Errors: []int{rpc.CodeForbidden, rpc.CodeConflict},
		Examples: []rpc.Example{{Name: "newest",
			Params: HistoryParams{Channel: "chat.lobby", Limit: 10, NewestFirst: true},
			Result: HistoryResult{Channel: "chat.lobby", Offset: 42, Epoch: exampleEpoch, Publications: []Publication{examplePublication}}}},
	}, func(ctx context.Context, s *rpc.Session, p HistoryParams) (HistoryResult, error) {
		h, err := hub.History(ctx, s.Caller(), service.HistoryRequest{Channel: p.Channel, Since: p.Since.position(), Limit: p.Limit, Reverse: p.NewestFirst})
		if err != nil {
			return HistoryResult{}, err
		}
		return HistoryResult{Channel: p.Channel, Offset: h.Position.Offset, Epoch: h.Position.Epoch, Publications: publications(h.Publications)}, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:        "channelPresence",
		Heavy:       true, // one member per subscribed connection
		Summary:     "Lists a channel's subscribers",
		Description: "One member per subscribed connection, oldest first. Needs subscribe permission.",
		Errors:      []int{rpc.CodeForbidden},
		Examples: []rpc.Example{{Name: "presence", Params: ChannelParams{Channel: "chat.lobby"},
			Result: PresenceResult{Channel: "chat.lobby", Members: []Member{exampleMember}}}},
	}, func(ctx context.Context, s *rpc.Session, p ChannelParams) (PresenceResult, error) {
		ms, err := hub.Presence(ctx, s.Caller(), p.Channel)
		if err != nil {
			return PresenceResult{}, err
		}
		res := PresenceResult{Channel: p.Channel, Members: make([]Member, len(ms))}
		for i, m := range ms {
			res.Members[i] = member(m)
		}
		return res, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:    "channelList",
		Heavy:   true, // up to ListLimit names of up to 255 bytes
		Summary: "Lists the channels the caller may publish or subscribe to",
		Description: "Channels with history or subscribers whose names start with prefix, in name order, " +
			"with their subscriber count and latest offset. At most " + strconv.Itoa(lim.ListLimit) + "; more says there were others: narrow the prefix.",
		Examples: []rpc.Example{{Name: "list", Params: ListParams{Prefix: "chat."},
			Result: ListResult{Channels: []ChannelSummary{{Channel: "chat.lobby", Subscribers: 3, Offset: 42}}}}},
	}, func(ctx context.Context, s *rpc.Session, p ListParams) (ListResult, error) {
		infos, more, err := hub.Channels(ctx, s.Caller(), p.Prefix)
		if err != nil {
			return ListResult{}, err
		}
		res := ListResult{Channels: make([]ChannelSummary, len(infos)), More: more}
		for i, c := range infos {
			res.Channels[i] = ChannelSummary{Channel: c.Name, Subscribers: c.Subscribers, Offset: c.Offset}
		}
		return res, nil
	})

	rpc.Register(reg, rpc.Method{
		Name:    "channelRemove",
		Summary: "Deletes a channel's history and ends its subscriptions (admins only)",
		Description: "Subscribers get channelUnsubscribed with reason \"removed\". The channel starts again at offset 0 in a new epoch, " +
			"so clients holding old positions learn that they cannot recover. " + batchOrder,
		Errors:  []int{rpc.CodeForbidden, rpc.CodeConflict},
		Ordered: true,
		Examples: []rpc.Example{{Name: "remove", Params: ChannelParams{Channel: "chat.lobby"},
			Result: RemoveResult{Channel: "chat.lobby", Offset: 0, Epoch: "5b0e77c1a2d3f4e5"}}},
	}, func(ctx context.Context, s *rpc.Session, p ChannelParams) (RemoveResult, error) {
		pos, err := hub.Remove(placing(ctx), s.Caller(), p.Channel)
		if err != nil {
			return RemoveResult{}, err
		}
		return RemoveResult{Channel: p.Channel, Offset: pos.Offset, Epoch: pos.Epoch}, nil
	})

	rpc.RegisterNotification(reg, "channelPublication", "A publication to a subscribed channel",
		"Sent for every publication after the subscribe reply's offset, exactly once, in offset order.", examplePublication)
	rpc.RegisterNotification(reg, "channelJoin", "A connection subscribed to the channel",
		"Sent to subscriptions made with joinLeave.", exampleMemberEvent)
	rpc.RegisterNotification(reg, "channelLeave", "A connection's subscription to the channel ended",
		"Sent to subscriptions made with joinLeave, when another subscriber unsubscribes or disconnects.", exampleMemberEvent)
	rpc.RegisterNotification(reg, "channelUnsubscribed", "The server ended the connection's subscription",
		"Nothing more of the channel follows. Reasons: \"removed\" (the channel was removed; its history is gone and its epoch changed); "+
			"\"permission\" (a refreshed token no longer allows the subscription); "+
			"\"interrupted\" (with several nodes on Redis, the server could not deliver the channel in order, or Redis lost its data: "+
			"subscribe again with since to recover, and learn from recovered whether anything was lost).",
		Unsubscribed{Channel: "chat.lobby", Reason: service.ReasonRemoved})
}

// notificationOf renders a hub event as the notification sent for it.
func notificationOf(e *service.Event) any {
	var method string
	var params any
	switch e.Kind {
	case service.EventPublication:
		method, params = "channelPublication", publication(*e.Publication)
	case service.EventJoin:
		method, params = "channelJoin", memberEvent(e.Channel, *e.Member)
	case service.EventLeave:
		method, params = "channelLeave", memberEvent(e.Channel, *e.Member)
	case service.EventUnsubscribed:
		method, params = "channelUnsubscribed", Unsubscribed{Channel: e.Channel, Reason: e.Reason}
	default:
		return nil
	}
	n, err := rpc.NewNotification(method, params)
	if err != nil {
		return nil
	}
	return n
}

func publications(ps []service.Publication) []Publication {
	out := make([]Publication, len(ps))
	for i, p := range ps {
		out[i] = publication(p)
	}
	return out
}

func publication(p service.Publication) Publication {
	return Publication{Channel: p.Channel, Offset: p.Offset, Data: p.Data, Publisher: p.Publisher, Time: p.Time}
}

func member(m service.Member) Member {
	return Member{User: m.User, ConnectionID: m.ConnectionID, Since: m.Since}
}

func memberEvent(channel string, m service.Member) MemberEvent {
	return MemberEvent{Channel: channel, User: m.User, ConnectionID: m.ConnectionID, Since: m.Since}
}

var (
	exampleEpoch       = "9f2c4e1a7b3d5f60"
	examplePublish     = PublishParams{Channel: "chat.lobby", Data: json.RawMessage(`{"text":"hello"}`), IdempotencyKey: "msg-7f3a"}
	examplePublication = Publication{Channel: "chat.lobby", Offset: 42, Data: json.RawMessage(`{"text":"hello"}`), Publisher: "alice", Time: exampleTime}
	exampleMember      = Member{User: "alice", ConnectionID: "9c1d2e3f4a5b6c7d", Since: exampleTime}
	exampleMemberEvent = MemberEvent{Channel: "chat.lobby", User: "alice", ConnectionID: "9c1d2e3f4a5b6c7d", Since: exampleTime}
)

// batchOrder is what channelPublish and channelRemove promise in a batch.
const batchOrder = "In a batch, channelPublish and channelRemove calls take effect in the batch's order and share commits, and they stop at the first that fails: " +
	"the batch's later channelPublish and channelRemove calls are not run, and answer -32009."

// placing hands the engine rpc's Placed for a call of a batch, so that
// the batch's next publication starts once this one has its offset.
func placing(ctx context.Context) context.Context {
	if place := rpc.Placer(ctx); place != nil {
		return service.WhenPlaced(ctx, place)
	}
	return ctx
}
