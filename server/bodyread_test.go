package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// recordedLog is a slog handler that passes on the GUID of each delivery the server logs as
// recorded: the "delivery" line comes after the commit, so a test waits on the server's own
// word instead of on time.
type recordedLog struct{ guids chan string }

func newRecordedLog() *recordedLog { return &recordedLog{guids: make(chan string, 256)} }

func (h *recordedLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordedLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordedLog) WithGroup(string) slog.Handler            { return h }
func (h *recordedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "delivery" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "guid" {
			h.guids <- a.Value.String()
			return false
		}
		return true
	})
	return nil
}

// waitRecorded waits until the server says it recorded the delivery with this GUID.
func (h *recordedLog) waitRecorded(t *testing.T, guid string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case g := <-h.guids:
			if g == guid {
				return
			}
		case <-timeout:
			t.Fatalf("delivery %s was never recorded", guid)
		}
	}
}

// deliveryByGUID returns the one recorded delivery with this GUID.
func deliveryByGUID(t *testing.T, g *gateway, guid string) store.Delivery {
	t.Helper()
	rows, err := g.store.ListDeliveries(context.Background(), store.DeliveryFilter{Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	var found []store.Delivery
	for _, d := range rows {
		if d.GUID == guid {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d deliveries recorded with GUID %s, want 1", len(found), guid)
	}
	return found[0]
}

// startBody opens a connection and sends a hook request's headers (declaring
// contentLength) and the first bytes of its body, leaving the rest unsent.
func startBody(t *testing.T, addr, guid string, contentLength int64, headers string, first []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /hooks/site HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"X-GitHub-Event: push\r\nX-GitHub-Delivery: %s\r\n%sContent-Length: %d\r\n\r\n", addr, guid, headers, contentLength)
	if _, err := conn.Write(first); err != nil {
		t.Fatal(err)
	}
	return conn
}

// metric reads one unlabelled series from GET /metrics; ok is false when it is absent.
func metric(t *testing.T, addr, name string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, found := strings.CutPrefix(sc.Text(), name+" "); found {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v, true
		}
	}
	return 0, false
}

// heapInUse is the live heap after two collections (the second frees what pools kept).
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestUnauthenticatedBodyMemoryFollowsBytesReceived: connections that declare 25 MiB and
// send a few bytes make the gateway hold those few bytes, not what they declared: the
// hookgate_body_bytes_in_memory gauge equals the bytes received, and so does the growth of
// the heap, within a small constant per connection. When they close, the gauge is back at
// 0 and each of them is recorded as an incomplete body.
func TestUnauthenticatedBodyMemoryFollowsBytesReceived(t *testing.T) {
	const (
		conns    = 16
		declared = 25 << 20
	)
	g := newGateway(t, func(o *server.Options) { o.MaxBody = 32 << 20 })
	addr := serveReal(t, g)
	metric(t, addr, "hookgate_body_bytes_in_memory") // the metrics handler's first use allocates
	base := heapInUse()
	// The bound the heap may grow by: twice what was received plus 256 KiB per connection
	// for the server's goroutine and buffers, the test's side of the connection, and the
	// scrapes of /metrics. Sizing the buffers from Content-Length would take 400 MiB.
	perConn := int64(256 << 10)

	var open []net.Conn
	for i := range conns {
		open = append(open, startBody(t, addr, fmt.Sprintf("slow-%d", i), declared,
			"X-Hub-Signature-256: sha256=00\r\n", []byte("{")))
	}
	// wait polls until the gauge reads want; while bytes arrive it may never read more than
	// was sent, while closed connections give theirs back it falls to want.
	wait := func(want int64, arriving bool) {
		t.Helper()
		testkit.Eventually(t, 20*time.Second, fmt.Sprintf("%d body bytes in memory", want), func() bool {
			if grew := heapInUse() - base; grew > 2*want+conns*perConn {
				t.Fatalf("the heap grew by %d MiB while %d connections had sent %d bytes", grew>>20, conns, want)
			}
			v, ok := metric(t, addr, "hookgate_body_bytes_in_memory")
			if !ok {
				return false
			}
			if arriving && int64(v) > want {
				t.Fatalf("hookgate_body_bytes_in_memory = %v, more than the %d bytes received", v, want)
			}
			return int64(v) == want
		})
	}
	wait(conns, true)

	// More bytes: the gauge follows them.
	more := bytes.Repeat([]byte(" "), 4096)
	for _, c := range open {
		if _, err := c.Write(more); err != nil {
			t.Fatal(err)
		}
	}
	wait(conns*(1+4096), true)
	if grew := heapInUse() - base; grew > conns*(1+4096)*2+conns*perConn {
		t.Fatalf("the heap grew by %d KiB for %d bytes received", grew>>10, conns*(1+4096))
	} else {
		t.Logf("the heap grew by %d KiB for %d connections that declared %d MiB each and sent %d bytes", grew>>10, conns, declared>>20, 1+4096)
	}

	// The clients give up: their memory is given back and each is recorded.
	for _, c := range open {
		c.Close()
	}
	wait(0, false)
	testkit.Eventually(t, 20*time.Second, "the closed connections to be recorded", func() bool {
		return countDeliveries(t, g) == conns
	})
	for i := range conns {
		d := deliveryByGUID(t, g, fmt.Sprintf("slow-%d", i))
		if d.Status != store.DeliveryRejected || d.HTTPStatus != http.StatusBadRequest || d.BodySize != 1+4096 ||
			d.Signature != store.SignatureUnchecked || !strings.Contains(d.Reason, "closed before the body was complete") {
			t.Fatalf("recorded %+v", d)
		}
	}
}

// TestBodyReadFailureIsRecorded: a delivery whose body never arrives whole, because the
// client closes the connection mid-body or stalls past the read timeout, reached a hook
// and is recorded as rejected with the reason, although its request's context has ended.
func TestBodyReadFailureIsRecorded(t *testing.T) {
	logs := newRecordedLog()
	g := newGateway(t, func(o *server.Options) {
		o.ReadTimeout = 500 * time.Millisecond
		o.Logger = slog.New(logs)
	})
	addr := serveReal(t, g)
	after := g.origin.Commit(map[string]string{"r.txt": "r\n"}, "r")
	body := testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")
	signed := "X-Hub-Signature-256: " + forge.Sign(body, []byte(secret)) + "\r\n"

	t.Run("closed mid-body", func(t *testing.T) {
		c := startBody(t, addr, "closed-mid-body", int64(len(body)), signed, body[:100])
		c.Close()
		logs.waitRecorded(t, "closed-mid-body")
		d := deliveryByGUID(t, g, "closed-mid-body")
		if d.Status != store.DeliveryRejected || d.HTTPStatus != http.StatusBadRequest || d.BodySize != 100 ||
			d.Signature != store.SignatureUnchecked || d.Reason != "the connection closed before the body was complete; 100 bytes were received" {
			t.Fatalf("recorded %+v", d)
		}
	})

	t.Run("stalled past the read timeout", func(t *testing.T) {
		c := startBody(t, addr, "stalled", int64(len(body)), signed, body[:100])
		// The server gives up on the body at its read timeout and still answers.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer after the read timeout: %v", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(raw), `"code":"body_timeout"`) {
			t.Fatalf("answer %d %s", resp.StatusCode, raw)
		}
		d := deliveryByGUID(t, g, "stalled")
		if d.Status != store.DeliveryRejected || d.HTTPStatus != http.StatusRequestTimeout || d.BodySize != 100 ||
			!strings.Contains(d.Reason, "did not arrive within the read timeout (500ms)") {
			t.Fatalf("recorded %+v", d)
		}
	})

	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("a body that never arrived queued a deploy: %v %v", q, err)
	}
}

// TestMaxBodyAppliesWithoutContentLength: a chunked body (no Content-Length to refuse up
// front) is cut off at max_body as it is read: 413, recorded as rejected with its
// signature unchecked, nothing queued; a chunked body of exactly max_body deploys.
func TestMaxBodyAppliesWithoutContentLength(t *testing.T) {
	g := newGateway(t)
	after := g.origin.Commit(map[string]string{"k.txt": "k\n"}, "k")
	good := testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")
	chunked := func(guid string, body []byte) (*http.Response, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, g.url+"/hooks/site", io.MultiReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, "push", guid, body, []byte(secret))
		req.ContentLength = -1 // unknown: sent chunked
		return g.do(req)
	}

	oversize := append(bytes.Repeat([]byte(" "), maxBody+1-len(good)), good...)
	resp, out := chunked("chunked-oversize", oversize)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over max_body: %d %v", resp.StatusCode, out)
	}
	d, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.DeliveryRejected || d.HTTPStatus != http.StatusRequestEntityTooLarge ||
		d.Signature != store.SignatureUnchecked || d.BodySize != maxBody+1 || d.Payload != nil {
		t.Fatalf("recorded %+v", d)
	}
	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("an oversized body queued a deploy: %v %v", q, err)
	}

	exact := append(bytes.Repeat([]byte(" "), maxBody-len(good)), good...)
	resp, out = chunked("chunked-exact", exact)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("chunked body of exactly max_body: %d %v", resp.StatusCode, out)
	}
	g.waitDeploy(id(out["deploy_id"]))
}
