// Package embedded is the engine a single Switchboard node runs on its
// own: history in a durable log (SQLite), fan-out and presence in the
// process (package fanout).
//
// A publication goes: Publish → the log's sequencer gives it its offset
// and queues it → the log's committer writes the batch it is in, in one
// transaction → the committer tells the fan-out (Published), which
// moves the channel's position and delivers it to the local subscribers
// → only then is the publisher answered.
package embedded

import (
	"context"

	"github.com/switchboard/switchboard/fanout"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/sqlite"
)

// Log is the durable history the engine fans out from: sqlite.Store.
type Log interface {
	Append(ctx context.Context, p service.Publication, key string) (service.Published, error)
	Read(ctx context.Context, channel string, q service.HistoryQuery) ([]service.Publication, error)
	Remove(ctx context.Context, channel string) (service.Position, error)
	// Positions returns every known channel's committed position; it is
	// called before the first Append.
	Positions() map[string]service.Position
	// Epoch is the epoch of channels that were never removed.
	Epoch() string
	// Watch sets the watcher told of each committed change, in order,
	// before the change's publisher is answered.
	Watch(w sqlite.Watcher)
}

// Engine implements service.Engine over a Log, fanning out locally.
type Engine struct {
	log   Log
	local *fanout.Local
}

var _ service.Engine = (*Engine)(nil)

// New returns an engine over log, which it watches from now on. Call it
// before anything is appended to log.
func New(log Log) *Engine {
	// The log is in the process and committed changes reach the fan-out
	// whether or not anyone here subscribes: no hooks.
	e := &Engine{log: log, local: fanout.New(log.Epoch(), log.Positions(), fanout.Hooks{})}
	log.Watch(e.local)
	return e
}

// Publish implements service.Engine.
func (e *Engine) Publish(ctx context.Context, p service.Publication, key string) (service.Published, error) {
	return e.log.Append(ctx, p, key)
}

// History implements service.Engine. The publications read are never
// beyond the position returned with them.
func (e *Engine) History(ctx context.Context, name string, q service.HistoryQuery) (service.History, error) {
	for {
		pos := e.local.Position(name)
		rq := q
		if rq.Before == 0 || rq.Before > pos.Offset+1 {
			rq.Before = pos.Offset + 1
		}
		pubs, err := e.log.Read(ctx, name, rq)
		if err != nil {
			return service.History{}, err
		}
		// A removal between the two reads would pass off the new
		// epoch's publications as the old one's.
		if e.local.Position(name).Epoch == pos.Epoch {
			return service.History{Publications: pubs, Position: pos}, nil
		}
	}
}

// Subscribe implements service.Engine.
func (e *Engine) Subscribe(ctx context.Context, name string, r service.Receiver, joinLeave bool) (service.Position, error) {
	return e.local.Subscribe(ctx, name, r, joinLeave)
}

// Unsubscribe implements service.Engine.
func (e *Engine) Unsubscribe(name string, r service.Receiver) bool {
	return e.local.Unsubscribe(name, r)
}

// Presence implements service.Engine: on one node, the local
// subscribers are all of them.
func (e *Engine) Presence(_ context.Context, name string) ([]service.Member, error) {
	return e.local.Presence(name), nil
}

// Channels implements service.Engine.
func (e *Engine) Channels(_ context.Context, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool, error) {
	infos, more := e.local.Channels(prefix, visible, limit)
	return infos, more, nil
}

// Remove implements service.Engine.
func (e *Engine) Remove(ctx context.Context, name string) (service.Position, error) {
	return e.log.Remove(ctx, name)
}
