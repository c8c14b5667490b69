//go:build unix

package server

import "syscall"

// descriptorLimit returns the soft limit on open file descriptors, which
// the Go runtime raises to the hard limit at start-up; 0 when unknown, or
// so large that it is as good as none.
func descriptorLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<31 {
		return 0
	}
	return int(l.Cur)
}
