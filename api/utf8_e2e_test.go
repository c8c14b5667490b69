package api_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/embedded"
	"github.com/switchboard/switchboard/internal/servertest"
	"github.com/switchboard/switchboard/server"
	"github.com/switchboard/switchboard/service"
)

// A publication whose data is not UTF-8 used to be stored and fanned out,
// and every subscriber's client then dropped its connection, again on
// each recovery. It is refused over both transports, and subscribers see
// only what follows. (Every frame a servertest.Client reads is checked to be
// UTF-8.)
func TestInvalidUTF8IsRefused(t *testing.T) {
	ta := servertest.Start(t, server.Config{})
	tok := ta.Token("alice", service.Permissions{Admin: true}, time.Hour)
	sub := ta.HubClient(tok)
	sub.Subscribe(map[string]any{"channel": "chat.utf8"})
	pub := ta.HubClient(tok)

	bad := "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"channelPublish\",\"params\":{\"channel\":\"chat.utf8\",\"data\":{\"text\":\"a\xffb\"}}}"
	res := ta.Post(servertest.Bearer(tok), []byte(bad))
	wantInvalidData(t, "over HTTP", servertest.DecodeReply(t, "channelPublish", res.Body, 7))

	r, err := pub.SendFrame("7", "channelPublish", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	wantInvalidData(t, "over a WebSocket", r)

	// A frame whose envelope is not UTF-8 is a parse error; the socket
	// goes on.
	r, err = pub.SendFrame("null", "bad id", []byte("{\"jsonrpc\":\"2.0\",\"id\":\"\xc3\",\"method\":\"serverPing\"}"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Error == nil || r.Error.Code != -32700 {
		t.Fatalf("an id that is not UTF-8: reply %+v, want -32700", r)
	}

	if got := pub.Publish("chat.utf8", map[string]string{"text": "fine"}); got.Offset != 1 {
		t.Fatalf("the first valid publication has offset %d, want 1: nothing else was stored", got.Offset)
	}
	if p := sub.NextPublication(); p.Offset != 1 || string(p.Data) != `{"text":"fine"}` {
		t.Fatalf("subscriber got offset %d %s, want 1 {\"text\":\"fine\"}", p.Offset, p.Data)
	}
	sub.Quiet(100 * time.Millisecond)
}

func wantInvalidData(t *testing.T, how string, r servertest.Reply) {
	t.Helper()
	if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, `"data" is not valid UTF-8`) {
		t.Fatalf("%s: reply %+v, want -32602 naming data", how, r)
	}
}

// History stored by a server that did not check UTF-8 is sent repaired:
// the bad bytes read as U+FFFD, in history pages and recoveries alike.
func TestStoredInvalidUTF8IsRepaired(t *testing.T) {
	dir := t.TempDir()
	plantHistory(t, filepath.Join(dir, server.HistoryFile), "chat.old", "{\"text\":\"caf\xe9\"}", `{"text":"ok"}`)
	ta := servertest.Start(t, server.Config{DataDir: dir})
	c := ta.HubClient(ta.Token("alice", service.Permissions{Admin: true}, time.Hour))

	var h servertest.HistoryResult
	c.OK("channelHistory", map[string]any{"channel": "chat.old"}, &h)
	if len(h.Publications) != 2 || string(h.Publications[0].Data) != `{"text":"caf`+"\uFFFD"+`"}` {
		t.Fatalf("history %+v, want the first publication repaired", h.Publications)
	}
	s := c.Subscribe(map[string]any{"channel": "chat.old", "since": map[string]any{"offset": 0, "epoch": h.Epoch}})
	if !s.Recovered || len(s.Publications) != 2 || !json.Valid(s.Publications[0].Data) {
		t.Fatalf("recovery %+v, want both publications, the first repaired", s)
	}
}

// plantHistory writes publications of data to channel in the history at
// path, as an older server would have, without the hub's checks.
func plantHistory(t *testing.T, path, channel string, data ...string) {
	t.Helper()
	store, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, d := range data {
		p := service.Publication{Channel: channel, Data: json.RawMessage(d), Publisher: "old", Time: time.Now().UTC()}
		if _, err := store.Publish(context.Background(), p, ""); err != nil {
			t.Fatal(err)
		}
	}
}
