package store

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/internal/testkit"
)

// fleet opens one store per node on a new PostgreSQL database and registers each node with
// the repositories it deploys.
func fleet(t *testing.T, nodes map[string][]string) map[string]*Store {
	t.Helper()
	url := pgtest.Database(t)
	out := map[string]*Store{}
	for name, repos := range nodes {
		s := openNode(t, url, name)
		if err := s.RegisterNode(context.Background(), name, "test", repos); err != nil {
			t.Fatal(err)
		}
		out[name] = s
	}
	return out
}

func refs(d Delivery) []DeployRef { return d.Deploys }

// TestFanOut: on PostgreSQL a delivery recorded by any node becomes one queued deploy per
// node that deploys its repository, coalesced per node; deploy_id names the receiving
// node's own when it deploys the repository; each node claims only its own deploys.
func TestFanOut(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, map[string][]string{"web1": {"site"}, "web2": {"site", "blog"}, "web3": {"blog"}})
	web1, web2, web3 := f["web1"], f["web2"], f["web3"]

	first := push("site", "g1")
	if err := web1.RecordDelivery(ctx, first); err != nil {
		t.Fatal(err)
	}
	// Received by a node that does not deploy site: it still fans out to web1 and web2.
	second := push("site", "g2")
	if err := web3.RecordDelivery(ctx, second); err != nil {
		t.Fatal(err)
	}
	if first.Status != DeliveryAccepted || second.Status != DeliveryAccepted {
		t.Fatalf("statuses %s, %s", first.Status, second.Status)
	}
	got1, err := web3.Delivery(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	got2, err := web1.Delivery(ctx, second.ID)
	if err != nil {
		t.Fatal(err)
	}
	nodesOf := func(d Delivery) []string {
		var out []string
		for _, r := range d.Deploys {
			out = append(out, r.Node)
		}
		return out
	}
	if n := nodesOf(got1); !slices.Equal(n, []string{"web1", "web2"}) {
		t.Fatalf("first delivery's deploys on %v, want web1 and web2: %+v", n, refs(got1))
	}
	// Coalesced per node: the second push joined the same two deploys.
	if !slices.Equal(refs(got1), refs(got2)) {
		t.Fatalf("second delivery's deploys %+v, want the first's %+v", refs(got2), refs(got1))
	}
	if got1.DeployID != got1.Deploys[0].ID || got1.DeployNode != "web1" {
		t.Fatalf("deploy_id %d (node %q): want web1's own deploy %d", got1.DeployID, got1.DeployNode, got1.Deploys[0].ID)
	}
	web2Deploy := got1.Deploys[1].ID

	// Each node claims its own: web3 has nothing of site, web2 claims exactly its deploy.
	if _, err := web3.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("web3 claimed a deploy of site: %v", err)
	}
	dp, err := web2.ClaimDeploy(ctx, "site")
	if err != nil || dp.ID != web2Deploy {
		t.Fatalf("web2's claim: %+v %v, want deploy %d", dp, err, web2Deploy)
	}
	full, err := web2.Deploy(ctx, dp.ID)
	if err != nil || !slices.Equal(full.DeliveryIDs, []int64{first.ID, second.ID}) {
		t.Fatalf("web2's deploy lists deliveries %v (%v), want both", full.DeliveryIDs, err)
	}
	if _, err := web2.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("web2 claimed twice: %v", err)
	}
	// A push while web2 runs: web2 gets a new queued deploy, web1 keeps its queued one.
	third := push("site", "g3")
	if err := web2.RecordDelivery(ctx, third); err != nil {
		t.Fatal(err)
	}
	got3, err := web2.Delivery(ctx, third.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got3.Deploys[0].ID != got1.Deploys[0].ID || got3.Deploys[1].ID == web2Deploy || got3.DeployNode != "web2" {
		t.Fatalf("third delivery's deploys %+v (deploy_id %d on %s)", refs(got3), got3.DeployID, got3.DeployNode)
	}
	// One deploy at a time per node and repository: web2's new queued deploy waits.
	if _, err := web2.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("web2 claimed a second deploy of site while one runs: %v", err)
	}
	// web1 restarting interrupts nothing of web2's.
	if repos, err := web1.InterruptRunning(ctx, "restart"); err != nil || len(repos) != 0 {
		t.Fatalf("web1's restart re-queued %v (%v)", repos, err)
	}
	if dp, err := web1.Deploy(ctx, web2Deploy); err != nil || dp.Status != DeployRunning {
		t.Fatalf("web2's deploy after web1's restart: %s %v", dp.Status, err)
	}
	// The history's deploy-status filter finds a delivery by any node's deploy.
	running, err := web1.ListDeliveries(ctx, DeliveryFilter{Status: DeployRunning})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range running {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []int64{second.ID, first.ID}) {
		t.Fatalf("deliveries with a running deploy: %v, want %d and %d", ids, second.ID, first.ID)
	}
	// web2 restarting interrupts its own and queues it again on web2 only; the pushes
	// waiting there join the recovery.
	repos, err := web2.InterruptRunning(ctx, "crashed")
	if err != nil || !slices.Equal(repos, []string{"site"}) {
		t.Fatalf("web2's restart re-queued %v (%v)", repos, err)
	}
	if q, err := web2.QueuedRepos(ctx); err != nil || !slices.Equal(q, []string{"site"}) {
		t.Fatalf("web2's queue: %v %v", q, err)
	}
	if q, err := web3.QueuedRepos(ctx); err != nil || len(q) != 0 {
		t.Fatalf("web3's queue: %v %v", q, err)
	}
}

// TestFanOutEdges: a redelivery deploys again only where the earlier copy's deploy did not
// succeed; a repository no node deploys is recorded as ignored; a manual deploy and a
// rollback reach every node; a pin holds every node.
func TestFanOutEdges(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, map[string][]string{"web1": {"site"}, "web2": {"site"}})
	web1, web2 := f["web1"], f["web2"]

	d := push("site", "g1")
	if err := web1.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	deployTo(t, web1, "site", "c1", DeploySucceeded)
	deployTo(t, web2, "site", "c1", DeployFailed)
	again := push("site", "g1")
	if err := web2.RecordDelivery(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := web2.Delivery(ctx, again.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Redelivery || got.Status != DeliveryAccepted || len(got.Deploys) != 1 || got.Deploys[0].Node != "web2" {
		t.Fatalf("redelivery: %s redelivery=%v deploys %+v; want accepted, deployed on web2 only", got.Status, got.Redelivery, got.Deploys)
	}
	deployTo(t, web2, "site", "c1", DeploySucceeded)
	third := push("site", "g1")
	if err := web1.RecordDelivery(ctx, third); err != nil {
		t.Fatal(err)
	}
	if third.Status != DeliveryIgnored || third.DeployID != 0 {
		t.Fatalf("a redelivery deployed everywhere: %s deploy %d (%s)", third.Status, third.DeployID, third.Reason)
	}

	nobody := push("docs", "g-docs")
	if err := web1.RecordDelivery(ctx, nobody); err != nil {
		t.Fatal(err)
	}
	if nobody.Status != DeliveryIgnored || nobody.HTTPStatus != 200 || nobody.Reason != noTargetsReason {
		t.Fatalf("a repository no node deploys: %s %d %q", nobody.Status, nobody.HTTPStatus, nobody.Reason)
	}
	if _, err := web1.EnqueueManual(ctx, "docs"); !errors.Is(err, ErrNoNode) {
		t.Fatalf("manual deploy of a repository no node deploys: %v", err)
	}

	manual, err := web2.EnqueueManual(ctx, "site")
	if err != nil || manual.Node != "web2" {
		t.Fatalf("manual deploy: %+v %v; want web2's own", manual, err)
	}
	for _, s := range []*Store{web1, web2} {
		if q, err := s.QueuedRepos(ctx); err != nil || !slices.Equal(q, []string{"site"}) {
			t.Fatalf("%s's queue after a manual deploy: %v %v", s.node, q, err)
		}
	}
	rb, err := web1.EnqueueRollback(ctx, "site", "c0", "back")
	if err != nil || rb.Node != "web1" || rb.Target != "c0" {
		t.Fatalf("rollback: %+v %v", rb, err)
	}
	for _, s := range []*Store{web1, web2} {
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil || dp.Target != "c0" || dp.Trigger != TriggerRollback {
			t.Fatalf("%s's claim after the rollback: %+v %v; want the rollback to c0", s.node, dp, err)
		}
	}
	pinned := push("site", "g-pinned")
	if err := web2.RecordDelivery(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	if pinned.Status != DeliveryIgnored {
		t.Fatalf("a push while pinned: %s", pinned.Status)
	}
}

// TestSQLiteDeploysOnlyItself: a SQLite file has one gateway: a node registered in it under
// an earlier name is not running, so no deploy waits for it.
func TestSQLiteDeploysOnlyItself(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/hookgate.db"
	old := openNode(t, path, "oldname")
	if err := old.RegisterNode(ctx, "oldname", "test", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s := openNode(t, path, "newname")
	if err := s.RegisterNode(ctx, "newname", "test", []string{"site"}); err != nil {
		t.Fatal(err)
	}
	d := push("site", "g1")
	if err := s.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Delivery(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Deploys) != 1 || got.Deploys[0].Node != "newname" {
		t.Fatalf("deploys %+v, want newname's only", got.Deploys)
	}
}

// TestReconcileCatchesUpALateNode: a node with nothing deployed and no checkout queues a
// reconcile deploy when another node has deployed the repository; alone it does not.
func TestReconcileCatchesUpALateNode(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, map[string][]string{"web1": {"site"}, "web2": {"site"}})
	web1, web2 := f["web1"], f["web2"]
	why := func(live string) string { return "catch up" }
	if d, err := web2.Reconcile(ctx, "site", "c1", "", why); err != nil || d.DeployID != 0 {
		t.Fatalf("nothing deployed anywhere: %+v %v; want nothing queued", d, err)
	}
	if _, err := web1.EnqueueManual(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	deployTo(t, web1, "site", "c1", DeploySucceeded)
	// web2's deploy (queued by the manual deploy) is dropped as if web2 joined later.
	if _, err := web2.wdb.ExecContext(ctx, `DELETE FROM deploys WHERE node = 'web2'`); err != nil {
		t.Fatal(err)
	}
	d, err := web2.Reconcile(ctx, "site", "c1", "", why)
	if err != nil || d.DeployID == 0 {
		t.Fatalf("web2 joining late: %+v %v; want a reconcile deploy", d, err)
	}
	dp, err := web2.ClaimDeploy(ctx, "site")
	if err != nil || dp.ID != d.DeployID || dp.Trigger != TriggerReconcile {
		t.Fatalf("web2's claim: %+v %v", dp, err)
	}
	if d, err := web1.Reconcile(ctx, "site", "c1", "", why); err != nil || d.DeployID != 0 || d.Live != "c1" {
		t.Fatalf("web1 in sync: %+v %v", d, err)
	}
}

// TestWatchQueue: a node hears of a deploy another node queued for it through LISTEN/NOTIFY
// at once, and of one queued without a notification through its poll.
func TestWatchQueue(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, map[string][]string{"web1": {"site"}, "web2": {"site", "blog"}})
	web1, web2 := f["web1"], f["web2"]
	var mu sync.Mutex
	woken := map[string]int{}
	wake := func(repo string) {
		mu.Lock()
		woken[repo]++
		mu.Unlock()
	}
	count := func(repo string) int {
		mu.Lock()
		defer mu.Unlock()
		return woken[repo]
	}
	web2.OnQueued(wake)
	reconciled := make(chan string, 10)
	watch := func(every time.Duration) (stop func()) {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			web2.WatchQueue(wctx, every, Watch{Reconcile: func(repo string) { reconciled <- repo }}, slog.Default())
		}()
		stop = func() {
			cancel()
			<-done
		}
		t.Cleanup(stop)
		return stop
	}
	// An hour between polls: only a notification can wake web2 once its listener is up and
	// has read the (empty) queue. web2 hears a reconcile notification only from inside its
	// listening loop, after that first read: pin and unpin until it does, so that the
	// deploy queued next can reach it by its notification alone, not by the first read.
	stop := watch(time.Hour)
	testkit.Eventually(t, 20*time.Second, "web2's listener to hear web1", func() bool {
		if _, err := web1.SetPin(ctx, "site", "c0", PinnedByPin); err != nil {
			t.Fatal(err)
		}
		if _, err := web1.Unpin(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-reconciled:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	for len(reconciled) > 0 {
		<-reconciled
	}
	if n := count("site"); n != 0 {
		t.Fatalf("web2 woken %d times for site before anything was queued", n)
	}
	if err := web1.RecordDelivery(ctx, push("site", "")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "web2 to hear of a deploy web1 queued", func() bool { return count("site") > 0 })
	if count("blog") != 0 {
		t.Fatal("web2 woken for blog, which nothing queued")
	}
	// web1 lifts site's pin: web2 is told to reconcile site.
	if _, err := web1.SetPin(ctx, "site", "c1", PinnedByPin); err != nil {
		t.Fatal(err)
	}
	if was, err := web1.Unpin(ctx, "site"); err != nil || !was {
		t.Fatalf("unpin: %v %v", was, err)
	}
	select {
	case repo := <-reconciled:
		if repo != "site" {
			t.Fatalf("told to reconcile %q, want site", repo)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("web2 was not told to reconcile site after web1 unpinned it")
	}
	stop()

	// Polling every 50 ms. Its first read of the queue finds site's deploy; after that a
	// deploy queued behind its back (no notification) is found by a later poll.
	before := count("site")
	watch(50 * time.Millisecond)
	testkit.Eventually(t, 20*time.Second, "web2's first poll", func() bool { return count("site") > before })
	if _, err := web1.wdb.ExecContext(ctx, `INSERT INTO deploys (repo, status, triggered_by, queued_at, node)
		VALUES ('blog', 'queued', 'manual', now(), 'web2')`); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "web2's poll to find blog's deploy", func() bool { return count("blog") > 0 })
}

// TestPreviousOutcomeIsPerNode: whether a success is a recovery is asked of the node that
// ran it: web2's first success after web1's failure is not one; web1's next success is.
func TestPreviousOutcomeIsPerNode(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, map[string][]string{"web1": {"site"}, "web2": {"site"}})
	web1, web2 := f["web1"], f["web2"]
	if _, err := web1.EnqueueManual(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	deployTo(t, web1, "site", "c1", DeployFailed)
	ok2 := deployTo(t, web2, "site", "c1", DeploySucceeded)
	if prev, err := web2.PreviousOutcome(ctx, "site", ok2.ID); err != nil || prev != "" {
		t.Fatalf("before web2's success: %q %v, want nothing (web1's failure is not web2's)", prev, err)
	}
	if _, err := web1.EnqueueManual(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	ok1 := deployTo(t, web1, "site", "c1", DeploySucceeded)
	if prev, err := web1.PreviousOutcome(ctx, "site", ok1.ID); err != nil || prev != DeployFailed {
		t.Fatalf("before web1's success: %q %v, want its failure", prev, err)
	}
}

// TestRemoveNode: a node that is down can be taken out of the fleet: its waiting and stale
// running deploys end as interrupted, and deliveries stop queueing deploys for it. A node
// that is up is refused.
func TestRemoveNode(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, map[string][]string{"web1": {"site"}, "web2": {"site"}})
	web1, web2 := f["web1"], f["web2"]
	if _, err := web1.RemoveNode(ctx, "web2"); !errors.Is(err, ErrNodeUp) {
		t.Fatalf("removing a node that is up: %v", err)
	}
	if _, err := web1.RemoveNode(ctx, "web9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing an unknown node: %v", err)
	}
	if _, err := web1.EnqueueManual(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	running, err := web2.ClaimDeploy(ctx, "site") // web2 goes down during it
	if err != nil {
		t.Fatal(err)
	}
	queued := push("site", "g1")
	if err := web1.RecordDelivery(ctx, queued); err != nil {
		t.Fatal(err)
	}
	got, err := web1.Delivery(ctx, queued.ID)
	if err != nil || len(got.Deploys) != 2 {
		t.Fatalf("before the removal: %+v %v", got.Deploys, err)
	}
	waiting := got.Deploys[1].ID
	// Silent for a little less than three heartbeats: still up, so not removable.
	almost := time.Now().Add(3*HeartbeatEvery - 5*time.Second)
	web1.SetNow(func() time.Time { return almost })
	if _, err := web1.RemoveNode(ctx, "web2"); !errors.Is(err, ErrNodeUp) {
		t.Fatalf("removing a node silent for %s: %v, want ErrNodeUp", 3*HeartbeatEvery-5*time.Second, err)
	}
	later := time.Now().Add(4 * HeartbeatEvery)
	web1.SetNow(func() time.Time { return later })
	ids, err := web1.RemoveNode(ctx, "web2")
	if err != nil || !slices.Equal(ids, []int64{running.ID, waiting}) {
		t.Fatalf("removed web2: ended %v (%v), want %d and %d", ids, err, running.ID, waiting)
	}
	for _, id := range ids {
		dp, err := web1.Deploy(ctx, id)
		if err != nil || dp.Status != DeployInterrupted || !strings.Contains(dp.Error, "web2 was removed") {
			t.Fatalf("deploy %d after the removal: %s %q %v", id, dp.Status, dp.Error, err)
		}
	}
	after := push("site", "g2")
	if err := web1.RecordDelivery(ctx, after); err != nil {
		t.Fatal(err)
	}
	got, err = web1.Delivery(ctx, after.ID)
	if err != nil || len(got.Deploys) != 1 || got.Deploys[0].Node != "web1" {
		t.Fatalf("a push after the removal: deploys %+v (%v), want web1's only", got.Deploys, err)
	}
	nodes, err := web1.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Name != "web1" {
		t.Fatalf("nodes after the removal: %+v %v", nodes, err)
	}
}
