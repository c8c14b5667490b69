package client

import (
	"errors"
	"testing"
)

func TestDecodeBatch(t *testing.T) {
	var a, b int
	calls := []BatchCall{{Method: "m", Result: &a}, {Method: "m", Result: &b}, {Method: "m"}}
	err := decodeBatch([]byte(` [{"jsonrpc":"2.0","id":1,"result":7},{"jsonrpc":"2.0","id":2,"error":{"code":-32009,"message":"Not run"}},{"jsonrpc":"2.0","id":0,"result":5}]`), calls)
	if err != nil || a != 5 || b != 7 || calls[0].Err != nil || calls[1].Err != nil {
		t.Fatalf("err %v, results %d %d, call errors %v %v", err, a, b, calls[0].Err, calls[1].Err)
	}
	var e *Error
	if !errors.As(calls[2].Err, &e) || e.Code != -32009 {
		t.Fatalf("the third call's error is %v, want -32009", calls[2].Err)
	}

	// One object for the whole batch is the server refusing all of it.
	err = decodeBatch([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch too long"}}`), calls)
	if !errors.As(err, &e) || e.Code != -32600 {
		t.Fatalf("a refused batch gives %v, want the -32600", err)
	}

	for _, bad := range []string{
		`[{"jsonrpc":"2.0","id":3,"result":1}]`,                                     // no such call
		`[{"jsonrpc":"2.0","id":0,"result":1},{"jsonrpc":"2.0","id":0,"result":1}]`, // twice
		`{"jsonrpc":"2.0","id":1,"result":1}`,                                       // one reply, not an error
		`not json`,
	} {
		if err := decodeBatch([]byte(bad), make([]BatchCall, 3)); err == nil {
			t.Errorf("decodeBatch(%s) took it", bad)
		}
	}
	missing := make([]BatchCall, 2)
	if err := decodeBatch([]byte(`[{"jsonrpc":"2.0","id":1,"result":1}]`), missing); err != nil || missing[0].Err == nil || missing[1].Err != nil {
		t.Errorf("a reply missing: err %v, calls' %v %v; want the first call's error only", err, missing[0].Err, missing[1].Err)
	}
}
