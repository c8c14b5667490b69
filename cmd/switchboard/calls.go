package main

// The one-shot client commands: each makes its calls and exits.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/switchboard/switchboard/client"
)

func callFlags(cf *connFlags, stderr io.Writer) *flag.FlagSet {
	return clientCommand("call", cf, stderr)
}

func callCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var cf connFlags
	pos, err := parseClientArgs(callFlags(&cf, stderr), args, 1, 2, "call [flags] METHOD [PARAMS | -]")
	if err != nil {
		return err
	}
	var params json.RawMessage
	if len(pos) == 2 {
		if params, err = jsonArg("PARAMS", pos[1], stdin); err != nil {
			return err
		}
		if params[0] != '{' && params[0] != '[' {
			return usagef("PARAMS must be a JSON object (by name) or array (by position)")
		}
	}
	c, err := cf.dial(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	var result json.RawMessage
	var p any // a nil json.RawMessage would be sent as null
	if params != nil {
		p = params
	}
	if err := c.Call(ctx, pos[0], p, &result); err != nil {
		return err
	}
	return jsonOut{stdout, cf.pretty}.writeRaw(result)
}

type publishOpts struct {
	connFlags
	lines bool
	key   string
}

func publishFlags(o *publishOpts, stderr io.Writer) *flag.FlagSet {
	fs := clientCommand("publish", &o.connFlags, stderr)
	fs.BoolVar(&o.lines, "lines", false, "publish each line of standard input (NDJSON), in order; stop at the first failure")
	fs.StringVar(&o.key, "idempotency-key", "", "publish nothing if the channel has seen this key recently (safe retries)")
	return fs
}

func publishCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o publishOpts
	const usage = "publish [flags] CHANNEL (DATA | - | --lines)"
	pos, err := parseClientArgs(publishFlags(&o, stderr), args, 1, 2, usage)
	if err != nil {
		return err
	}
	if o.lines == (len(pos) == 2) {
		return usagef("usage: switchboard %s", usage)
	}
	if o.lines && o.key != "" {
		return usagef("--idempotency-key cannot be used with --lines")
	}
	channel := pos[0]
	out := jsonOut{stdout, o.pretty}
	var data json.RawMessage
	if !o.lines {
		if data, err = jsonArg("DATA", pos[1], stdin); err != nil {
			return err
		}
	}
	c, err := o.dial(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	if !o.lines {
		res, err := c.Publish(ctx, channel, data, o.key)
		if err != nil {
			return err
		}
		return out.write(res)
	}
	return publishLines(ctx, c, channel, stdin, out, stderr)
}

type historyOpts struct {
	connFlags
	limit int
	since offsetFlag
}

func historyFlags(o *historyOpts, stderr io.Writer) *flag.FlagSet {
	fs := clientCommand("history", &o.connFlags, stderr)
	fs.IntVar(&o.limit, "limit", 100, "the most publications to print; 0 for all")
	fs.Var(&o.since, "since", "print the publications after this offset, instead of the latest")
	return fs
}

func historyCmd(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var o historyOpts
	pos, err := parseClientArgs(historyFlags(&o, stderr), args, 1, 1, "history [flags] CHANNEL")
	if err != nil {
		return err
	}
	limit, since := o.limit, o.since
	if limit < 0 {
		return usagef("--limit must be 0 or more")
	}
	c, err := o.dial(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	out := jsonOut{stdout, o.pretty}
	if !since.set && limit > 0 {
		pubs, err := latest(ctx, c, pos[0], limit)
		if err != nil {
			return err
		}
		for _, p := range pubs {
			if err := out.write(p); err != nil {
				return err
			}
		}
		return nil
	}
	return forward(ctx, c, pos[0], since.offset, limit, out.write)
}

// historyPage is the most a history call may ask for.
const historyPage = 1000

// latest reads channel's last n publications, oldest first.
func latest(ctx context.Context, c *client.Client, channel string, n int) ([]client.Publication, error) {
	var pubs []client.Publication // newest first
	q := client.HistoryQuery{NewestFirst: true}
	for len(pubs) < n {
		q.Limit = min(n-len(pubs), historyPage)
		h, err := c.History(ctx, channel, q)
		if err != nil {
			return nil, err
		}
		pubs = append(pubs, h.Publications...)
		if len(h.Publications) == 0 {
			break
		}
		q.Since = &client.Position{Offset: h.Publications[len(h.Publications)-1].Offset, Epoch: h.Epoch}
	}
	slices.Reverse(pubs)
	return pubs, nil
}

// forward passes channel's publications after offset to f, oldest first,
// n of them at most (0: all).
func forward(ctx context.Context, c *client.Client, channel string, offset uint64, n int, f func(any) error) error {
	pos, err := c.Latest(ctx, channel)
	if err != nil {
		return err
	}
	q := client.HistoryQuery{Since: &client.Position{Offset: offset, Epoch: pos.Epoch}}
	for seen := 0; n == 0 || seen < n; {
		q.Limit = historyPage
		if n > 0 {
			q.Limit = min(n-seen, historyPage)
		}
		h, err := c.History(ctx, channel, q)
		if err != nil {
			return err
		}
		for _, p := range h.Publications {
			if err := f(p); err != nil {
				return err
			}
		}
		seen += len(h.Publications)
		if len(h.Publications) == 0 {
			return nil
		}
		q.Since.Offset = h.Publications[len(h.Publications)-1].Offset
	}
	return nil
}

func presenceFlags(cf *connFlags, stderr io.Writer) *flag.FlagSet {
	return clientCommand("presence", cf, stderr)
}

func presenceCmd(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var cf connFlags
	pos, err := parseClientArgs(presenceFlags(&cf, stderr), args, 1, 1, "presence [flags] CHANNEL")
	if err != nil {
		return err
	}
	c, err := cf.dial(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Presence(ctx, pos[0])
	if err != nil {
		return err
	}
	return jsonOut{stdout, cf.pretty}.write(res)
}

type methodsOpts struct {
	connFlags
	raw bool
}

func methodsFlags(o *methodsOpts, stderr io.Writer) *flag.FlagSet {
	fs := clientCommand("methods", &o.connFlags, stderr)
	fs.BoolVar(&o.raw, "json", false, "print the methods as the OpenRPC document lists them, as one JSON array")
	return fs
}

func methodsCmd(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var o methodsOpts
	if _, err := parseClientArgs(methodsFlags(&o, stderr), args, 0, 0, "methods [flags]"); err != nil {
		return err
	}
	c, err := o.dial(stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	out := jsonOut{stdout, o.pretty}
	if o.raw {
		var doc struct {
			Methods json.RawMessage `json:"methods"`
		}
		if err := c.Call(ctx, "rpc.discover", nil, &doc); err != nil {
			return err
		}
		return out.writeRaw(doc.Methods)
	}
	methods, err := c.Methods(ctx)
	if err != nil {
		return err
	}
	for _, m := range methods {
		if err := out.write(m); err != nil {
			return err
		}
	}
	return nil
}

// offsetFlag is an optional offset.
type offsetFlag struct {
	offset uint64
	set    bool
}

func (f *offsetFlag) String() string {
	if !f.set {
		return ""
	}
	return fmt.Sprint(f.offset)
}

func (f *offsetFlag) Set(s string) error {
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != s {
		return errors.New("want an offset: 0 or a positive whole number")
	}
	f.offset, f.set = n, true
	return nil
}
