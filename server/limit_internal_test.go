package server

import (
	"fmt"
	"testing"
	"time"
)

// TestRejectLimiterKeepsHeavyClient: a limiter full of other clients (a flood from many
// addresses) forgets the ones seen least recently, never the client that keeps sending:
// it stays refused instead of getting a fresh burst, and the limiter's size stays bounded.
func TestRejectLimiterKeepsHeavyClient(t *testing.T) {
	const capacity = 100
	l := newRejectLimiter(capacity)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC) // no time passes: no bucket refills
	heavy := "198.51.100.66"
	allowed := 0
	for range rejectBurst + 10 {
		if l.allow(heavy, now) {
			allowed++
		}
	}
	if allowed != rejectBurst {
		t.Fatalf("heavy client: %d allowed, want the burst of %d", allowed, rejectBurst)
	}
	for i := range 50 * capacity {
		if !l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), now) {
			t.Fatalf("new client %d refused", i)
		}
		if i%10 == 0 && l.allow(heavy, now) {
			t.Fatalf("the heavy client got a fresh burst after %d other clients", i+1)
		}
		if n := l.tracked(); n > capacity {
			t.Fatalf("%d clients tracked, more than %d", n, capacity)
		}
	}
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"2001:db8::1", "2001:db8::ffff:1"},
		{"2001:db8::1", "2001:db8:0:0:ffff:ffff:ffff:ffff"},
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"fe80::1%eth0", "fe80::2"},
	} {
		if clientKey(tc.a) != clientKey(tc.b) {
			t.Errorf("%s and %s are different clients: %v, %v", tc.a, tc.b, clientKey(tc.a), clientKey(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"2001:db8::1", "2001:db8:0:1::1"},
		{"192.0.2.1", "192.0.2.2"},
	} {
		if clientKey(tc.a) == clientKey(tc.b) {
			t.Errorf("%s and %s are one client: %v", tc.a, tc.b, clientKey(tc.a))
		}
	}
}
