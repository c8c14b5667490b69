//go:build unix

package rpc

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawConn returns conn's syscall.RawConn, or nil when it has none (TLS).
func rawConn(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// readPooled waits for the network holding no buffer, then reads what
// has come into one from readPool, left in rbuf. It reports how much
// came; io.EOF when the peer closed.
func (c *corkConn) readPooled() (int, error) {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		b := readPool.Get().(*[readBufferSize]byte)
		for {
			n, rerr = syscall.Read(int(fd), b[:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			readPool.Put(b) // nothing yet: wait without it
			return false
		}
		if n > 0 {
			c.reads.Add(1)
			c.rbuf, c.r, c.w = b, 0, int32(n)
		} else {
			readPool.Put(b)
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}
