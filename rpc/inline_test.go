package rpc_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/rpc"
)

// Inline methods run on the read loop. They must behave exactly like the
// others on the wire: replies, batches, notifications and panics.
func registerInline(reg *rpc.Registry) {
	rpc.Register(reg, rpc.Method{Name: "inline.subtract", Inline: true},
		func(_ context.Context, _ *rpc.Session, p subtractParams) (float64, error) {
			return p.Minuend - p.Subtrahend, nil
		})
	rpc.Register(reg, rpc.Method{Name: "inline.panic", Inline: true},
		func(context.Context, *rpc.Session, none) (none, error) {
			panic("inline handler broke")
		})
	// inline.stack reports whether it runs on the goroutine that reads
	// the socket: jsonrpc2's read loop is in its stack.
	rpc.Register(reg, rpc.Method{Name: "inline.stack", Inline: true},
		func(context.Context, *rpc.Session, none) (bool, error) {
			return onReadLoop(), nil
		})
	rpc.Register(reg, rpc.Method{Name: "goroutine.stack"},
		func(context.Context, *rpc.Session, none) (bool, error) {
			return onReadLoop(), nil
		})
}

func onReadLoop() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "jsonrpc2.(*Conn).readMessages")
}

func TestInlineMethods(t *testing.T) {
	ts := newTestServer(t, rpc.Limits{}, registerInline)
	c := ts.dial()

	t.Run("runs on the read loop", func(t *testing.T) {
		c.t = t
		checkReply(t, c.call(`{"jsonrpc":"2.0","method":"inline.stack","id":1}`), false, []want{{id: `1`, result: `true`}})
		checkReply(t, c.call(`{"jsonrpc":"2.0","method":"goroutine.stack","id":2}`), false, []want{{id: `2`, result: `false`}})
	})
	t.Run("reply", func(t *testing.T) {
		c.t = t
		checkReply(t, c.call(`{"jsonrpc":"2.0","method":"inline.subtract","params":[42,23],"id":-1}`), false,
			[]want{{id: `-1`, result: `19`}})
	})
	t.Run("notification gets no reply", func(t *testing.T) {
		c.t = t
		c.send(`{"jsonrpc":"2.0","method":"inline.subtract","params":[1,2]}`)
		checkReply(t, c.call(`{"jsonrpc":"2.0","method":"inline.subtract","params":[2,1],"id":"next"}`), false,
			[]want{{id: `"next"`, result: `1`}})
	})
	t.Run("batch mixing inline and goroutine calls", func(t *testing.T) {
		c.t = t
		reply := c.call(`[
			{"jsonrpc":"2.0","method":"inline.subtract","params":[5,1],"id":1},
			{"jsonrpc":"2.0","method":"subtract","params":[5,2],"id":2},
			{"jsonrpc":"2.0","method":"inline.subtract","params":[5,3]},
			{"jsonrpc":"2.0","method":"inline.panic","id":3}
		]`)
		checkReply(t, reply, true, []want{{id: `1`, result: `4`}, {id: `2`, result: `3`}, {id: `3`, code: rpc.CodeInternalError}})
	})
	t.Run("panic", func(t *testing.T) {
		c.t = t
		checkReply(t, c.call(`{"jsonrpc":"2.0","method":"inline.panic","id":9}`), false, []want{{id: `9`, code: rpc.CodeInternalError}})
		checkReply(t, c.call(`{"jsonrpc":"2.0","method":"inline.subtract","params":[3,1],"id":10}`), false, []want{{id: `10`, result: `2`}})
	})
	t.Run("pipelined", func(t *testing.T) {
		c.t = t
		const n = 500
		for i := range n {
			c.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"inline.subtract","params":[%d,1],"id":%d}`, i+1, i))
		}
		// Inline calls run in order on the read loop, so their replies
		// come in order too.
		for i := range n {
			checkReply(t, c.recv(5*time.Second), false, []want{{id: strconv.Itoa(i), result: strconv.Itoa(i)}})
		}
	})
}
