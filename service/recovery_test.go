package service_test

import (
	"context"
	"testing"

	"github.com/switchboard/switchboard/service"
)

// TestRecoveredNeedsEveryOffset: a recovery is whole only with every
// offset between since and the position, not just the first and the last;
// an engine's history with a hole in the middle is not recovered.
func TestRecoveredNeedsEveryOffset(t *testing.T) {
	e := &fakeEngine{subPos: service.Position{Offset: 4, Epoch: "e"}}
	e.history = func(q service.HistoryQuery) (service.History, error) {
		return service.History{
			Publications: []service.Publication{{Channel: "room.a", Offset: 2}, {Channel: "room.a", Offset: 4}},
			Position:     service.Position{Offset: 4, Epoch: "e"},
		}, nil
	}
	h := service.NewHub(e, service.HubLimits{})
	res, err := h.Subscribe(context.Background(), admin, "room.a", &service.Position{Offset: 1, Epoch: "e"}, nopReceiver{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered {
		t.Fatalf("recovered is true with offsets 2 and 4 for since 1 up to 4: offset 3 is missing")
	}
}
