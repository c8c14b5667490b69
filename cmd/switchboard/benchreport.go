package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard/switchboard/internal/loadgen"
)

// benchReport is one run, the JSON object bench prints on stdout; the
// README's "Measuring a server" lists its fields. Each mode fills the
// embedded part of its own, and the others are left out.
type benchReport struct {
	Mode        string  `json:"mode"`
	URL         string  `json:"url"`
	Channel     string  `json:"channel,omitempty"`
	Connections int     `json:"connections"`
	Depth       int     `json:"depth,omitempty"`
	Batch       int     `json:"batch,omitempty"` // calls per message (rpc, publish)
	Rate        float64 `json:"rate"`
	// Seconds is how long the load ran: from when every connection was
	// open (and subscribed) to when the last reply was in.
	Seconds     float64 `json:"seconds"`
	Interrupted bool    `json:"interrupted"`
	Errors      uint64  `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`
	// Latency is a call's round trip (rpc), a publication's until its
	// acknowledgement (publish), or until its delivery (fanout).
	Latency *latencyStats `json:"latency,omitempty"`
	*callStats
	*publishStats
	*fanoutStats
	*idleStats
}

type latencyStats struct {
	Count  uint64  `json:"count"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
	MeanMs float64 `json:"meanMs"`
}

type callStats struct {
	Calls          uint64  `json:"calls"`
	CallsPerSecond float64 `json:"callsPerSecond"`
}

type publishStats struct {
	PayloadBytes          int     `json:"payloadBytes"`
	Publications          uint64  `json:"publications"`
	PublicationsPerSecond float64 `json:"publicationsPerSecond"`
}

type fanoutStats struct {
	Subscribers         int          `json:"subscribers"`
	Deliveries          uint64       `json:"deliveries"`
	DeliveriesPerSecond float64      `json:"deliveriesPerSecond"`
	Lost                uint64       `json:"lost"`
	Duplicates          uint64       `json:"duplicates"`
	AckLatency          latencyStats `json:"ackLatency"`
}

type idleStats struct {
	Subscribe   bool    `json:"subscribe"`
	Opened      int     `json:"opened"`
	Failed      int     `json:"failed"`
	OpenSeconds float64 `json:"openSeconds"`
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latencyOf(h *loadgen.Histogram) latencyStats {
	return latencyStats{
		Count:  h.Count(),
		P50Ms:  millis(h.Quantile(0.5)),
		P99Ms:  millis(h.Quantile(0.99)),
		P999Ms: millis(h.Quantile(0.999)),
		MaxMs:  millis(h.Max()),
		MeanMs: millis(h.Mean()),
	}
}

// perSecond is n over the report's seconds; 0 for a run of no length.
func (r *benchReport) perSecond(n uint64) float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(n) / r.Seconds
}

// writeTable writes the report for people, on stderr.
func (r *benchReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "switchboard bench %s: %s, %s\n", r.Mode, r.URL, r.shape())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{name}, args...)...)
	}
	if r.callStats != nil {
		row("calls", "%d\t%.0f/s", r.Calls, r.CallsPerSecond)
	}
	if r.publishStats != nil {
		row("publications", "%d\t%.0f/s", r.Publications, r.PublicationsPerSecond)
	}
	if f := r.fanoutStats; f != nil {
		row("deliveries", "%d\t%.0f/s", f.Deliveries, f.DeliveriesPerSecond)
		row("lost", "%d", f.Lost)
		row("duplicates", "%d", f.Duplicates)
	}
	if r.Latency != nil {
		name := map[string]string{"rpc": "call latency", "publish": "ack latency", "fanout": "delivery latency"}[r.Mode]
		row(name, "%s", r.Latency)
	}
	if f := r.fanoutStats; f != nil {
		row("ack latency", "%s", &f.AckLatency)
	}
	if i := r.idleStats; i != nil {
		row("opened", "%d of %d\tin %.2fs", i.Opened, r.Connections, i.OpenSeconds)
		row("failed", "%d", i.Failed)
		row("held", "%.2fs", r.Seconds)
	}
	if r.FirstError != "" {
		row("errors", "%d\tthe first: %s", r.Errors, r.FirstError)
	} else {
		row("errors", "%d", r.Errors)
	}
	tw.Flush()
	if r.Interrupted {
		fmt.Fprintln(w, "  (interrupted: these are the figures up to then)")
	}
}

// shape says what the run was made of, for the table's title.
func (r *benchReport) shape() string {
	var parts []string
	switch r.Mode {
	case "fanout":
		parts = append(parts, fmt.Sprintf("%d subscribers, 1 publisher × depth %d", r.Subscribers, r.Depth))
	case "idle":
		parts = append(parts, fmt.Sprintf("%d connections", r.Connections))
	case "rpc", "publish":
		parts = append(parts, fmt.Sprintf("%d connections × depth %d", r.Connections, r.Depth))
		if r.Batch > 1 {
			parts = append(parts, fmt.Sprintf("batches of %d", r.Batch))
		}
	}
	if r.Rate > 0 {
		parts = append(parts, fmt.Sprintf("at most %g/s", r.Rate))
	}
	if r.publishStats != nil {
		parts = append(parts, fmt.Sprintf("%d-byte data on %s", r.PayloadBytes, r.Channel))
	}
	parts = append(parts, fmt.Sprintf("%.2fs", r.Seconds))
	return strings.Join(parts, ", ")
}

func (l *latencyStats) String() string {
	if l.Count == 0 {
		return "none measured"
	}
	return fmt.Sprintf("p50 %.3fms  p99 %.3fms  p999 %.3fms  max %.3fms", l.P50Ms, l.P99Ms, l.P999Ms, l.MaxMs)
}
