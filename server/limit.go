package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Unauthenticated rejections (bad or missing signature, a source outside allow_cidrs, an
// oversized body) are recorded up to this rate per client address; past it they are
// answered 429 and counted, not stored, so a flood cannot fill the database. Deliveries
// with a valid signature never touch the limiter, so they are never affected.
const (
	rejectBurst    = 30
	rejectInterval = 2 * time.Second // one more recorded rejection per interval
	maxTrackedIPs  = 10_000
)

// rejectLimiter is a token bucket per client address.
type rejectLimiter struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	dropped int64
}

func newRejectLimiter() *rejectLimiter {
	return &rejectLimiter{buckets: map[string]*rate.Limiter{}}
}

// allow takes a token for ip and reports whether the rejection may be recorded.
func (l *rejectLimiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= maxTrackedIPs {
			l.sweep()
		}
		b = rate.NewLimiter(rate.Every(rejectInterval), rejectBurst)
		l.buckets[ip] = b
	}
	if b.Allow() {
		return true
	}
	l.dropped++
	return false
}

// sweep forgets addresses whose bucket has refilled: they are as good as new. If a flood
// from very many addresses leaves none full, it starts over rather than grow without bound.
func (l *rejectLimiter) sweep() {
	for ip, b := range l.buckets {
		if b.Tokens() >= rejectBurst {
			delete(l.buckets, ip)
		}
	}
	if len(l.buckets) >= maxTrackedIPs {
		l.buckets = map[string]*rate.Limiter{}
	}
}

// Dropped counts rejections answered 429 without being stored.
func (l *rejectLimiter) Dropped() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}
