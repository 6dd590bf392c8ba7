package server

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Unauthenticated rejections (bad or missing signature, a source outside allow_cidrs, an
// oversized body) are recorded up to this rate per client; past it they are answered 429
// and counted, not stored. Deliveries with a valid signature never touch the limiter, so
// they are never affected. What all clients together may record is bounded besides, by
// the unsigned budget (budget.go): this limiter only keeps one client from using it all.
const (
	rejectBurst    = 30
	rejectInterval = 2 * time.Second // one more recorded rejection per interval
	// maxTrackedClients bounds the limiter's memory (about 200 bytes a client).
	maxTrackedClients = 10_000
)

// rejectLimiter is a token bucket per client: an IPv4 address, or an IPv6 /64, which is
// what one host, or one customer of a provider, is given (RFC 6177); limiting each IPv6
// address would give such a client 2^64 buckets. It tracks at most capacity clients and
// past that forgets the one seen least recently: a client that keeps sending keeps its
// bucket however many others pass by, and one that went quiet long enough for capacity
// others to arrive has had its bucket refill meanwhile anyway.
type rejectLimiter struct {
	mu       sync.Mutex
	capacity int
	byKey    map[netip.Prefix]*list.Element // of *clientBucket
	recent   *list.List                     // most recently seen first
	dropped  int64
}

type clientBucket struct {
	key netip.Prefix
	lim *rate.Limiter
}

func newRejectLimiter(capacity int) *rejectLimiter {
	return &rejectLimiter{capacity: capacity, byKey: map[netip.Prefix]*list.Element{}, recent: list.New()}
}

// clientKey is the network a client address is limited as: the address itself for IPv4
// (and IPv4-mapped IPv6), its /64 for IPv6. Anything unparsable shares one bucket.
func clientKey(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// allow takes a token for ip's client at now and reports whether the rejection may be
// recorded.
func (l *rejectLimiter) allow(ip string, now time.Time) bool {
	k := clientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *clientBucket
	if e, ok := l.byKey[k]; ok {
		l.recent.MoveToFront(e)
		b = e.Value.(*clientBucket)
	} else {
		if l.recent.Len() >= l.capacity {
			oldest := l.recent.Back()
			l.recent.Remove(oldest)
			delete(l.byKey, oldest.Value.(*clientBucket).key)
		}
		b = &clientBucket{key: k, lim: rate.NewLimiter(rate.Every(rejectInterval), rejectBurst)}
		l.byKey[k] = l.recent.PushFront(b)
	}
	if b.lim.AllowN(now, 1) {
		return true
	}
	l.dropped++
	return false
}

// tracked is the number of clients the limiter holds a bucket for.
func (l *rejectLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recent.Len()
}

// Dropped counts rejections answered 429 without being stored.
func (l *rejectLimiter) Dropped() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}
