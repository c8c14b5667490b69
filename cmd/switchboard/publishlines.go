package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/switchboard/switchboard/client"
)

// publish --lines sends its lines in batches: a batch's publications
// take effect in its order, share the server's commits and stop at the
// first that fails, so the lines keep their order and nothing after a
// failed line is published, at tens of thousands of lines a second
// rather than one commit's worth each.
const (
	// maxLine is the longest line read: more than the server's largest
	// message by default.
	maxLine = 16 << 20
	// linesPerBatch is the server's default --max-batch: the most lines a
	// batch holds, fewer when the server's serverInfo says so.
	linesPerBatch = 100
	// batchBytes is where a batch stops taking lines: the line that
	// reaches it is the batch's last. A batch the server refuses as too
	// big is halved until it takes it.
	batchBytes = 256 << 10
	// linesAhead is how many lines are read ahead of what is published.
	linesAhead = 4 * linesPerBatch
)

// line is one line of standard input: its number and its data, or what
// stops the reading there.
type line struct {
	n    int
	data json.RawMessage
	err  error
}

// publishLines publishes each non-blank line of in, in order, and stops
// at the first that fails, saying which. Lines go in a batch with those
// already read when the one before is answered, so a line is sent at once
// when none is waiting behind it.
func publishLines(ctx context.Context, c *client.Client, channel string, in io.Reader, out jsonOut, stderr io.Writer) error {
	lines := make(chan line, linesAhead)
	// The reader ends at the end of the input, at a line that is not
	// JSON, or once publishing has stopped and it finds no room.
	quit := make(chan struct{})
	defer close(quit)
	go readLines(in, lines, quit)

	size, err := batchSize(ctx, c)
	if err != nil {
		return err
	}
	p := &linePublisher{c: c, channel: channel, out: out, size: size}
	for {
		batch, stop, more := p.gather(ctx, lines)
		if err := p.publish(ctx, batch); err != nil {
			if p.outErr != nil {
				return p.outErr
			}
			return p.stopped(stderr, err)
		}
		if stop != nil {
			p.failed = stop.n
			return p.stopped(stderr, stop.err)
		}
		if !more {
			return nil
		}
	}
}

// batchSize is how many lines go in a batch: what the server's serverInfo
// says it takes, up to linesPerBatch; or one, for a server that does not
// say, which runs a batch's calls independently, so that a line after a
// failed one could be published.
func batchSize(ctx context.Context, c *client.Client) (int, error) {
	var info struct {
		MaxBatch int `json:"maxBatch"`
	}
	if err := c.Call(ctx, "serverInfo", nil, &info); err != nil {
		return 0, err
	}
	return max(1, min(info.MaxBatch, linesPerBatch)), nil
}

// readLines sends the non-blank lines of in on lines, then closes it.
func readLines(in io.Reader, lines chan<- line, quit <-chan struct{}) {
	defer close(lines)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	send := func(l line) bool {
		select {
		case lines <- l:
			return true
		case <-quit:
			return false
		}
	}
	for sc.Scan() {
		n++
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		if !json.Valid(data) {
			send(line{n: n, err: usagef("line %d is not JSON: %.80q", n, data)})
			return
		}
		if !send(line{n: n, data: bytes.Clone(data)}) {
			return
		}
	}
	if err := sc.Err(); err != nil {
		send(line{n: n + 1, err: fmt.Errorf("reading standard input: %w", err)})
	}
}

// gather waits for a line, then takes those already read behind it, up
// to a batch. It returns the batch; the line that stops the reading, if
// it came; and whether more lines may follow.
func (p *linePublisher) gather(ctx context.Context, lines <-chan line) (batch []line, stop *line, more bool) {
	size := 0
	for len(batch) < linesPerBatch && size < batchBytes {
		var l line
		var ok bool
		if len(batch) == 0 {
			select {
			case l, ok = <-lines:
			case <-ctx.Done():
				return nil, &line{n: p.last + 1, err: ctx.Err()}, false
			}
		} else {
			select {
			case l, ok = <-lines:
			default:
				return batch, nil, true
			}
		}
		switch {
		case !ok:
			return batch, nil, false
		case l.err != nil:
			return batch, &l, false
		}
		batch = append(batch, l)
		size += len(l.data)
		p.last = l.n
	}
	return batch, nil, true
}

// linePublisher publishes batches of lines and keeps count.
type linePublisher struct {
	c         *client.Client
	channel   string
	out       jsonOut
	size      int // the most lines a batch sends: halved while the server refuses more
	published int
	failed    int   // the number of the line it stopped at
	unknown   int   // when a batch's outcome is unknown, its last line
	last      int   // the number of the last line gathered
	outErr    error // standard output failed: no more to say
}

// publish publishes batch, in batches the server takes, printing each
// result in order, and returns the first failure.
func (p *linePublisher) publish(ctx context.Context, batch []line) error {
	for len(batch) > 0 {
		n := min(p.size, len(batch))
		calls := make([]client.BatchCall, n)
		results := make([]client.Published, n)
		for i, l := range batch[:n] {
			calls[i] = client.BatchCall{Method: "channelPublish", Params: publishParams{p.channel, l.data}, Result: &results[i]}
		}
		err := p.c.Batch(ctx, calls)
		if refusedWhole(err) && n > 1 {
			p.size = (n + 1) / 2 // nothing of it ran: too long or too big
			continue
		}
		if err != nil {
			p.failed = batch[0].n
			if n > 1 && !refusedWhole(err) {
				p.unknown = batch[n-1].n // sent, and perhaps published, without word of it
			}
			return err
		}
		for i := range calls {
			if calls[i].Err != nil {
				p.failed = batch[i].n
				return calls[i].Err
			}
			p.published++
			if err := p.out.write(results[i]); err != nil {
				p.outErr = err
				return err
			}
		}
		batch = batch[n:]
	}
	return nil
}

// refusedWhole reports whether err is the server refusing a batch before
// running any of it: longer than its --max-batch, or bigger than its
// --max-message-size.
func refusedWhole(err error) bool {
	var e *client.Error
	return errors.Is(err, client.ErrTooLarge) || errors.As(err, &e) && e.Code == -32600
}

// stopped says on stderr where publishing stopped, and returns err.
func (p *linePublisher) stopped(stderr io.Writer, err error) error {
	fmt.Fprintf(stderr, "switchboard: publish stopped at line %d (%d published before it)\n", p.failed, p.published)
	if p.unknown > 0 {
		fmt.Fprintf(stderr, "switchboard: lines %d to %d were sent, and may have been published: no reply came; see the channel's history\n", p.failed, p.unknown)
	}
	return err
}

type publishParams struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}
