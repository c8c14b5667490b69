// Package metrics exposes Switchboard's Prometheus metrics. It implements
// rpc.Observer, so the rpc package reports to it without knowing of
// Prometheus.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics holds the server's collectors and the registry they live in.
type Metrics struct {
	reg           *prometheus.Registry
	open          prometheus.Gauge
	calls         *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	notifications prometheus.Counter
	dropped       prometheus.Counter
	disconnects   *prometheus.CounterVec
}

// New returns metrics registered in a registry of their own, along with
// the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_connections_open",
			Help: "WebSocket connections open now.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_rpc_calls_total",
			Help: "JSON-RPC calls finished, by method and outcome (ok or an error name).",
		}, []string{"method", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_rpc_call_duration_seconds",
			Help:    "Time to run a JSON-RPC call, by method.",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"method"}),
		notifications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_notifications_sent_total",
			Help: "Notifications queued for sending to a connection.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_notifications_dropped_total",
			Help: "Notifications dropped because the connection was too slow or closing.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_disconnects_total",
			Help: "WebSocket connections ended, by reason.",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(m.open, m.calls, m.latency, m.notifications, m.dropped, m.disconnects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ConnOpened implements rpc.Observer.
func (m *Metrics) ConnOpened() { m.open.Inc() }

// ConnClosed implements rpc.Observer.
func (m *Metrics) ConnClosed(reason string) {
	m.open.Dec()
	m.disconnects.WithLabelValues(reason).Inc()
}

// CallDone implements rpc.Observer.
func (m *Metrics) CallDone(method, outcome string, elapsed time.Duration) {
	m.calls.WithLabelValues(method, outcome).Inc()
	m.latency.WithLabelValues(method).Observe(elapsed.Seconds())
}

// NotificationSent implements rpc.Observer.
func (m *Metrics) NotificationSent() { m.notifications.Inc() }

// NotificationDropped implements rpc.Observer.
func (m *Metrics) NotificationDropped() { m.dropped.Inc() }

// Totals returns the calls finished and the notifications queued since
// start, read from the counters /metrics exposes, so that serverInfo and
// a scraper never disagree.
func (m *Metrics) Totals() (calls, notifications uint64) {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		m.calls.Collect(ch)
		close(ch)
	}()
	var d dto.Metric
	for c := range ch {
		if c.Write(&d) == nil {
			calls += uint64(d.GetCounter().GetValue())
		}
	}
	if m.notifications.Write(&d) == nil {
		notifications = uint64(d.GetCounter().GetValue())
	}
	return calls, notifications
}
