package rpc_test

import (
	"context"
	"fmt"

	"github.com/switchboard/switchboard/rpc"
	"github.com/switchboard/switchboard/service"
)

// AddParams are the params of the example's method: by name, or by
// position in the order of the fields.
type AddParams struct {
	A int `json:"a"`
	B int `json:"b"`
}

// A method is a function of its params, registered under a name. Here it
// is called over HTTP, which takes no network in a test: ServeHTTP runs
// the calls in a request body and returns the reply body.
func ExampleRegister() {
	reg := rpc.NewRegistry()
	rpc.Register(reg, rpc.Method{Name: "add", Summary: "Adds two numbers"},
		func(_ context.Context, _ *rpc.Session, p AddParams) (int, error) {
			return p.A + p.B, nil
		})
	srv := rpc.NewServer(reg, rpc.Options{})

	caller := service.Caller{User: "alice"}
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"add","params":{"a":2,"b":3},"id":1}`,
		`[{"jsonrpc":"2.0","method":"add","params":[4,5],"id":"x"},{"jsonrpc":"2.0","method":"sub","id":2}]`,
	} {
		reply := srv.ServeHTTP(context.Background(), rpc.Peer{ID: "request-1", Caller: caller, RemoteAddr: "192.0.2.1:1234"}, []byte(body))
		fmt.Println(string(reply))
	}
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":5}
	// [{"jsonrpc":"2.0","id":"x","result":9},{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found: \"sub\""}}]
}
