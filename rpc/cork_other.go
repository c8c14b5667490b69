//go:build !unix

package rpc

import (
	"errors"
	"net"
	"syscall"
)

// rawConn returns nil: reads go through the connection's own Read, into
// a buffer that the connection keeps.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (c *corkConn) readPooled() (int, error) {
	return 0, errors.New("rpc: no raw reads on this system")
}
