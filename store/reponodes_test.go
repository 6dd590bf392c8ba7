package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// heartbeats checks that each registered node of ns, and only those, carries its last
// heartbeat (up: the nodes register now), then clears it for comparing the rest.
func heartbeats(t *testing.T, ns []RepoNode, unregistered string) []RepoNode {
	t.Helper()
	for i := range ns {
		if ns[i].LastSeen.IsZero() != (ns[i].Node == unregistered) || ns[i].Down {
			t.Errorf("node %s: last seen %v, down %v", ns[i].Node, ns[i].LastSeen, ns[i].Down)
		}
		ns[i].LastSeen = time.Time{}
	}
	return ns
}

// TestRepoNodes: each node that deploys a repository (registered with it) or has a deploy
// of it queued or running is listed once,
// sorted byte by byte, with the to_commit of its newest succeeded deploy (a later failure
// does not change it, nor another node's success) and its running and queued deploys;
// deploys that name no node, other repositories' nodes, and a node known only from its
// history (taken out of the fleet, or no longer deploying the repository) are left out.
func TestRepoNodes(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		ctx := context.Background()
		database := newDatabase()
		open := func(opts ...Option) *Store { return openAt(t, database, opts...) }
		web1, web2, web3, unnamed := open(WithNode("web1")), open(WithNode("web2")), open(WithNode("web3")), open()
		gone := open(WithNode("gone"))
		enqueue := func(s *Store, repo string) Deploy {
			t.Helper()
			dp, err := s.EnqueueManual(ctx, repo)
			if err != nil {
				t.Fatal(err)
			}
			return dp
		}

		empty, err := web1.RepoNodes(ctx, "site")
		if err != nil || empty == nil || len(empty) != 0 {
			t.Fatalf("no deploys, no nodes: %#v %v, want an empty list", empty, err)
		}

		// web1: A, then B live, then a failed deploy of C.
		enqueue(web1, "site")
		deployTo(t, web1, "site", commitA, DeploySucceeded)
		enqueue(web1, "site")
		deployTo(t, web1, "site", commitB, DeploySucceeded)
		enqueue(web1, "site")
		deployTo(t, web1, "site", commitC, DeployFailed)
		// A deploy that names no node succeeded last: it is nobody's live commit.
		enqueue(unnamed, "site")
		deployTo(t, unnamed, "site", commitC, DeploySucceeded)
		// web3 deploys only blog.
		enqueue(web3, "blog")
		deployTo(t, web3, "blog", commitA, DeploySucceeded)
		// gone deployed blog once and is not registered: history only.
		enqueue(gone, "blog")
		deployTo(t, gone, "blog", commitB, DeploySucceeded)
		// web2: one running, one queued behind it, nothing live yet.
		enqueue(web2, "site")
		running, err := web2.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		queued := enqueue(web2, "site")

		// Registered nodes: web1 (already listed: once), Web9 deploys site and never
		// ran it, web3 and web5 deploy blog only. web2 is not registered: it is listed
		// for its running and queued deploys.
		for name, repos := range map[string][]string{"web1": {"site"}, "Web9": {"blog", "site"}, "web3": {"blog"}, "web5": {"blog"}} {
			if err := web1.RegisterNode(ctx, name, "v1", repos); err != nil {
				t.Fatal(err)
			}
		}

		got, err := web2.RepoNodes(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		got = heartbeats(t, got, "web2")
		want := []RepoNode{
			{Node: "Web9"}, // 'W' sorts before 'w' byte by byte, whatever the database's collation
			{Node: "web1", LiveCommit: commitB},
			{Node: "web2", RunningDeployID: running.ID, QueuedDeployID: queued.ID},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("nodes of site:\n%+v\nwant\n%+v", got, want)
		}

		got, err = web1.RepoNodes(ctx, "blog")
		if err != nil {
			t.Fatal(err)
		}
		got = heartbeats(t, got, "web2")
		want = []RepoNode{{Node: "Web9"}, {Node: "web3", LiveCommit: commitA}, {Node: "web5"}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("nodes of blog:\n%+v\nwant\n%+v", got, want)
		}

		// web2's deploy succeeds: its commit is live there, web1's stays B.
		if err := web2.FinishDeploy(ctx, running.ID, Result{Status: DeploySucceeded, ToCommit: commitC}); err != nil {
			t.Fatal(err)
		}
		got, _ = web1.RepoNodes(ctx, "site")
		if g := got[2]; g.Node != "web2" || g.LiveCommit != commitC || g.RunningDeployID != 0 || g.QueuedDeployID != queued.ID {
			t.Fatalf("web2 after its deploy: %+v", g)
		}
		if g := got[1]; g.LiveCommit != commitB {
			t.Fatalf("web1 after web2's deploy: %+v, want still %s", g, commitB)
		}

		// A push recorded by web1 now queues a deploy on each node that deploys site: on
		// PostgreSQL web1 and Web9 (web2 never registered); on SQLite, whose one gateway
		// deploys for itself alone, web1.
		pushed := push("site", "fleet-push")
		if err := web1.RecordDelivery(ctx, pushed); err != nil {
			t.Fatal(err)
		}
		d, err := web1.Delivery(ctx, pushed.ID)
		if err != nil {
			t.Fatal(err)
		}
		queuedOn := map[string]int64{}
		for _, r := range d.Deploys {
			queuedOn[r.Node] = r.ID
		}
		if _, ok := queuedOn["Web9"]; ok != web1.pg || queuedOn["web1"] == 0 {
			t.Fatalf("the push's deploys: %+v", d.Deploys)
		}
		got, _ = web1.RepoNodes(ctx, "site")
		for _, g := range got {
			if want := queuedOn[g.Node]; g.Node != "web2" && g.QueuedDeployID != want {
				t.Fatalf("%s queued %d after the push, want %d (%+v)", g.Node, g.QueuedDeployID, want, got)
			}
		}
	})
}
