package servertest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/switchboard/switchboard/service"
)

// Metrics is one scrape of /metrics.
type Metrics map[string]*dto.MetricFamily

// Scrape fetches /metrics, as an admin, and parses it as the Prometheus text format.
func (s *Server) Scrape() Metrics {
	s.T.Helper()
	res := s.Do(http.MethodGet, "/metrics", Bearer(s.Token("prometheus", service.Permissions{Admin: true}, time.Hour)), nil)
	if res.Status != http.StatusOK {
		s.T.Fatalf("GET /metrics: HTTP %d", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		s.T.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.Body))
	if err != nil {
		s.T.Fatalf("GET /metrics is not in the Prometheus text format: %v", err)
	}
	return fams
}

// Find returns the sample of name with exactly labels, or nil.
func (s Metrics) Find(name string, labels map[string]string) *dto.Metric {
	f := s[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// Value returns a counter's or gauge's value, 0 for a series not yet
// exported (counter vectors export a series once it is first touched).
func (s Metrics) Value(name string, labels map[string]string) float64 {
	m := s.Find(name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// HistogramCount returns how many observations a histogram series holds.
func (s Metrics) HistogramCount(name string, labels map[string]string) uint64 {
	if m := s.Find(name, labels); m != nil && m.Histogram != nil {
		return m.Histogram.GetSampleCount()
	}
	return 0
}

// WantFamily checks that the scrape has a family name of typ.
func (s Metrics) WantFamily(t *testing.T, name string, typ dto.MetricType) {
	t.Helper()
	f := s[name]
	if f == nil {
		t.Errorf("/metrics has no %s", name)
		return
	}
	if f.GetType() != typ {
		t.Errorf("%s is a %v, want a %v", name, f.GetType(), typ)
	}
}
