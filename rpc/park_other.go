//go:build !linux

package rpc

import "errors"

// parker is Linux's: elsewhere connections do not park.
type parker struct{}

func newParker() *parker { return nil }

func (p *parker) register(*conn) error {
	return errors.New("rpc: connections do not park on this system")
}

func (p *parker) forget(*conn) {}
