package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
)

// A call whose body is over 1 MiB asks the server first, so that a server
// refusing it (413) answers before the body is sent and the refusal is
// read, not lost to a reset connection; smaller bodies go at once.
func TestBigCallsExpectContinue(t *testing.T) {
	expects := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		expects <- r.Header.Get("Expect")
		// Refused unread, as Switchboard refuses a body announced over
		// its limit.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		w.Write([]byte(`{"error":{"code":"too_large","message":"request body exceeds the message size limit"}}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tc := range []struct {
		size   int
		expect string
	}{{1 << 10, ""}, {2 << 20, "100-continue"}} {
		_, err := c.Publish(ctx, "big", json.RawMessage(`"`+strings.Repeat("a", tc.size)+`"`), "")
		if err == nil || !strings.Contains(err.Error(), "413") {
			t.Errorf("%d bytes: %v, want the 413", tc.size, err)
		}
		if got := <-expects; got != tc.expect {
			t.Errorf("%d bytes: Expect %q, want %q", tc.size, got, tc.expect)
		}
	}
}
