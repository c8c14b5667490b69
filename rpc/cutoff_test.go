package rpc_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// TestDisconnectCatchesAnUpgradeUnderWay: a user cut off after their
// token was verified, but before their connection was served, is cut off
// as it opens: the upgrade went on with a token that was good then. One
// whose token was verified after the cut stays.
func TestDisconnectCatchesAnUpgradeUnderWay(t *testing.T) {
	rs := rpc.NewServer(rpc.NewRegistry(), rpc.Options{})
	verified, proceed := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rpc", func(w http.ResponseWriter, r *http.Request) {
		proven := time.Now() // the token checks out
		if r.URL.Query().Has("racing") {
			verified <- struct{}{}
			<-proceed
		}
		rs.Upgrade(w, r, rpc.Peer{ID: rpc.NewID(), Caller: service.Caller{User: "mallory"}, ProvenAt: proven}, nil)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close(); rs.Shutdown(context.Background()) })
	url := "ws://" + ln.Addr().String() + "/rpc"

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type dialed struct {
		ws  *websocket.Conn
		err error
	}
	racing := make(chan dialed, 1)
	go func() {
		ws, _, err := websocket.Dial(ctx, url+"?racing", nil)
		racing <- dialed{ws, err}
	}()
	<-verified
	if n := rs.Disconnect("mallory", "account suspended"); n != 0 {
		t.Errorf("Disconnect closed %d connections; none was served yet", n)
	}
	close(proceed)
	d := <-racing
	if d.err != nil {
		t.Fatal(d.err)
	}
	_, _, err = d.ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != rpc.CloseDisconnected || ce.Reason != "account suspended" {
		t.Errorf("the connection upgraded during the cut: %v, want %d \"account suspended\"", err, rpc.CloseDisconnected)
	}

	later, _, err := websocket.Dial(ctx, url, nil) // a token verified after the cut
	if err != nil {
		t.Fatal(err)
	}
	defer later.CloseNow()
	later.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"nothing"}`))
	if _, reply, err := later.Read(ctx); err != nil {
		t.Errorf("a connection proven after the cut was closed: %v", err)
	} else if !strings.Contains(string(reply), `"id":1`) {
		t.Errorf("reply %s", reply)
	}
}
