package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/forge"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/server"
	"github.com/hookgate/hookgate/store"
)

// TestBodyMemoryBoundRefusesNewBodies: while bodies being read hold max_body_memory, a new
// delivery, with or without Content-Length, is refused at once with 503, Retry-After and
// the code "overloaded", and recorded as rejected with its signature unchecked; once one of
// the held bodies ends, its bytes are given back and a delivery deploys again.
func TestBodyMemoryBoundRefusesNewBodies(t *testing.T) {
	const (
		limit = 32 << 10
		held  = 16<<10 - 1 // what each of the two slow clients has sent of its 16 KiB
	)
	g := newGateway(t, func(o *server.Options) {
		o.MaxBody = 16 << 10
		o.MaxBodyMemory = limit
	})
	addr := serveReal(t, g)
	if v, _ := metric(t, addr, "hookgate_body_memory_limit_bytes"); v != limit {
		t.Fatalf("hookgate_body_memory_limit_bytes = %v, want %d", v, limit)
	}
	unsigned := "X-Hub-Signature-256: sha256=00\r\n"
	a := startBody(t, addr, "held-a", 16<<10, unsigned, bytes.Repeat([]byte(" "), held))
	startBody(t, addr, "held-b", 16<<10, unsigned, bytes.Repeat([]byte(" "), held))
	gauge := func(want int) {
		t.Helper()
		testkit.Eventually(t, 20*time.Second, "body bytes in memory to reach the bound", func() bool {
			v, _ := metric(t, addr, "hookgate_body_bytes_in_memory")
			return v == float64(want)
		})
	}
	gauge(2 * held)

	after := g.origin.Commit(map[string]string{"o.txt": "o\n"}, "o")
	push := testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")
	for _, chunked := range []bool{false, true} {
		guid := "refused-length"
		if chunked {
			guid = "refused-chunked"
		}
		req, err := http.NewRequest(http.MethodPost, g.url+"/hooks/site", bytes.NewReader(push))
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1
		}
		req.Header.Set("Content-Type", "application/json")
		forge.SetDeliveryHeaders(req.Header, forge.ProviderGitHub, "push", guid, push, []byte(secret))
		resp, out := g.do(req)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d (Retry-After %q) %v", guid, resp.StatusCode, resp.Header.Get("Retry-After"), out)
		}
		if e, _ := out["error"].(map[string]any); e["code"] != "overloaded" {
			t.Fatalf("%s: error %v", guid, out)
		}
		d, err := g.store.Delivery(context.Background(), id(out["delivery_id"]))
		if err != nil {
			t.Fatal(err)
		}
		if d.GUID != guid || d.Status != store.DeliveryRejected || d.HTTPStatus != http.StatusServiceUnavailable ||
			d.Signature != store.SignatureUnchecked || d.BodySize != 0 || !strings.Contains(d.Reason, "max_body_memory") {
			t.Fatalf("%s: recorded %+v", guid, d)
		}
	}
	if q, err := g.store.QueuedRepos(context.Background()); err != nil || len(q) != 0 {
		t.Fatalf("a refused delivery queued a deploy: %v %v", q, err)
	}

	// One held body ends (its last byte arrives; its signature is wrong): its bytes are
	// given back, and a delivery fits again.
	if _, err := a.Write([]byte(" ")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the held body, completed: %d", resp.StatusCode)
	}
	gauge(held)
	resp2, out := g.send(delivery{event: "push", guid: "after-release", body: push})
	if resp2.StatusCode != http.StatusAccepted {
		t.Fatalf("after the bound had room again: %d %v", resp2.StatusCode, out)
	}
	if dp := g.waitDeploy(id(out["deploy_id"])); dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy %s: %s", dp.Status, dp.Error)
	}
}

// TestBodyMemoryBoundBelowMaxBodyIsRefused: a bound smaller than max_body could never
// hold the largest body allowed, so it is a configuration error, at start and on reload.
func TestBodyMemoryBoundBelowMaxBodyIsRefused(t *testing.T) {
	g := newGateway(t)
	_, err := server.New(server.Options{MaxBody: 1 << 20, MaxBodyMemory: 1 << 19}, g.store, g.mgr)
	if err == nil || !strings.Contains(err.Error(), "less than max body") {
		t.Fatalf("New with max_body_memory < max_body: %v", err)
	}
	if err := g.srv.Apply(server.Settings{MaxBody: 1 << 20, MaxBodyMemory: 1 << 19}); err == nil {
		t.Fatal("Apply with max_body_memory < max_body succeeded")
	}
}
