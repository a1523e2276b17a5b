// Package clocktest is a clock that tests move by hand, for the stores and the
// scheduler that take a clock: schedules, expiry and key lifetimes are tested
// by moving it rather than by waiting.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock showing t.
func New(t time.Time) *Clock {
	return &Clock{now: t}
}

// Now returns the clock's time; pass c.Now where a clock is wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
