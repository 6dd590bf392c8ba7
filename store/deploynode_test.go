package store

import (
	"context"
	"slices"
	"testing"
)

// TestDeploysRecordTheirNode: every deploy records the node its store was opened with
// (WithNode), ListDeploys filters on it, and a delivery lists the deploy it joined with
// node, id and status; a store opened without WithNode names none.
func TestDeploysRecordTheirNode(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		ctx := context.Background()
		database := newDatabase()
		open := func(opts ...Option) *Store { return openAt(t, database, opts...) }
		a, b, none := open(WithNode("gw-a")), open(WithNode("gw-b")), open()

		pushed := push("site", "guid-a")
		if err := a.RecordDelivery(ctx, pushed); err != nil {
			t.Fatal(err)
		}
		manual, err := b.EnqueueManual(ctx, "blog")
		if err != nil {
			t.Fatal(err)
		}
		unnamed, err := none.EnqueueManual(ctx, "docs")
		if err != nil {
			t.Fatal(err)
		}
		ignored := push("site", "guid-ignored")
		ignored.Status = DeliveryIgnored
		if err := a.RecordDelivery(ctx, ignored); err != nil {
			t.Fatal(err)
		}

		for id, want := range map[int64]string{pushed.DeployID: "gw-a", manual.ID: "gw-b", unnamed.ID: ""} {
			dp, err := a.Deploy(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if dp.Node != want {
				t.Fatalf("deploy %d (%s) node %q, want %q", id, dp.Trigger, dp.Node, want)
			}
		}
		for node, want := range map[string][]int64{
			"":     {unnamed.ID, manual.ID, pushed.DeployID},
			"gw-a": {pushed.DeployID},
			"gw-b": {manual.ID},
			"gw-c": {},
		} {
			got, err := a.ListDeploys(ctx, DeployFilter{Node: node, Page: Page{Limit: 10}})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, dp := range got {
				ids = append(ids, dp.ID)
			}
			if !slices.Equal(ids, want) && !(len(ids) == 0 && len(want) == 0) {
				t.Fatalf("deploys of node %q: %v, want %v", node, ids, want)
			}
		}

		wantRefs := []DeployRef{{Node: "gw-a", ID: pushed.DeployID, Status: DeployQueued, Repo: "site"}}
		got, err := a.Delivery(ctx, pushed.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Deploys, wantRefs) {
			t.Fatalf("delivery %d deploys %+v, want %+v", pushed.ID, got.Deploys, wantRefs)
		}
		list, err := a.ListDeliveries(ctx, DeliveryFilter{Page: Page{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != ignored.ID || len(list[0].Deploys) != 0 || list[0].Deploys == nil ||
			list[1].ID != pushed.ID || !slices.Equal(list[1].Deploys, wantRefs) {
			t.Fatalf("deliveries: %+v, want the ignored one with no deploys, then the push with %+v", list, wantRefs)
		}

		// A reconcile deploy (its own INSERT) names the node too.
		r, err := Open(ctx, newDatabase(), WithNode("gw-r"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if _, err := r.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		deployTo(t, r, "site", commitA, DeploySucceeded)
		drift, err := r.Reconcile(ctx, "site", commitB, "", func(string) string { return "drift" })
		if err != nil || drift.DeployID == 0 {
			t.Fatalf("reconcile: %+v, %v", drift, err)
		}
		if dp, err := r.Deploy(ctx, drift.DeployID); err != nil || dp.Trigger != TriggerReconcile || dp.Node != "gw-r" {
			t.Fatalf("reconcile deploy: %+v, %v; want node gw-r", dp, err)
		}
	})
}
