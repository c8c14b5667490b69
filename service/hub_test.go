package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/service"
)

// fakeEngine records the hub's calls and answers them with its fields.
type fakeEngine struct {
	mu    sync.Mutex
	calls []string

	published   []service.Publication
	publishKeys []string
	publishRes  service.Published

	historyQueries []service.HistoryQuery
	// history answers History; nil answers with histPos and no
	// publications.
	history func(q service.HistoryQuery) (service.History, error)
	histPos service.Position

	subPos       service.Position
	subErr       error
	subscribed   []service.Receiver
	unsubscribed []service.Receiver

	channelsPrefix  string
	channelsVisible func(string) bool
	channelsLimit   int

	removed []string
}

var _ service.Engine = (*fakeEngine)(nil)

func (e *fakeEngine) record(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
}

func (e *fakeEngine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

func (e *fakeEngine) Publish(_ context.Context, p service.Publication, key string) (service.Published, error) {
	e.record("Publish")
	e.published = append(e.published, p)
	e.publishKeys = append(e.publishKeys, key)
	return e.publishRes, nil
}

func (e *fakeEngine) History(_ context.Context, channel string, q service.HistoryQuery) (service.History, error) {
	e.record("History")
	e.historyQueries = append(e.historyQueries, q)
	if e.history != nil {
		return e.history(q)
	}
	return service.History{Position: e.histPos}, nil
}

func (e *fakeEngine) Subscribe(_ context.Context, channel string, r service.Receiver, joinLeave bool) (service.Position, error) {
	e.record("Subscribe")
	if e.subErr != nil {
		return service.Position{}, e.subErr
	}
	e.subscribed = append(e.subscribed, r)
	return e.subPos, nil
}

func (e *fakeEngine) Unsubscribe(channel string, r service.Receiver) bool {
	e.record("Unsubscribe")
	e.unsubscribed = append(e.unsubscribed, r)
	return true
}

func (e *fakeEngine) Presence(_ context.Context, channel string) ([]service.Member, error) {
	e.record("Presence")
	return []service.Member{{User: "u"}}, nil
}

func (e *fakeEngine) Channels(_ context.Context, prefix string, visible func(string) bool, limit int) ([]service.ChannelInfo, bool, error) {
	e.record("Channels")
	e.channelsPrefix, e.channelsVisible, e.channelsLimit = prefix, visible, limit
	return []service.ChannelInfo{{Name: prefix + "x"}}, true, nil
}

func (e *fakeEngine) Remove(_ context.Context, channel string) (service.Position, error) {
	e.record("Remove")
	e.removed = append(e.removed, channel)
	return service.Position{Epoch: "new"}, nil
}

type nopReceiver struct{}

func (nopReceiver) Receive(*service.Event) {}
func (nopReceiver) Member() service.Member { return service.Member{User: "u", ConnectionID: "c"} }

var (
	admin    = service.Caller{User: "root", Permissions: service.Permissions{Admin: true}}
	reader   = service.Caller{User: "reader", Permissions: service.Permissions{Subscribe: []string{"room.>"}}}
	writer   = service.Caller{User: "writer", Permissions: service.Permissions{Publish: []string{"room.>"}}}
	nobody   = service.Caller{User: "nobody"}
	everyone = service.Caller{User: "all", Permissions: service.Permissions{Publish: []string{">"}, Subscribe: []string{">"}}}
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := service.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func wantNoCalls(t *testing.T, e *fakeEngine) {
	t.Helper()
	if calls := e.Calls(); len(calls) != 0 {
		t.Fatalf("engine was called: %v", calls)
	}
}

func TestNewHubDefaults(t *testing.T) {
	h := service.NewHub(&fakeEngine{}, service.HubLimits{MaxDataSize: 10, HistoryPage: -1})
	want := service.DefaultHubLimits
	want.MaxDataSize = 10
	if got := h.Limits(); got != want {
		t.Errorf("Limits() = %+v, want %+v", got, want)
	}
}

func TestHubPublish(t *testing.T) {
	e := &fakeEngine{publishRes: service.Published{Position: service.Position{Offset: 7, Epoch: "ep"}}}
	h := service.NewHub(e, service.HubLimits{})
	before := time.Now()
	res, err := h.Publish(context.Background(), writer, "room.1", json.RawMessage(`{"a":1}`), "k1")
	if err != nil {
		t.Fatal(err)
	}
	if res != e.publishRes {
		t.Errorf("Publish = %+v, want %+v", res, e.publishRes)
	}
	if len(e.published) != 1 {
		t.Fatalf("engine got %d publications", len(e.published))
	}
	p := e.published[0]
	if p.Channel != "room.1" || string(p.Data) != `{"a":1}` || p.Publisher != "writer" || p.Offset != 0 {
		t.Errorf("engine got %+v", p)
	}
	if p.Time.Before(before.Add(-time.Second)) || p.Time.After(time.Now().Add(time.Second)) || p.Time.Location() != time.UTC {
		t.Errorf("publication time %v: want now, in UTC", p.Time)
	}
	if e.publishKeys[0] != "k1" {
		t.Errorf("engine got key %q", e.publishKeys[0])
	}
}

func TestHubPublishRefused(t *testing.T) {
	data := json.RawMessage(`1`)
	for _, tt := range []struct {
		name    string
		caller  service.Caller
		channel string
		data    json.RawMessage
		key     string
		code    string
	}{
		{"invalid channel", admin, "room..1", data, "", service.EINVALID},
		{"empty channel", admin, "", data, "", service.EINVALID},
		{"invalid channel before permission", nobody, "room 1", data, "", service.EINVALID},
		{"no permission", nobody, "room.1", data, "", service.EFORBIDDEN},
		{"subscribe only", reader, "room.1", data, "", service.EFORBIDDEN},
		{"outside the pattern", writer, "room", data, "", service.EFORBIDDEN},
		{"forbidden before size", reader, "room.1", make(json.RawMessage, 1<<20), "", service.EFORBIDDEN},
		{"too big", writer, "room.1", json.RawMessage(`"` + strings.Repeat("x", 99) + `"`), "", service.EINVALID},
		{"key too long", writer, "room.1", data, strings.Repeat("k", service.MaxIdempotencyKeyLength+1), service.EINVALID},
		{"data not UTF-8", writer, "room.1", json.RawMessage("\"a\xffb\""), "", service.EINVALID},
		{"data with a lone surrogate half", writer, "room.1", json.RawMessage("\"\xed\xa0\x80\""), "", service.EINVALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &fakeEngine{}
			h := service.NewHub(e, service.HubLimits{MaxDataSize: 100})
			_, err := h.Publish(context.Background(), tt.caller, tt.channel, tt.data, tt.key)
			wantCode(t, err, tt.code)
			wantNoCalls(t, e)
		})
	}
}

// Each user has an allowance of publications; past it the hub refuses
// with ELIMIT and how long to wait, publishing nothing. Refusals for
// other reasons cost no allowance.
func TestHubPublishRate(t *testing.T) {
	e := &fakeEngine{}
	h := service.NewHub(e, service.HubLimits{PublishRate: 1, PublishBurst: 2})
	ctx, data := context.Background(), json.RawMessage(`1`)
	if _, err := h.Publish(ctx, writer, "elsewhere", data, ""); service.ErrorCode(err) != service.EFORBIDDEN {
		t.Fatalf("a forbidden publication: %v", err)
	}
	for i := range 2 {
		if _, err := h.Publish(ctx, writer, "room.1", data, ""); err != nil {
			t.Fatalf("publication %d of the burst: %v", i+1, err)
		}
	}
	_, err := h.Publish(ctx, writer, "room.1", data, "")
	var se *service.Error
	if !errors.As(err, &se) || se.Code != service.ELIMIT || se.RetryAfter <= 0 || se.RetryAfter > time.Second {
		t.Fatalf("past the burst: %v, want ELIMIT with a wait of at most a second", err)
	}
	if _, err := h.Publish(ctx, admin, "room.1", data, ""); err != nil {
		t.Fatalf("another user: %v", err)
	}
	if n := len(e.published); n != 3 {
		t.Errorf("engine got %d publications, want 3", n)
	}
}

func TestHubPublishLimitsInclusive(t *testing.T) {
	e := &fakeEngine{}
	h := service.NewHub(e, service.HubLimits{MaxDataSize: 100})
	data := json.RawMessage(`"` + strings.Repeat("x", 98) + `"`) // 100 bytes
	if _, err := h.Publish(context.Background(), writer, "room.1", data, strings.Repeat("k", service.MaxIdempotencyKeyLength)); err != nil {
		t.Fatalf("publication of exactly the limits: %v", err)
	}
	// The default limit is 64 KiB.
	h = service.NewHub(e, service.HubLimits{})
	if _, err := h.Publish(context.Background(), writer, "room.1", make(json.RawMessage, 64<<10), ""); err != nil {
		t.Fatalf("64 KiB: %v", err)
	}
	_, err := h.Publish(context.Background(), writer, "room.1", make(json.RawMessage, 64<<10+1), "")
	wantCode(t, err, service.EINVALID)
	if n := len(e.published); n != 2 {
		t.Errorf("engine got %d publications, want 2", n)
	}
}

func TestHubReadsRefused(t *testing.T) {
	// Every read checks the name, then the subscribe permission, before
	// it calls the engine.
	for _, tt := range []struct {
		name    string
		caller  service.Caller
		channel string
		code    string
	}{
		{"invalid", admin, "room.", service.EINVALID},
		{"invalid before permission", nobody, "room*", service.EINVALID},
		{"no permission", nobody, "room.1", service.EFORBIDDEN},
		{"publish only", writer, "room.1", service.EFORBIDDEN},
		{"outside the pattern", reader, "other", service.EFORBIDDEN},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := &fakeEngine{}
			h := service.NewHub(e, service.HubLimits{})
			_, err := h.Subscribe(ctx, tt.caller, tt.channel, nil, nopReceiver{}, false)
			wantCode(t, err, tt.code)
			_, err = h.Subscribe(ctx, tt.caller, tt.channel, &service.Position{Offset: 1}, nopReceiver{}, true)
			wantCode(t, err, tt.code)
			_, err = h.History(ctx, tt.caller, service.HistoryRequest{Channel: tt.channel})
			wantCode(t, err, tt.code)
			_, err = h.History(ctx, tt.caller, service.HistoryRequest{Channel: tt.channel, Since: &service.Position{}, Reverse: true})
			wantCode(t, err, tt.code)
			_, err = h.Presence(ctx, tt.caller, tt.channel)
			wantCode(t, err, tt.code)
			wantNoCalls(t, e)
		})
	}
}

func TestHubPresence(t *testing.T) {
	e := &fakeEngine{}
	h := service.NewHub(e, service.HubLimits{})
	m, err := h.Presence(context.Background(), reader, "room.1")
	if err != nil || len(m) != 1 || m[0].User != "u" {
		t.Fatalf("Presence = %v, %v", m, err)
	}
}

func TestHubHistoryLimit(t *testing.T) {
	limits := service.HubLimits{HistoryPage: 10, MaxHistoryPage: 50}
	for _, tt := range []struct {
		limit, want int // want 0: refused
	}{
		{0, 10},
		{1, 1},
		{49, 49},
		{50, 50},
		{51, 0},
		{-1, 0},
		{1 << 30, 0},
	} {
		e := &fakeEngine{}
		h := service.NewHub(e, limits)
		_, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1", Limit: tt.limit})
		if tt.want == 0 {
			if service.ErrorCode(err) != service.EINVALID {
				t.Errorf("limit %d: error %v, want %q", tt.limit, err, service.EINVALID)
			}
			if calls := e.Calls(); len(calls) != 0 {
				t.Errorf("limit %d: engine was called: %v", tt.limit, calls)
			}
			continue
		}
		if err != nil {
			t.Errorf("limit %d: %v", tt.limit, err)
			continue
		}
		if len(e.historyQueries) != 1 || e.historyQueries[0].Limit != tt.want {
			t.Errorf("limit %d: engine queries %+v, want limit %d", tt.limit, e.historyQueries, tt.want)
		}
	}

	// The defaults: a page of 100, at most 1000.
	e := &fakeEngine{}
	h := service.NewHub(e, service.HubLimits{})
	if _, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1", Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	_, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1", Limit: 1001})
	wantCode(t, err, service.EINVALID)
	if len(e.historyQueries) != 2 || e.historyQueries[0].Limit != 100 || e.historyQueries[1].Limit != 1000 {
		t.Errorf("engine queries %+v, want limits 100 and 1000", e.historyQueries)
	}
}

// pageBytes is the data a page may hold by default.
var pageBytes = service.DefaultHubLimits.MaxPageBytes

func TestHubHistoryQuery(t *testing.T) {
	pos := service.Position{Offset: 10, Epoch: "ep"}
	for _, tt := range []struct {
		name string
		req  service.HistoryRequest
		want service.HistoryQuery
	}{
		{"forward", service.HistoryRequest{Limit: 5}, service.HistoryQuery{Limit: 5, MaxBytes: pageBytes}},
		{"reverse", service.HistoryRequest{Limit: 5, Reverse: true}, service.HistoryQuery{Limit: 5, Reverse: true, MaxBytes: pageBytes}},
		{"forward since", service.HistoryRequest{Limit: 5, Since: &service.Position{Offset: 3, Epoch: "ep"}}, service.HistoryQuery{After: 3, Limit: 5, MaxBytes: pageBytes}},
		{"reverse since", service.HistoryRequest{Limit: 5, Reverse: true, Since: &service.Position{Offset: 3, Epoch: "ep"}}, service.HistoryQuery{Before: 3, Limit: 5, Reverse: true, MaxBytes: pageBytes}},
		{"forward since 0", service.HistoryRequest{Limit: 5, Since: &service.Position{Epoch: "ep"}}, service.HistoryQuery{Limit: 5, MaxBytes: pageBytes}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pubs := []service.Publication{{Channel: "room.1", Offset: 4}}
			e := &fakeEngine{history: func(service.HistoryQuery) (service.History, error) {
				return service.History{Publications: pubs, Position: pos}, nil
			}}
			h := service.NewHub(e, service.HubLimits{})
			tt.req.Channel = "room.1"
			hist, err := h.History(context.Background(), reader, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(e.historyQueries) != 1 || e.historyQueries[0] != tt.want {
				t.Errorf("engine queries %+v, want %+v", e.historyQueries, tt.want)
			}
			if !reflect.DeepEqual(hist, service.History{Publications: pubs, Position: pos}) {
				t.Errorf("History = %+v", hist)
			}
		})
	}
}

func TestHubHistoryEmptyIsNotNil(t *testing.T) {
	e := &fakeEngine{histPos: service.Position{Offset: 0, Epoch: "ep"}}
	h := service.NewHub(e, service.HubLimits{})
	hist, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1"})
	if err != nil {
		t.Fatal(err)
	}
	if hist.Publications == nil || len(hist.Publications) != 0 || hist.Position != e.histPos {
		t.Errorf("History = %#v, want no publications (not nil) at %+v", hist, e.histPos)
	}
}

func TestHubHistoryReverseSinceZero(t *testing.T) {
	// Nothing comes before offset 0: the page is empty, and the engine is
	// not asked for a page without an upper bound.
	pos := service.Position{Offset: 10, Epoch: "ep"}
	e := &fakeEngine{history: func(q service.HistoryQuery) (service.History, error) {
		h := service.History{Position: pos}
		for o := uint64(10); o > q.After && (q.Before == 0 || o < q.Before) && len(h.Publications) < q.Limit; o-- {
			h.Publications = append(h.Publications, service.Publication{Channel: "room.1", Offset: o})
		}
		return h, nil
	}}
	h := service.NewHub(e, service.HubLimits{})
	hist, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1", Reverse: true, Since: &service.Position{Epoch: "ep"}})
	if err != nil {
		t.Fatal(err)
	}
	if hist.Publications == nil || len(hist.Publications) != 0 || hist.Position != pos {
		t.Errorf("History = %+v, want no publications (not nil) at %+v", hist, pos)
	}
	for _, q := range e.historyQueries {
		if q.Limit != 0 {
			t.Errorf("engine was asked for %+v", q)
		}
	}

	// In another epoch it is a conflict all the same.
	_, err = h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1", Reverse: true, Since: &service.Position{Epoch: "old"}})
	wantCode(t, err, service.ECONFLICT)
}

func TestHubHistoryEpochMismatch(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		e := &fakeEngine{history: func(service.HistoryQuery) (service.History, error) {
			return service.History{Publications: []service.Publication{{Offset: 4}}, Position: service.Position{Offset: 10, Epoch: "new"}}, nil
		}}
		h := service.NewHub(e, service.HubLimits{})
		hist, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1", Reverse: reverse, Since: &service.Position{Offset: 5, Epoch: "old"}})
		wantCode(t, err, service.ECONFLICT)
		if hist.Publications != nil {
			t.Errorf("reverse %v: publications of another epoch returned: %+v", reverse, hist.Publications)
		}
	}
	// Without since, any epoch will do.
	e := &fakeEngine{histPos: service.Position{Offset: 10, Epoch: "new"}}
	h := service.NewHub(e, service.HubLimits{})
	if _, err := h.History(context.Background(), reader, service.HistoryRequest{Channel: "room.1"}); err != nil {
		t.Fatal(err)
	}
}

func TestHubHistoryEngineError(t *testing.T) {
	boom := errors.New("boom")
	e := &fakeEngine{history: func(service.HistoryQuery) (service.History, error) { return service.History{}, boom }}
	h := service.NewHub(e, service.HubLimits{})
	for _, req := range []service.HistoryRequest{
		{Channel: "room.1"},
		{Channel: "room.1", Reverse: true, Since: &service.Position{}},
	} {
		if _, err := h.History(context.Background(), reader, req); !errors.Is(err, boom) {
			t.Errorf("History(%+v) error %v, want %v", req, err, boom)
		}
	}
}

// pubsFrom returns publications with offsets from to to.
func pubsFrom(from, to uint64) []service.Publication {
	var pubs []service.Publication
	for o := from; o <= to; o++ {
		pubs = append(pubs, service.Publication{Channel: "room.1", Offset: o})
	}
	return pubs
}

func TestHubSubscribeRecovery(t *testing.T) {
	pos := service.Position{Offset: 10, Epoch: "ep"}
	// history answers forward queries from offsets lo..hi of epoch.
	history := func(lo, hi uint64, epoch string) func(q service.HistoryQuery) (service.History, error) {
		return func(q service.HistoryQuery) (service.History, error) {
			h := service.History{Position: service.Position{Offset: hi, Epoch: epoch}}
			for o := max(lo, q.After+1); o <= hi && (q.Before == 0 || o < q.Before) && len(h.Publications) < q.Limit; o++ {
				h.Publications = append(h.Publications, service.Publication{Channel: "room.1", Offset: o})
			}
			return h, nil
		}
	}
	for _, tt := range []struct {
		name      string
		since     *service.Position
		history   func(q service.HistoryQuery) (service.History, error)
		recovery  int
		recovered bool
		pubs      []service.Publication // nil for none
		anyPubs   bool                  // do not check pubs
		query     *service.HistoryQuery // the engine's History query; nil for none
	}{
		{name: "no since", history: history(1, 10, "ep")},
		{name: "other epoch", since: &service.Position{Offset: 5, Epoch: "old"}, history: history(1, 10, "ep")},
		{name: "beyond the position", since: &service.Position{Offset: 11, Epoch: "ep"}, history: history(1, 10, "ep")},
		{name: "at the position", since: &service.Position{Offset: 10, Epoch: "ep"}, history: history(1, 10, "ep"), recovered: true},
		{
			name: "whole", since: &service.Position{Offset: 5, Epoch: "ep"}, history: history(1, 10, "ep"),
			recovered: true, pubs: pubsFrom(6, 10), query: &service.HistoryQuery{After: 5, Before: 11, Limit: 1000, MaxBytes: pageBytes},
		},
		{
			name: "from 0", since: &service.Position{Offset: 0, Epoch: "ep"}, history: history(1, 10, "ep"),
			recovered: true, pubs: pubsFrom(1, 10), query: &service.HistoryQuery{After: 0, Before: 11, Limit: 1000, MaxBytes: pageBytes},
		},
		{
			name: "one missed", since: &service.Position{Offset: 9, Epoch: "ep"}, history: history(1, 10, "ep"),
			recovered: true, pubs: pubsFrom(10, 10), query: &service.HistoryQuery{After: 9, Before: 11, Limit: 1000, MaxBytes: pageBytes},
		},
		{
			name: "trimmed: a gap at the start", since: &service.Position{Offset: 2, Epoch: "ep"}, history: history(5, 10, "ep"),
			pubs: pubsFrom(5, 10), query: &service.HistoryQuery{After: 2, Before: 11, Limit: 1000, MaxBytes: pageBytes},
		},
		{
			name: "trimmed away", since: &service.Position{Offset: 2, Epoch: "ep"}, history: history(11, 10, "ep"),
			query: &service.HistoryQuery{After: 2, Before: 11, Limit: 1000, MaxBytes: pageBytes},
		},
		{
			name: "over the recovery limit", since: &service.Position{Offset: 2, Epoch: "ep"}, history: history(1, 10, "ep"), recovery: 3,
			pubs: pubsFrom(3, 5), query: &service.HistoryQuery{After: 2, Before: 11, Limit: 3, MaxBytes: pageBytes},
		},
		{
			name: "exactly the recovery limit", since: &service.Position{Offset: 7, Epoch: "ep"}, history: history(1, 10, "ep"), recovery: 3,
			recovered: true, pubs: pubsFrom(8, 10), query: &service.HistoryQuery{After: 7, Before: 11, Limit: 3, MaxBytes: pageBytes},
		},
		{
			name: "removed while reading", since: &service.Position{Offset: 5, Epoch: "ep"}, history: history(1, 10, "new"),
			anyPubs: true, query: &service.HistoryQuery{After: 5, Before: 11, Limit: 1000, MaxBytes: pageBytes},
		},
		{
			name: "short of the position", since: &service.Position{Offset: 5, Epoch: "ep"}, history: history(1, 8, "ep"),
			pubs: pubsFrom(6, 8), query: &service.HistoryQuery{After: 5, Before: 11, Limit: 1000, MaxBytes: pageBytes},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &fakeEngine{subPos: pos, history: tt.history}
			h := service.NewHub(e, service.HubLimits{RecoveryLimit: tt.recovery})
			r := nopReceiver{}
			s, err := h.Subscribe(context.Background(), reader, "room.1", tt.since, r, true)
			if err != nil {
				t.Fatal(err)
			}
			if s.Position != pos {
				t.Errorf("Position = %+v, want %+v", s.Position, pos)
			}
			if s.Recovered != tt.recovered {
				t.Errorf("Recovered = %v, want %v", s.Recovered, tt.recovered)
			}
			if !tt.anyPubs && len(s.Publications) != len(tt.pubs) || len(tt.pubs) > 0 && !reflect.DeepEqual(s.Publications, tt.pubs) {
				t.Errorf("Publications = %+v, want %+v", s.Publications, tt.pubs)
			}
			if len(e.subscribed) != 1 || e.subscribed[0] != r {
				t.Errorf("engine subscribed %v", e.subscribed)
			}
			if len(e.unsubscribed) != 0 {
				t.Errorf("engine unsubscribed %v", e.unsubscribed)
			}
			switch {
			case tt.query == nil && len(e.historyQueries) != 0:
				t.Errorf("engine was asked for history: %+v", e.historyQueries)
			case tt.query != nil && (len(e.historyQueries) != 1 || e.historyQueries[0] != *tt.query):
				t.Errorf("engine queries %+v, want %+v", e.historyQueries, *tt.query)
			}
			// The subscription comes first, so that nothing falls
			// between the history and the live stream.
			if calls := e.Calls(); calls[0] != "Subscribe" {
				t.Errorf("engine calls %v: want Subscribe first", calls)
			}
		})
	}
}

func TestHubSubscribeHistoryFails(t *testing.T) {
	boom := errors.New("boom")
	e := &fakeEngine{
		subPos:  service.Position{Offset: 10, Epoch: "ep"},
		history: func(service.HistoryQuery) (service.History, error) { return service.History{}, boom },
	}
	h := service.NewHub(e, service.HubLimits{})
	r := nopReceiver{}
	_, err := h.Subscribe(context.Background(), reader, "room.1", &service.Position{Offset: 5, Epoch: "ep"}, r, false)
	if !errors.Is(err, boom) {
		t.Fatalf("Subscribe error %v, want %v", err, boom)
	}
	if len(e.unsubscribed) != 1 || e.unsubscribed[0] != r {
		t.Errorf("engine unsubscribed %v, want the receiver once", e.unsubscribed)
	}
	if want := []string{"Subscribe", "History", "Unsubscribe"}; !reflect.DeepEqual(e.Calls(), want) {
		t.Errorf("engine calls %v, want %v", e.Calls(), want)
	}
}

func TestHubSubscribeEngineError(t *testing.T) {
	e := &fakeEngine{subErr: service.Errorf(service.ECONFLICT, "twice")}
	h := service.NewHub(e, service.HubLimits{})
	_, err := h.Subscribe(context.Background(), reader, "room.1", &service.Position{Offset: 1, Epoch: "ep"}, nopReceiver{}, false)
	wantCode(t, err, service.ECONFLICT)
	if want := []string{"Subscribe"}; !reflect.DeepEqual(e.Calls(), want) {
		t.Errorf("engine calls %v, want %v", e.Calls(), want)
	}
}

func TestHubUnsubscribe(t *testing.T) {
	e := &fakeEngine{}
	h := service.NewHub(e, service.HubLimits{})
	r := nopReceiver{}
	if !h.Unsubscribe("room.1", r) {
		t.Error("Unsubscribe = false, want the engine's true")
	}
	if len(e.unsubscribed) != 1 || e.unsubscribed[0] != r {
		t.Errorf("engine unsubscribed %v", e.unsubscribed)
	}
}

func TestHubRemove(t *testing.T) {
	ctx := context.Background()
	for _, c := range []service.Caller{nobody, reader, writer, everyone} {
		e := &fakeEngine{}
		h := service.NewHub(e, service.HubLimits{})
		_, err := h.Remove(ctx, c, "room.1")
		wantCode(t, err, service.EFORBIDDEN)
		wantNoCalls(t, e)
	}
	e := &fakeEngine{}
	h := service.NewHub(e, service.HubLimits{})
	_, err := h.Remove(ctx, admin, "room..1")
	wantCode(t, err, service.EINVALID)
	_, err = h.Remove(ctx, nobody, "room 1")
	wantCode(t, err, service.EINVALID)
	wantNoCalls(t, e)
	pos, err := h.Remove(ctx, admin, "room.1")
	if err != nil {
		t.Fatal(err)
	}
	if pos != (service.Position{Epoch: "new"}) || !reflect.DeepEqual(e.removed, []string{"room.1"}) {
		t.Errorf("Remove = %+v; engine removed %v", pos, e.removed)
	}
}

func TestHubChannels(t *testing.T) {
	ctx := context.Background()
	for _, prefix := range []string{
		"room*",
		"room>",
		"room 1",
		"room/",
		"café",
		"\xff",
		"a\x00",
		strings.Repeat("a", service.MaxChannelLength+1),
	} {
		e := &fakeEngine{}
		h := service.NewHub(e, service.HubLimits{})
		_, _, err := h.Channels(ctx, admin, prefix)
		if service.ErrorCode(err) != service.EINVALID {
			t.Errorf("Channels(%q): error %v, want %q", prefix, err, service.EINVALID)
		}
		if calls := e.Calls(); len(calls) != 0 {
			t.Errorf("Channels(%q): engine was called: %v", prefix, calls)
		}
	}

	// Prefixes need not be channel names: "" and "room." start names.
	for _, prefix := range []string{"", "room.", "room", ".", "a:b-c_D9", strings.Repeat("a", service.MaxChannelLength)} {
		e := &fakeEngine{}
		h := service.NewHub(e, service.HubLimits{ListLimit: 7})
		infos, more, err := h.Channels(ctx, reader, prefix)
		if err != nil {
			t.Errorf("Channels(%q): %v", prefix, err)
			continue
		}
		if len(infos) != 1 || infos[0].Name != prefix+"x" || !more {
			t.Errorf("Channels(%q) = %v, %v: not the engine's answer", prefix, infos, more)
		}
		if e.channelsPrefix != prefix || e.channelsLimit != 7 {
			t.Errorf("Channels(%q): engine got prefix %q, limit %d", prefix, e.channelsPrefix, e.channelsLimit)
		}
		// visible is the caller's CanSee.
		for _, ch := range []string{"room.1", "room.1.2", "room", "other"} {
			if got, want := e.channelsVisible(ch), reader.Permissions.CanSee(ch); got != want {
				t.Errorf("visible(%q) = %v, want %v", ch, got, want)
			}
		}
	}

	e := &fakeEngine{}
	h := service.NewHub(e, service.HubLimits{})
	if _, _, err := h.Channels(ctx, nobody, ""); err != nil {
		t.Fatal(err)
	}
	if e.channelsLimit != service.DefaultHubLimits.ListLimit {
		t.Errorf("engine got limit %d, want the default %d", e.channelsLimit, service.DefaultHubLimits.ListLimit)
	}
	if e.channelsVisible("room.1") {
		t.Error("a caller without permissions sees room.1")
	}
}
