package client

import (
	"math/rand/v2"
	"time"
)

// Backoff is how long the SDK waits before each attempt to connect again after a
// lost connection (protocol.md section 1): Min doubling up to Max, each wait
// multiplied by a random factor in [0.5, 1.5), so that after a broker restart its
// clients do not all come back in the same second.
type Backoff struct {
	Min time.Duration // the first wait's base; 1 s if zero
	Max time.Duration // the largest base; 60 s if zero
	// Rand returns a number in [0, 1) that sets the jitter; math/rand/v2's
	// Float64 if nil.
	Rand func() float64
}

// Delay returns the wait before reconnect attempt n (0 for the first attempt
// after a loss): min(Min·2ⁿ, Max) · (0.5 + Rand()).
func (b Backoff) Delay(n int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = time.Minute
	}
	if hi < lo {
		hi = lo
	}
	base := lo
	for i := 0; i < n && base < hi; i++ {
		base *= 2
	}
	base = min(base, hi)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	f := 0.5 + min(max(r(), 0), 1)
	return time.Duration(float64(base) * f)
}
