package api

import (
	"crypto/sha256"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failLimiter keeps callers that fail to authenticate away from Postgres. Each
// failed authentication (no key, a malformed, unknown, revoked or expired one)
// is charged to a token bucket of the client's address; while that bucket is
// empty, the address's requests are answered 429 before any database lookup,
// unless they carry a key that authenticated on this replica within
// goodKeyTTL. That exception lets a legitimate service through that shares an
// address (a NAT, a proxy) with a misbehaving one. It only lifts the address
// block: such a request is still checked against Postgres like any other, so
// a revoked key stops working at once, on every replica.
//
// IPv4 addresses are limited one by one, IPv6 ones by /64, the block one host
// usually holds. Memory is bounded: past maxTracked entries, full buckets (the
// same as no entry) and then arbitrary ones are dropped.
type failLimiter struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex
	addrs map[netip.Prefix]*rate.Limiter
	good  map[[sha256.Size]byte]time.Time // hash of a presented key -> until when it counts as good
}

const (
	goodKeyTTL = 5 * time.Minute
	maxTracked = 1 << 16
)

func newFailLimiter(perSecond float64, burst int) *failLimiter {
	return &failLimiter{rate: rate.Limit(perSecond), burst: burst,
		addrs: map[netip.Prefix]*rate.Limiter{}, good: map[[sha256.Size]byte]time.Time{}}
}

// clientPrefix is the block of addresses a request is charged to: the remote
// address of the connection (Herald does not trust X-Forwarded-For).
func clientPrefix(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{} // not an IP connection: one bucket for all of them
	}
	addr := ap.Addr().Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// admit reports how long the caller at addr presenting key must wait, 0 if
// it may go on to authenticate.
func (l *failLimiter) admit(addr netip.Prefix, key [sha256.Size]byte, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until, ok := l.good[key]; ok && now.Before(until) {
		return 0
	}
	lim, ok := l.addrs[addr]
	if !ok {
		return 0
	}
	if tokens := lim.TokensAt(now); tokens < 1 {
		return time.Duration((1 - tokens) / float64(l.rate) * float64(time.Second))
	}
	return 0
}

// failed charges a failed authentication to addr and forgets key as good.
func (l *failLimiter) failed(addr netip.Prefix, key [sha256.Size]byte, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.good, key)
	lim, ok := l.addrs[addr]
	if !ok {
		if len(l.addrs) >= maxTracked {
			l.shrinkAddrs(now)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.addrs[addr] = lim
	}
	lim.AllowN(now, 1)
}

// succeeded remembers key as good for goodKeyTTL.
func (l *failLimiter) succeeded(key [sha256.Size]byte, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.good[key]; !ok && len(l.good) >= maxTracked {
		for k, until := range l.good {
			if !now.Before(until) || len(l.good) > maxTracked*7/8 {
				delete(l.good, k)
			}
		}
	}
	l.good[key] = now.Add(goodKeyTTL)
}

// shrinkAddrs drops buckets down to 7/8 of maxTracked: full ones first (they
// are what a new bucket would be), then arbitrary ones.
func (l *failLimiter) shrinkAddrs(now time.Time) {
	for p, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, p)
		}
	}
	for p := range l.addrs {
		if len(l.addrs) <= maxTracked*7/8 {
			return
		}
		delete(l.addrs, p)
	}
}
