// Package testclock is the settable clock tests inject where a package
// takes a clock (a Now func() time.Time) and the test must move time
// without sleeping: expiry, token lifetimes, key rotation. Where the code
// under test sleeps or waits on timers in one goroutine tree without real
// network I/O, testing/synctest fits better.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time source that moves only when told (or, from Running,
// with real time plus what it was told). It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	t       time.Time // a standing clock's time
	offset  time.Duration
	running bool
}

// New is a clock standing at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Running is a clock that follows real time, moved forward by every
// Advance: for tests that also need real timers to fire (a browser's).
func Running() *Clock { return &Clock{running: true} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset)
	}
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.offset += d
}

// Set puts a standing clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
