package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/switchboard/switchboard/client"
)

// errLost is what subscribe --strict ends with when publications were
// lost.
var errLost = errors.New("publications were lost")

type subscribeOpts struct {
	connFlags
	since  offsetFlag
	count  int
	strict bool
}

func subscribeFlags(o *subscribeOpts, stderr io.Writer) *flag.FlagSet {
	fs := clientCommand("subscribe", &o.connFlags, stderr)
	fs.Var(&o.since, "since", "first print the publications after this offset (in each channel)")
	fs.IntVar(&o.count, "count", 0, "exit after this many publications; 0 for no end")
	fs.BoolVar(&o.strict, "strict", false, "exit with 4 when publications were lost, instead of going on after them")
	return fs
}

func subscribeCmd(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var o subscribeOpts
	channels, err := parseClientArgs(subscribeFlags(&o, stderr), args, 1, -1, "subscribe [flags] CHANNEL...")
	if err != nil {
		return err
	}
	since, count, strict := o.since, o.count, o.strict
	if count < 0 {
		return usagef("--count must be 0 or more")
	}
	c, err := o.dial(stderr)
	if err != nil {
		return err
	}
	defer c.Close()

	// A signal is how a subscriber is meant to stop: it ends cleanly,
	// with exit 0.
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var subs []*client.Subscription
	for _, ch := range channels {
		if slices.ContainsFunc(subs, func(s *client.Subscription) bool { return s.Channel() == ch }) {
			continue // named twice
		}
		from, err := startingPoint(ctx, c, ch, since)
		if err == nil {
			var s *client.Subscription
			if s, err = c.Subscribe(ctx, ch, from); err == nil {
				subs = append(subs, s)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped by a signal while starting
			}
			return err
		}
	}

	p := &printer{out: jsonOut{stdout, o.pretty}, left: count, stop: cancel}
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.follow(ctx, s, strict, stderr)
		}()
	}
	wg.Wait()
	return p.err // nil after --count, or after SIGINT or SIGTERM
}

// startingPoint is where a subscription to channel starts: after --since
// in the channel's current epoch, or nil for now.
func startingPoint(ctx context.Context, c *client.Client, channel string, since offsetFlag) (*client.Position, error) {
	if !since.set {
		return nil, nil
	}
	pos, err := c.Latest(ctx, channel)
	if err != nil {
		return nil, err
	}
	if since.offset > pos.Offset {
		return nil, usagef("--since %d is beyond %s's latest offset, %d", since.offset, channel, pos.Offset)
	}
	pos.Offset = since.offset
	return &pos, nil
}

// printer writes the publications of several subscriptions to stdout,
// one line each, and stops them all after --count, or at the first
// error.
type printer struct {
	out  jsonOut
	stop context.CancelFunc

	mu    sync.Mutex
	left  int // publications still to print, with --count
	ended bool
	err   error
}

func (p *printer) follow(ctx context.Context, s *client.Subscription, strict bool, stderr io.Writer) {
	for {
		pub, err := s.Next(ctx)
		var lost *client.LostError
		switch {
		case errors.As(err, &lost):
			fmt.Fprintf(stderr, "switchboard: %v\n", lost)
			if strict {
				p.end(fmt.Errorf("%w (--strict)", errLost))
				return
			}
			continue
		case err != nil:
			if ctx.Err() == nil {
				// The error itself may be printed alone, as JSON: say
				// whose it is first.
				fmt.Fprintf(stderr, "switchboard: the subscription to %s ended\n", s.Channel())
				p.end(fmt.Errorf("%s: %w", s.Channel(), err))
			}
			return
		}
		if !p.print(pub) {
			return
		}
	}
}

// print writes pub, reporting whether to go on.
func (p *printer) print(pub client.Publication) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return false
	}
	if err := p.out.write(pub); err != nil {
		p.endLocked(err)
		return false
	}
	if p.left > 0 {
		p.left--
		if p.left == 0 {
			p.endLocked(nil)
			return false
		}
	}
	return true
}

func (p *printer) end(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked(err)
}

func (p *printer) endLocked(err error) {
	if !p.ended {
		p.ended, p.err = true, err
		p.stop()
	}
}
