package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

func countDeliveries(t *testing.T, g *gateway) int {
	t.Helper()
	rows, err := g.store.ListDeliveries(context.Background(), store.DeliveryFilter{Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

// TestAllowCIDRsAndTrustedProxies: a hook with allow_cidrs rejects other sources with 403
// before reading the body; X-Forwarded-For counts only from a trusted proxy.
func TestAllowCIDRsAndTrustedProxies(t *testing.T) {
	allow := func(o *server.Options) {
		o.Hooks[0].AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	}
	g := newGateway(t, allow)
	after := g.origin.Commit(map[string]string{"c.txt": "c\n"}, "c")
	body := testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")

	resp, out := g.send(delivery{event: "push", guid: "from-loopback", body: body})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("from an address outside allow_cidrs: %d %v", resp.StatusCode, out)
	}
	rec, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
	if err != nil || rec.Status != store.DeliveryRejected || rec.Signature != store.SignatureUnchecked || rec.BodySize != 0 {
		t.Fatalf("recorded %+v %v (the body must not have been read)", rec, err)
	}
	// Not a trusted proxy: the header is the client's word and is not believed.
	resp, _ = g.send(delivery{event: "push", guid: "spoofed", body: body, headers: map[string]string{"X-Forwarded-For": "203.0.113.7"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("X-Forwarded-For believed without trusted_proxies: %d", resp.StatusCode)
	}
	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("a rejected source queued a deploy: %v (%v)", q, err)
	}

	trusted := newGateway(t, allow, func(o *server.Options) { o.TrustedProxies = []string{"127.0.0.0/8"} })
	after = trusted.origin.Commit(map[string]string{"c.txt": "c\n"}, "c")
	body = testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")
	resp, out = trusted.send(delivery{event: "push", guid: "via-proxy", body: body, headers: map[string]string{"X-Forwarded-For": "203.0.113.7"}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("through a trusted proxy from an allowed address: %d %v", resp.StatusCode, out)
	}
	if rec, err := trusted.store.Delivery(context.Background(), id(out["delivery_id"])); err != nil || rec.RemoteAddr != "203.0.113.7" {
		t.Fatalf("recorded remote address %q, want the forwarded client (%v)", rec.RemoteAddr, err)
	}
	trusted.waitDeploy(id(out["deploy_id"]))
}

// TestBadSignatureFloodIsRateLimited: past a burst, bad deliveries from one address are
// answered 429 and not stored; valid deliveries from the same address still deploy, and
// other addresses are unaffected.
func TestBadSignatureFloodIsRateLimited(t *testing.T) {
	g := newGateway(t, func(o *server.Options) { o.TrustedProxies = []string{"127.0.0.0/8"} })
	bad := delivery{event: "push", guid: "flood", body: []byte(`{"ref":"refs/heads/main"}`),
		headers: map[string]string{"X-Hub-Signature-256": "sha256=" + string(make([]byte, 0)), "X-Forwarded-For": "198.51.100.66"}}
	counts := map[int]int{}
	for range 100 {
		resp, _ := g.send(bad)
		counts[resp.StatusCode]++
	}
	if counts[http.StatusUnauthorized] == 0 || counts[http.StatusTooManyRequests] < 60 || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != 100 {
		t.Fatalf("flood answers: %v", counts)
	}
	if n := countDeliveries(t, g); n != counts[http.StatusUnauthorized] {
		t.Fatalf("%d deliveries stored, want only the %d answered 401", n, counts[http.StatusUnauthorized])
	}
	if g.srv.DroppedRejections() != int64(counts[http.StatusTooManyRequests]) {
		t.Fatalf("dropped counter %d", g.srv.DroppedRejections())
	}

	// Valid deliveries from the flooding address are not affected.
	after := g.origin.Commit(map[string]string{"ok.txt": "ok\n"}, "ok")
	resp, out := g.send(delivery{event: "push", guid: "valid-after-flood", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app"),
		headers: map[string]string{"X-Forwarded-For": "198.51.100.66"}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("valid delivery from the flooding address: %d %v", resp.StatusCode, out)
	}
	if dp := g.waitDeploy(id(out["deploy_id"])); dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy after the flood: %s", dp.Status)
	}
	// Another address still gets its rejections recorded.
	other := bad
	other.headers = map[string]string{"X-Hub-Signature-256": "sha256=00", "X-Forwarded-For": "192.0.2.1"}
	if resp, _ := g.send(other); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another address: %d", resp.StatusCode)
	}
}

// TestStoredPayloadIsBounded: a large valid delivery is deployed and recorded, but its
// payload is stored only up to the bound.
func TestStoredPayloadIsBounded(t *testing.T) {
	g := newGateway(t, func(o *server.Options) { o.MaxBody = 2 << 20 })
	after := g.origin.Commit(map[string]string{"big.txt": "big\n"}, "big")
	small := testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")
	big := append(append([]byte{}, small[:len(small)-1]...), []byte(`,"padding":"`+strings.Repeat("p", 1<<20)+`"}`)...)
	for _, tc := range []struct {
		name   string
		body   []byte
		stored bool
	}{{"small", small, true}, {"1 MiB", big, false}} {
		resp, out := g.send(delivery{event: "push", guid: "payload-" + tc.name, body: tc.body})
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %v", tc.name, resp.StatusCode, out)
		}
		rec, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
		if err != nil {
			t.Fatal(err)
		}
		if (rec.Payload != nil) != tc.stored || rec.BodySize != int64(len(tc.body)) || rec.Commit != after[:7] {
			t.Fatalf("%s: payload stored %v (%d bytes), body size %d", tc.name, rec.Payload != nil, len(rec.Payload), rec.BodySize)
		}
		g.waitDeploy(id(out["deploy_id"]))
	}
}
