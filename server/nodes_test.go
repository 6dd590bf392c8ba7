package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookgate/hookgate/store"
)

// TestAPINodes: GET /api/v1/nodes lists the registered gateways with the contract's
// fields; one silent for three heartbeat intervals is down.
func TestAPINodes(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	if err := g.store.RegisterNode(ctx, "web1", "v1.4.0 (0123456789ab)", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	g.store.SetNow(func() time.Time { return time.Now().UTC().Add(-4 * store.HeartbeatEvery) })
	if err := g.store.RegisterNode(ctx, "web2", "v1.4.0", []string{}); err != nil {
		t.Fatal(err)
	}
	g.store.SetNow(func() time.Time { return time.Now().UTC() })
	var out struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if code := g.api("GET", "/api/v1/nodes", "", &out); code != 200 || len(out.Nodes) != 2 {
		t.Fatalf("nodes: %d %+v", code, out)
	}
	web1, web2 := out.Nodes[0], out.Nodes[1]
	if web1["name"] != "web1" || web1["version"] != "v1.4.0 (0123456789ab)" || web1["status"] != "up" ||
		len(web1["repos"].([]any)) != 1 || web1["repos"].([]any)[0] != "site" {
		t.Fatalf("web1: %v", web1)
	}
	for _, k := range []string{"started_at", "last_seen"} {
		if _, err := time.Parse(time.RFC3339, web1[k].(string)); err != nil {
			t.Fatalf("web1 %s is not RFC 3339: %v", k, web1[k])
		}
	}
	if web2["name"] != "web2" || web2["status"] != "down" || len(web2["repos"].([]any)) != 0 {
		t.Fatalf("web2: %v", web2)
	}
}

// TestAPIRemoveNode: DELETE /api/v1/nodes/:name takes a node that is down out of the list;
// one that is up is refused with 409, an unknown one is 404.
func TestAPIRemoveNode(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	if err := g.store.RegisterNode(ctx, "web1", "v1", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	g.store.SetNow(func() time.Time { return time.Now().UTC().Add(-4 * store.HeartbeatEvery) })
	if err := g.store.RegisterNode(ctx, "old", "v1", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	g.store.SetNow(func() time.Time { return time.Now().UTC() })
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if code := g.api("DELETE", "/api/v1/nodes/web1", "", &e); code != 409 || e.Error.Code != "node_up" {
		t.Fatalf("removing a node that is up: %d %+v", code, e)
	}
	if code := g.api("DELETE", "/api/v1/nodes/nope", "", &e); code != 404 || e.Error.Code != "unknown_node" {
		t.Fatalf("removing an unknown node: %d %+v", code, e)
	}
	var removed struct {
		Node        string  `json:"node"`
		Interrupted []int64 `json:"interrupted_deploys"`
	}
	if code := g.api("DELETE", "/api/v1/nodes/old", "", &removed); code != 200 || removed.Node != "old" ||
		removed.Interrupted == nil || len(removed.Interrupted) != 0 {
		t.Fatalf("removing a node that is down: %d %+v", code, removed)
	}
	var out struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if code := g.api("GET", "/api/v1/nodes", "", &out); code != 200 || len(out.Nodes) != 1 || out.Nodes[0]["name"] != "web1" {
		t.Fatalf("nodes after the removal: %d %+v", code, out)
	}
}
