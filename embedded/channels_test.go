package embedded

import (
	"context"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/service"
)

func all(string) bool { return true }

func TestChannelsAfterRestart(t *testing.T) {
	f := newFixture(t, Options{})
	f.publish(t, "a", 1)
	f.publish(t, "a", 2)
	f.publish(t, "b", 1)
	f.closeStore(t)
	f.open(t, Options{})
	infos, _, err := f.engine.Channels(context.Background(), "", all, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []service.ChannelInfo{{Name: "a", Offset: 2}, {Name: "b", Offset: 1}}; !slices.Equal(infos, want) {
		t.Errorf("Channels after restart = %+v, want %+v", infos, want)
	}
	r := newReceiver("u", "c")
	if pos := f.subscribe(t, "a", r, false); pos != (service.Position{Offset: 2, Epoch: f.engine.seq.epoch}) {
		t.Errorf("Subscribe after restart = %+v", pos)
	}
}
