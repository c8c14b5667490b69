package rpc

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// parker watches the sockets of parked connections with an epoll set of
// its own and one goroutine, which wakes a connection once its socket is
// readable. The set and the goroutine live while a connection is
// registered: the first to park makes them, and the end of the last one
// registered ends them.
type parker struct {
	mu    sync.Mutex
	set   *epollSet        // nil while none is registered
	conns map[uint64]*conn // by parkID: parked, or parked before and not ended
	next  uint64
}

func newParker() *parker { return &parker{conns: map[uint64]*conn{}} }

// register arms c's socket to wake c once, when it is readable, or has
// been closed or reset by the client.
func (p *parker) register(c *conn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.unwatched {
		return nil // it ended meanwhile; park wakes it to see that
	}
	if p.set == nil {
		set, err := newEpollSet()
		if err != nil {
			return err
		}
		p.set = set
		go p.watch(set)
	}
	op := unix.EPOLL_CTL_MOD
	if c.parkID == 0 {
		p.next++
		c.parkID = p.next
		p.conns[c.parkID] = c
		op = unix.EPOLL_CTL_ADD
	}
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(uint32(c.parkID)),
		Pad:    int32(uint32(c.parkID >> 32)),
	}
	var err error
	// Control keeps the descriptor from being closed, and its number
	// reused, while epoll is told about it.
	cerr := c.w.sock.raw.Control(func(fd uintptr) { err = unix.EpollCtl(p.set.epfd, op, int(fd), &ev) })
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.dropLocked(c)
		return fmt.Errorf("watch socket: %w", err)
	}
	return nil
}

// forget stops watching c's socket, which is about to close, for good.
func (p *parker) forget(c *conn) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c.unwatched = true
	if c.parkID == 0 {
		return
	}
	c.w.sock.raw.Control(func(fd uintptr) { unix.EpollCtl(p.set.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	p.dropLocked(c)
}

func (p *parker) dropLocked(c *conn) {
	delete(p.conns, c.parkID)
	c.parkID = 0
	if len(p.conns) == 0 && p.set != nil {
		p.set.stop()
		p.set = nil
	}
}

// watch wakes the connections whose sockets set reports readable, until
// set is stopped, and then closes it.
func (p *parker) watch(set *epollSet) {
	defer set.close()
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(set.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			p.abandon(set)
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return // stopped
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

// abandon wakes every connection of a set that can no longer be waited
// on; they park again in a new one. It is not expected to happen.
func (p *parker) abandon(set *epollSet) {
	p.mu.Lock()
	var woken []*conn
	if p.set == set {
		for _, c := range p.conns {
			c.parkID = 0
			woken = append(woken, c)
		}
		clear(p.conns)
		p.set = nil
	}
	p.mu.Unlock()
	for _, c := range woken {
		c.wake()
	}
}

// epollSet is an epoll instance and the eventfd, registered with id 0,
// that stops its watcher.
type epollSet struct{ epfd, stopfd int }

func newEpollSet() (*epollSet, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stopfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return &epollSet{epfd: epfd, stopfd: stopfd}, nil
}

func (s *epollSet) stop() {
	unix.Write(s.stopfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

func (s *epollSet) close() {
	unix.Close(s.epfd)
	unix.Close(s.stopfd)
}
