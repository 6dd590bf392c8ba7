package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// noBudget lifts the unsigned budget far above what a test sends, so what is measured is
// the per-row bound and the per-client limit alone.
func noBudget(o *server.Options) {
	o.Unsigned = server.UnsignedBudget{PerMinute: 1 << 30, PerWindow: 1 << 30, Window: time.Hour}
}

// goHeaderCap gives the gateway's listener Go's own header cap (1 MiB), the one the
// hand-wired test server had, so a padded delivery's headers reach the hook endpoint.
func goHeaderCap(o *server.Options) { o.MaxHeaderBytes = http.DefaultMaxHeaderBytes }

// padded is an unsigned delivery carrying 60 headers of 1,000 bytes (about 60 KB, under the
// 64 KiB header cap), as the review's flood sent.
func padded(guid string) delivery {
	h := map[string]string{"X-Hub-Signature-256": ""}
	pad := strings.Repeat("p", 1000)
	for i := range 60 {
		h[fmt.Sprintf("X-Pad-%02d", i)] = pad
	}
	return delivery{event: "push", guid: guid, body: []byte(`{"ref":"refs/heads/main"}`), headers: h}
}

// fileSize is the SQLite database's size on disk once its write-ahead log is checkpointed
// into it (and truncated): what the rows take, without the log's reused pages.
func fileSize(t *testing.T, database string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range []string{database, database + "-wal"} {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// TestUnsignedFloodWritesLittle is the review's disk figure at small scale: the 30
// unsigned deliveries with 60 KB of headers that one address may have recorded grew the
// database by 61 KB each (1.9 MB); each row now holds a few fixed bytes.
func TestUnsignedFloodWritesLittle(t *testing.T) {
	g := newGateway(t, noBudget, goHeaderCap)
	before := fileSize(t, g.database)
	for i := range 30 {
		resp, out := g.send(padded(fmt.Sprintf("flood-%d", i)))
		if resp.StatusCode != http.StatusUnauthorized || id(out["delivery_id"]) == 0 {
			t.Fatalf("unsigned delivery %d: %d %v, want 401 and recorded", i, resp.StatusCode, out)
		}
	}
	grown := fileSize(t, g.database) - before
	t.Logf("30 unsigned deliveries with 60 KB of headers grew the database by %d bytes", grown)
	if grown > 30*4096 {
		t.Fatalf("30 unsigned deliveries grew the database by %d bytes; at most one 4 KiB page each is allowed", grown)
	}
}

// rowBytes is the bytes of column data the delivery's row holds (text and blob lengths,
// 8 for each integer), and its payload row's.
func rowBytes(t *testing.T, database string, deliveryID int64) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cols []string
	for _, c := range []string{"guid", "repo", "event", "ref", "before_commit", "after_commit", "commit_short",
		"signature", "signature_alg", "status", "reason", "remote_addr", "user_agent", "content_type",
		"headers", "full_name", "repo_url", "pusher", "message", "received_at", "payload"} {
		cols = append(cols, "coalesce(length(CAST("+c+" AS BLOB)), 0)")
	}
	var n int64
	q := `SELECT ` + strings.Join(cols, " + ") + ` + 4 * 8
		+ coalesce((SELECT length(payload) FROM delivery_payloads WHERE delivery_id = d.id), 0)
		FROM deliveries d WHERE id = ?`
	if err := db.QueryRow(q, deliveryID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUnsignedRejectionRowIsBounded: whatever an unauthenticated request sends (long
// GUID, event, user agent and content type, the recorded headers full of characters JSON
// escapes, 60 more headers), each kind of rejection before authentication stores at most
// 2,048 bytes (SECURITY.md) and only the few headers that explain it; the same headers on
// a signed delivery are all kept, as before.
func TestUnsignedRejectionRowIsBounded(t *testing.T) {
	allow := func(o *server.Options) {
		o.Hooks = append(o.Hooks, server.Hook{Name: "fenced", Secret: []byte(secret), Branch: "main",
			AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}})
	}
	g := newGateway(t, noBudget, allow, goHeaderCap)
	hostile := func(guid string) delivery {
		d := padded(guid)
		long := strings.Repeat("<é&", 400)
		d.event = long
		d.ctype = "application/json; " + long
		for k, v := range map[string]string{"X-GitHub-Delivery": guid + long, "User-Agent": long,
			"X-Forwarded-For": long, "X-Hub-Signature": long, "X-Gitea-Signature": long,
			"X-Forgejo-Signature": long, "X-Gogs-Signature": long, "X-Github-Hook-Id": long} {
			d.headers[k] = v
		}
		return d
	}
	missing := hostile("missing")
	invalid := hostile("invalid")
	invalid.headers["X-Hub-Signature-256"] = "sha256=" + strings.Repeat("<", 900)
	fenced := hostile("fenced")
	fenced.path = "/hooks/fenced"
	for _, tc := range []struct {
		name   string
		d      delivery
		status int
	}{
		{"signature missing", missing, http.StatusUnauthorized},
		{"signature invalid", invalid, http.StatusUnauthorized},
		{"source outside allow_cidrs", fenced, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := g.send(tc.d)
			if resp.StatusCode != tc.status || id(out["delivery_id"]) == 0 {
				t.Fatalf("%d %v, want %d and recorded", resp.StatusCode, out, tc.status)
			}
			n := rowBytes(t, g.database, id(out["delivery_id"]))
			t.Logf("the row holds %d bytes", n)
			if n > 2048 {
				t.Errorf("the row holds %d bytes; an unauthenticated rejection may store at most 2,048", n)
			}
			rec, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Headers) > 8 {
				t.Errorf("%d headers recorded, want at most 8", len(rec.Headers))
			}
			if _, ok := rec.Headers["X-Pad-00"]; ok {
				t.Errorf("an arbitrary header (X-Pad-00) was recorded")
			}
		})
	}

	// Signed, the same headers are kept as they were: up to 64, 1 KiB each.
	after := g.origin.Commit(map[string]string{"s.txt": "s\n"}, "s")
	d := padded("signed")
	d.body = testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")
	delete(d.headers, "X-Hub-Signature-256")
	// 50 pads and the request's own headers stay under the 64 a signed delivery keeps, so
	// none is dropped by the map's order (60 and the others did not, now and then).
	for i := 50; i < 60; i++ {
		delete(d.headers, fmt.Sprintf("X-Pad-%02d", i))
	}
	resp, out := g.send(d)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("signed: %d %v", resp.StatusCode, out)
	}
	rec, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Headers["X-Pad-00"] != strings.Repeat("p", 1000) {
		t.Fatalf("a signed delivery's headers are no longer all recorded: %d headers", len(rec.Headers))
	}
	g.waitDeploy(id(out["deploy_id"]))
}

// TestUnsignedBudget: past unsigned_records_per_minute, unauthenticated rejections are
// answered as before (401 signature_missing) but not recorded, counted (the metric) and
// logged as one line an interval; a signed delivery past the budget is recorded and
// deployed; the next minute records again until the window's total is spent, and the next
// window starts over.
func TestUnsignedBudget(t *testing.T) {
	logs := &lockedBuffer{}
	g := newGateway(t, func(o *server.Options) {
		o.Unsigned = server.UnsignedBudget{PerMinute: 5, PerWindow: 8, Window: time.Hour}
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	server.SetUnsignedSummaryEvery(g.srv, 2*time.Second)
	// The clock moves only when the test says; the handlers read it on other goroutines.
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64
	g.srv.SetNow(func() time.Time { return start.Add(time.Duration(elapsed.Load())) })
	unsigned := delivery{event: "push", guid: "unsigned", body: []byte(`{"ref":"refs/heads/main"}`),
		headers: map[string]string{"X-Hub-Signature-256": ""}}
	recorded := 0
	flood := func(n int) (kept, refused int) {
		t.Helper()
		for range n {
			resp, out := g.send(unsigned)
			e, _ := out["error"].(map[string]any)
			if resp.StatusCode != http.StatusUnauthorized || e["code"] != "signature_missing" {
				t.Fatalf("unsigned: %d %v, want 401 signature_missing whether recorded or not", resp.StatusCode, out)
			}
			if id(out["delivery_id"]) != 0 {
				kept++
			} else {
				refused++
			}
		}
		recorded += kept
		if got := countDeliveries(t, g); got != recorded {
			t.Fatalf("%d deliveries stored, want %d", got, recorded)
		}
		return kept, refused
	}
	summaries := func() []string {
		var out []string
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, "unsigned deliveries refused, not recorded one by one") {
				out = append(out, l)
			}
		}
		return out
	}

	if kept, refused := flood(15); kept != 5 || refused != 10 {
		t.Fatalf("first minute: %d recorded, %d not, want 5 and 10", kept, refused)
	}
	if n := g.srv.UnrecordedRejections(); n != 10 {
		t.Fatalf("unrecorded counter %d, want 10", n)
	}
	testkit.Eventually(t, 20*time.Second, "the interval's summary", func() bool { return len(summaries()) == 1 })
	if s := summaries()[0]; !strings.Contains(s, `msg="10 unsigned deliveries refused`) {
		t.Fatalf("summary %q, want one line for the 10", s)
	}

	// A signed delivery past the budget is recorded and deployed.
	after := g.origin.Commit(map[string]string{"b.txt": "b\n"}, "b")
	resp, out := g.send(delivery{event: "push", guid: "signed", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("signed past the budget: %d %v", resp.StatusCode, out)
	}
	recorded++
	if dp := g.waitDeploy(id(out["deploy_id"])); dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy %s: %s", dp.Status, dp.Error)
	}

	// The next minute: 3 more fill the window's 8.
	elapsed.Add(int64(time.Minute))
	if kept, refused := flood(5); kept != 3 || refused != 2 {
		t.Fatalf("second minute: %d recorded, %d not, want 3 (the window's rest) and 2", kept, refused)
	}
	testkit.Eventually(t, 20*time.Second, "the next interval's summary", func() bool { return len(summaries()) == 2 })
	if s := summaries()[1]; !strings.Contains(s, `msg="2 unsigned deliveries refused`) {
		t.Fatalf("second summary %q, want one line for the 2", s)
	}

	// The next window starts over.
	elapsed.Add(int64(time.Hour))
	if kept, refused := flood(6); kept != 5 || refused != 1 {
		t.Fatalf("next window: %d recorded, %d not, want 5 and 1", kept, refused)
	}

	metrics := scrape(t, g)
	if !strings.Contains(metrics, "hookgate_unsigned_unrecorded_total 13\n") ||
		!strings.Contains(metrics, `hookgate_deliveries_total{event="push",outcome="unrecorded",repo="site"} 13`) {
		t.Fatalf("metrics do not count the 13 unrecorded rejections:\n%s", grepLines(metrics, "unrecorded"))
	}
}

// TestIPv6ClientsAreLimitedBy64: the per-client limit takes an IPv6 /64 as one client, so
// a host with its 2^64 addresses gets one burst, not one per address; another /64, and
// IPv4 addresses, are other clients.
func TestIPv6ClientsAreLimitedBy64(t *testing.T) {
	g := newGateway(t, noBudget, func(o *server.Options) { o.TrustedProxies = []string{"127.0.0.0/8"} })
	from := func(addr string) int {
		resp, _ := g.send(delivery{event: "push", guid: "v6", body: []byte(`{}`),
			headers: map[string]string{"X-Hub-Signature-256": "", "X-Forwarded-For": addr}})
		return resp.StatusCode
	}
	for i := range 30 {
		if code := from(fmt.Sprintf("2001:db8:1:2::%x", i+1)); code != http.StatusUnauthorized {
			t.Fatalf("address %d of the /64: %d, want 401 (recorded) within the burst", i, code)
		}
	}
	for _, addr := range []string{"2001:db8:1:2::ffff", "2001:db8:1:2:ffff:ffff:ffff:fffe"} {
		if code := from(addr); code != http.StatusTooManyRequests {
			t.Errorf("%s, in the same /64 past its burst: %d, want 429", addr, code)
		}
	}
	for _, addr := range []string{"2001:db8:1:3::1", "198.51.100.7"} {
		if code := from(addr); code != http.StatusUnauthorized {
			t.Errorf("%s, another client: %d, want 401", addr, code)
		}
	}
}

// scrape reads /metrics (loopback, no admin token).
func scrape(t *testing.T, g *gateway) string {
	t.Helper()
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, word string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
