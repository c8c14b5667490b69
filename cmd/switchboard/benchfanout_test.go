package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// The subscribers' quick reading of a publication agrees with decoding it
// in full, on a frame laid out as the server lays it out (rpc's head,
// then api.Publication's fields in their order), and gives up on others.
func TestQuickPublication(t *testing.T) {
	data := json.RawMessage(`{"t":123456789,"p":"xxxxxxxx"}`)
	params, err := json.Marshal(api.Publication{Channel: "bench.a-b:c", Offset: 42, Data: data, Publisher: "ops", Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	frame := append(append([]byte(`{"jsonrpc":"2.0","method":"channelPublication","params":`), params...), '}')
	offset, sent, ok := quickPublication(frame)
	var full publication
	if err := json.Unmarshal(frame, &full); err != nil {
		t.Fatal(err)
	}
	fullSent, _ := full.sent()
	if !ok || offset != full.Params.Offset || time.Duration(sent) != fullSent || offset != 42 || sent != 123456789 {
		t.Errorf("quickPublication(%s) = %d, %d, %v; want 42, 123456789, true", frame, offset, sent, ok)
	}
	for _, other := range []string{
		`{"jsonrpc":"2.0","method":"channelUnsubscribed","params":{"channel":"a","reason":"removed"}}`,
		`{"jsonrpc":"2.0","method":"channelPublication","params":{"channel":"a","offset":1,"data":"not bench's"}}`,
		`{"jsonrpc":"2.0","method":"channelPublication","params":{"offset":1,"channel":"a","data":{"t":1}}}`,
	} {
		if _, _, ok := quickPublication([]byte(other)); ok {
			t.Errorf("quickPublication(%s) took it; want it decoded in full", other)
		}
	}
}
