package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestDeploysNameTheirNode: a deploy records the node of the gateway that created it, the
// API shows it and filters on it (?node=), refuses a ?node= that is no node name, each
// delivery lists the deploys it joined with node, id and status, and the deploy page
// shows the node.
func TestDeploysNameTheirNode(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	after := g.origin.Commit(map[string]string{"v.txt": "1\n"}, "one")
	resp, out := g.send(delivery{event: "push", guid: "node-push", body: testkit.Push(t, "refs/heads/main", "", after, "binkkatal/sample_app")})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %v", resp.StatusCode, out)
	}
	pushID, deployID := id(out["delivery_id"]), id(out["deploy_id"])
	g.waitDeploy(deployID)
	resp, _ = g.send(delivery{event: "push", guid: "node-bad", body: []byte(`{}`), headers: map[string]string{"X-Hub-Signature-256": "sha256=00"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", resp.StatusCode)
	}

	// Another gateway's deploy, written through a store that names another node.
	other, err := store.Open(ctx, g.database, store.WithNode("gw-other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherDeploy, err := other.EnqueueManual(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}

	var one map[string]any
	if code := g.api("GET", fmt.Sprintf("/api/v1/deploys/%d", deployID), "", &one); code != 200 || one["node"] != testNode {
		t.Fatalf("deploy %d: %d node %v, want %q", deployID, code, one["node"], testNode)
	}
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"", []int64{otherDeploy.ID, deployID}},
		{"?node=" + testNode, []int64{deployID}},
		{"?node=gw-other", []int64{otherDeploy.ID}},
		{"?node=gw-none", []int64{}},
	} {
		var p deploysPage
		if code := g.api("GET", "/api/v1/deploys"+tc.query, "", &p); code != 200 || !slices.Equal(ids(p.Deploys), tc.want) {
			t.Fatalf("deploys%s: %d %v, want %v", tc.query, code, ids(p.Deploys), tc.want)
		}
		for _, dp := range p.Deploys {
			if want := map[int64]string{deployID: testNode, otherDeploy.ID: "gw-other"}[id(dp["id"])]; dp["node"] != want {
				t.Fatalf("deploys%s: deploy %v node %v, want %q", tc.query, dp["id"], dp["node"], want)
			}
		}
	}
	for _, bad := range []string{"-gw", "gw%20test", "gw/test", strings.Repeat("g", 64)} {
		var e map[string]map[string]string
		if code := g.api("GET", "/api/v1/deploys?node="+bad, "", &e); code != http.StatusBadRequest ||
			e["error"]["code"] != "invalid_parameter" || !strings.Contains(e["error"]["message"], "node") {
			t.Errorf("?node=%s: %d %v, want 400 invalid_parameter naming node", bad, code, e)
		}
	}

	// The deliveries: the push lists its deploy, the rejected one none ([], not null).
	wantDeploys := fmt.Sprintf(`[map[deploy_id:%d node:%s repo:site status:succeeded]]`, deployID, testNode)
	var p deliveriesPage
	if code := g.api("GET", "/api/v1/deliveries", "", &p); code != 200 || len(p.Deliveries) != 2 {
		t.Fatalf("deliveries: %d %v", code, p.Deliveries)
	}
	for _, d := range p.Deliveries {
		list, ok := d["deploys"].([]any)
		switch {
		case !ok:
			t.Fatalf("delivery %v: deploys is %#v, want a list", d["id"], d["deploys"])
		case id(d["id"]) == pushID:
			if fmt.Sprint(list) != wantDeploys || id(d["deploy_id"]) != deployID || d["deploy_status"] != "succeeded" {
				t.Fatalf("push delivery: deploys %v deploy_id %v deploy_status %v, want %s", list, d["deploy_id"], d["deploy_status"], wantDeploys)
			}
		case len(list) != 0 || d["deploy_id"] != nil:
			t.Fatalf("rejected delivery: deploys %v deploy_id %v, want none", list, d["deploy_id"])
		}
	}
	var d map[string]any
	if code := g.api("GET", fmt.Sprintf("/api/v1/deliveries/%d", pushID), "", &d); code != 200 || fmt.Sprint(d["deploys"]) != wantDeploys {
		t.Fatalf("delivery %d: %d deploys %v, want %s", pushID, code, d["deploys"], wantDeploys)
	}

	// The deploy page names the node.
	page, err := http.Get(fmt.Sprintf("%s/deploys/%d", g.url, deployID))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(body), "<dt>Node</dt><dd>"+testNode+"</dd>") {
		t.Fatalf("deploy page: %d, no node %q in it:\n%s", page.StatusCode, testNode, body)
	}
}
