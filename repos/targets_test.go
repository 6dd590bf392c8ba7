package repos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// queueRef records an accepted push of ref for repo, as the hook endpoint would.
func (e *workerEnv) queueRef(t *testing.T, repo, guid, ref string) int64 {
	t.Helper()
	d := &store.Delivery{GUID: guid, Repo: repo, Event: "push", Ref: ref,
		Signature: store.SignatureValid, Status: store.DeliveryAccepted, HTTPStatus: 202}
	if err := e.store.RecordDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if d.DeployID == 0 {
		t.Fatalf("push of %s joined no deploy", ref)
	}
	return d.DeployID
}

// TestTagTargetDeploysThePeeledCommit: a tag target's deploy of refs/tags/NAME leaves
// the checkout at the commit the tag points to (an annotated tag peeled), not at the
// branch's head, and its commands see the tag as HOOKGATE_REF; a manual deploy goes to
// origin's newest matching tag; a rollback goes back to an earlier tag's commit.
func TestTagTargetDeploysThePeeledCommit(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	one := e.origin.Commit(map[string]string{"app.txt": "v1\n"}, "v1")
	e.origin.Tag("v1.0.0", one)
	two := e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	if obj := e.origin.AnnotatedTag("v1.1.0", two, "release 1.1"); obj == two {
		t.Fatal("the annotated tag is its commit")
	}
	e.origin.Commit(map[string]string{"app.txt": "v3 untagged\n"}, "v3 on main")
	env := filepath.Join(t.TempDir(), "ref")
	m := e.manager(t, 1, Repo{
		Spec:     checkout.Spec{Name: "prod", Path: e.checkout},
		Tags:     "v*",
		Commands: []string{"echo $HOOKGATE_REF $HOOKGATE_COMMIT > " + env},
	})
	w := m.workers["prod"]
	for _, c := range []struct{ tag, commit string }{{"v1.0.0", one}, {"v1.1.0", two}} {
		id := e.queueRef(t, "prod", "g-"+c.tag, "refs/tags/"+c.tag)
		w.runOnce()
		dp := e.deploy(t, id)
		if dp.Status != store.DeploySucceeded || dp.FromCommit == "" || dp.ToCommit != c.commit || testkit.CheckoutHead(t, e.checkout) != c.commit {
			t.Fatalf("%s: %+v, HEAD %s; want %s", c.tag, dp, testkit.CheckoutHead(t, e.checkout), c.commit)
		}
		if got := readFile(t, env); got != "refs/tags/"+c.tag+" "+c.commit+"\n" {
			t.Fatalf("%s: the commands saw %q", c.tag, got)
		}
	}
	if got := readFile(t, filepath.Join(e.checkout, "app.txt")); got != "v2\n" {
		t.Fatalf("app.txt = %q at v1.1.0", got)
	}

	// Pushes of v1.1.1, v1.2.0 and v1.1.2 (hotfixes) while the deploy waits: one deploy,
	// of the highest version, neither the first push's tag nor the last's.
	three := e.origin.Commit(map[string]string{"app.txt": "v1.2\n"}, "1.2")
	e.origin.Tag("v1.2.0", three)
	e.origin.Tag("v1.1.1", two)
	e.origin.Tag("v1.1.2", two)
	id := e.queueRef(t, "prod", "g-v1.1.1", "refs/tags/v1.1.1")
	for _, tag := range []string{"v1.2.0", "v1.1.2"} {
		if joined := e.queueRef(t, "prod", "g-"+tag, "refs/tags/"+tag); joined != id {
			t.Fatalf("the push of %s queued deploy %d, not joined %d", tag, joined, id)
		}
	}
	w.runOnce()
	if dp := e.deploy(t, id); dp.Status != store.DeploySucceeded || dp.ToCommit != three || !strings.Contains(dp.Log, "tag v1.2.0") {
		t.Fatalf("coalesced tag pushes: %+v; want v1.2.0 at %s", dp, three)
	}
	if _, ref, err := e.store.LiveDeploy(ctx, "prod"); err != nil || ref != "refs/tags/v1.2.0" {
		t.Fatalf("live tag %q, %v; want the tag deployed, refs/tags/v1.2.0, not the first push's", ref, err)
	}
	if w.runOnce() {
		t.Fatal("a second deploy for the coalesced pushes")
	}

	// A rollback to v1.0.0's commit, then a manual deploy: origin's newest tag.
	rb, err := e.store.EnqueueRollback(ctx, "prod", one, "rollback")
	if err != nil {
		t.Fatal(err)
	}
	w.runOnce()
	if testkit.CheckoutHead(t, e.checkout) != one {
		t.Fatalf("rollback: HEAD %s; want %s\n%+v", testkit.CheckoutHead(t, e.checkout), one, e.deploy(t, rb.ID))
	}
	if _, err := e.store.Unpin(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	dp, err := e.store.EnqueueManual(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	w.runOnce()
	if got := e.deploy(t, dp.ID); got.Status != store.DeploySucceeded || got.ToCommit != three || !strings.Contains(got.Log, "tag v1.2.0") {
		t.Fatalf("manual deploy: %+v; want origin's newest tag v1.2.0 at %s", got, three)
	}
}

// TestPathsTargetSkipsWhatItDoesNotWatch: a target with paths deploys its first push
// (nothing live), skips a push that changes nothing under its paths (reason naming the
// patterns and the live commit, checkout untouched, no command run, not live), and deploys
// a push under them, diffing from the live commit rather than the skipped one.
func TestPathsTargetSkipsWhatItDoesNotWatch(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "ran")
	m := e.manager(t, 1, Repo{
		Spec:     checkout.Spec{Name: "docs", Path: e.checkout},
		Paths:    []string{"docs/**", "go.mod"},
		Commands: []string{"echo ran >> " + marker},
	})
	w := m.workers["docs"]

	first := e.origin.Commit(map[string]string{"src/main.go": "package main\n"}, "src, nothing live yet")
	id := e.queueRef(t, "docs", "g1", "refs/heads/main")
	w.runOnce()
	if dp := e.deploy(t, id); dp.Status != store.DeploySucceeded || testkit.CheckoutHead(t, e.checkout) != first {
		t.Fatalf("first deploy with nothing live: %+v", dp)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatalf("the first deploy ran no command: %v", err)
	}

	src := e.origin.Commit(map[string]string{"src/main.go": "package main // 2\n", "docs.txt": "not docs/\n"}, "src only")
	id = e.queueRef(t, "docs", "g2", "refs/heads/main")
	w.runOnce()
	dp := e.deploy(t, id)
	want := "no change under docs/**, go.mod since live " + first[:7]
	if dp.Status != store.DeploySkipped || dp.Reason != want || dp.Error != "" || dp.FromCommit != first || dp.ToCommit != src {
		t.Fatalf("src-only push: %+v; want skipped with reason %q", dp, want)
	}
	if head := testkit.CheckoutHead(t, e.checkout); head != first {
		t.Fatalf("a skipped deploy moved HEAD to %s", head)
	}
	if _, err := os.Stat(filepath.Join(e.checkout, "docs.txt")); err == nil {
		t.Fatal("a skipped deploy wrote the work tree")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a skipped deploy ran its commands")
	}
	if live, _, err := e.store.LiveDeploy(ctx, "docs"); err != nil || live != first {
		t.Fatalf("live after the skip: %s %v; want %s", live, err, first)
	}

	// The next push changes docs/: diffed from live, it deploys, the skipped change too.
	docs := e.origin.Commit(map[string]string{"docs/guide/intro.md": "hello\n"}, "docs")
	id = e.queueRef(t, "docs", "g3", "refs/heads/main")
	w.runOnce()
	if dp := e.deploy(t, id); dp.Status != store.DeploySucceeded || dp.ToCommit != docs || readFile(t, marker) != "ran\n" {
		t.Fatalf("docs push: %+v", dp)
	}
	if got := readFile(t, filepath.Join(e.checkout, "docs.txt")); got != "not docs/\n" {
		t.Fatalf("docs.txt = %q; want the skipped commit's change deployed with the next", got)
	}
}

// TestReconcileTagTargetPicksTheNewestVersion: reconcile of a tag target compares origin's
// newest matching tag by semantic version (v1.10.0 over v1.9.0, whatever the order they
// were made in) with the live commit and queues a deploy of refs/tags/v1.10.0.
func TestReconcileTagTargetPicksTheNewestVersion(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	ten := e.origin.Commit(map[string]string{"app.txt": "1.10\n"}, "1.10")
	e.origin.AnnotatedTag("v1.10.0", ten, "1.10")
	nine := e.origin.Commit(map[string]string{"app.txt": "1.9 (a backport, made later)\n"}, "1.9")
	e.origin.Tag("v1.9.0", nine)
	e.origin.Tag("other-1.99.0", nine) // does not match the glob
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "prod", Path: e.checkout}, Tags: "v*"})
	if _, err := e.store.EnqueueManual(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	m.workers["prod"].runOnce() // live: origin's newest tag
	if head := testkit.CheckoutHead(t, e.checkout); head != ten {
		t.Fatalf("manual deploy of a tag target: HEAD %s; want v1.10.0 at %s", head, ten)
	}
	c, err := m.Reconcile(ctx, "prod")
	if err != nil || c.Result != CheckInSync || c.Origin != ten || !strings.Contains(c.Reason, "tag v1.10.0") {
		t.Fatalf("in sync at v1.10.0: %+v %v", c, err)
	}

	eleven := e.origin.Commit(map[string]string{"app.txt": "1.11\n"}, "1.11")
	e.origin.AnnotatedTag("v1.11.0-rc.1", eleven, "rc")
	c, err = m.Reconcile(ctx, "prod")
	if err != nil || c.Result != CheckDeployed || c.Origin != eleven {
		t.Fatalf("drift to v1.11.0-rc.1: %+v %v", c, err)
	}
	dp := e.deploy(t, c.DeployID)
	if dp.Ref != "refs/tags/v1.11.0-rc.1" || !strings.Contains(dp.Reason, "origin tag v1.11.0-rc.1 at "+eleven[:7]+", live "+ten[:7]) {
		t.Fatalf("reconcile deploy: ref %q reason %q", dp.Ref, dp.Reason)
	}
	m.workers["prod"].runOnce()
	if head := testkit.CheckoutHead(t, e.checkout); head != eleven {
		t.Fatalf("reconcile deploy: HEAD %s; want %s", head, eleven)
	}
}

// TestReconcileDoesNotRequeueASkippedHead: once origin's head was skipped (paths), the
// polls that follow call it in sync, say why, and queue nothing.
func TestReconcileDoesNotRequeueASkippedHead(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "api", Path: e.checkout}, Paths: []string{"services/api/**"}})
	w := m.workers["api"]
	live := e.origin.Commit(map[string]string{"services/api/main.go": "package main\n"}, "api")
	e.queueRef(t, "api", "g1", "refs/heads/main")
	w.runOnce()
	head := e.origin.Commit(map[string]string{"services/web/main.go": "package main\n"}, "web only")
	c, err := m.Reconcile(ctx, "api")
	if err != nil || c.Result != CheckDeployed {
		t.Fatalf("a missed push: %+v %v", c, err)
	}
	w.runOnce()
	if dp := e.deploy(t, c.DeployID); dp.Status != store.DeploySkipped {
		t.Fatalf("reconcile deploy of a web-only change: %+v; want skipped", dp)
	}
	for range 3 {
		c, err = m.Reconcile(ctx, "api")
		if err != nil || c.Result != CheckInSync || c.DeployID != 0 ||
			!strings.Contains(c.Reason, "changed nothing under paths since live "+live[:7]) || !strings.Contains(c.Reason, head[:7]) {
			t.Fatalf("after the skip: %+v %v; want in sync, nothing queued", c, err)
		}
		if w.runOnce() {
			t.Fatal("a skipped head was deployed again")
		}
	}
}

// TestReconcileOrdersOtherTagsByCommitTime: tags that are not semantic versions are
// ordered by their commits' times, fetched (one commit deep, outside the checkout) when
// the checkout does not have them yet.
func TestReconcileOrdersOtherTagsByCommitTime(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	t.Setenv("GIT_COMMITTER_DATE", "2021-03-01T12:00:00Z")
	newer := e.origin.Commit(map[string]string{"app.txt": "newer\n"}, "made later")
	e.origin.AnnotatedTag("deploy-a", newer, "a")
	testkit.Git(t, e.origin.Seed, "reset", "-q", "--hard", "HEAD~1")
	t.Setenv("GIT_COMMITTER_DATE", "2020-03-01T12:00:00Z")
	older := e.origin.CommitAll("made earlier, on another line")
	e.origin.Tag("deploy-z", older)
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "prod", Path: e.checkout, Mode: checkout.ModeReset}, Tags: "deploy-*"})
	if _, err := e.store.EnqueueManual(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	m.workers["prod"].runOnce()
	if head := testkit.CheckoutHead(t, e.checkout); head != newer {
		t.Fatalf("HEAD %s; want deploy-a's commit %s, the newest by commit time", head, newer)
	}
	if c, err := m.Reconcile(ctx, "prod"); err != nil || c.Result != CheckInSync || !strings.Contains(c.Reason, "tag deploy-a") {
		t.Fatalf("reconcile: %+v %v", c, err)
	}
	if got := testkit.Git(t, e.checkout, "tag"); got != "deploy-a" {
		t.Fatalf("tags in the checkout: %q; want only the deployed one (the look-up fetches elsewhere)", got)
	}
}

// TestTagTargetRecoversAndHoldsItsPin: a tag target's deploy cut off by a shutdown is
// queued again and, with no ref of its own, goes to origin's newest matching tag; a
// rollback's pin holds for such a recovery, which moves to the pinned commit.
func TestTagTargetRecoversAndHoldsItsPin(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	one := e.origin.Commit(map[string]string{"app.txt": "v1\n"}, "v1")
	e.origin.Tag("v1.0.0", one)
	two := e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	e.origin.AnnotatedTag("v1.1.0", two, "1.1")
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "prod", Path: e.checkout}, Tags: "v*"})
	w := m.workers["prod"]

	interrupt := func() {
		t.Helper()
		dp, err := e.store.ClaimDeploy(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.FinishDeploy(ctx, dp.ID, store.Result{Status: store.DeployInterrupted, Error: "shut down"}); err != nil {
			t.Fatal(err)
		}
	}
	e.queueRef(t, "prod", "g1", "refs/tags/v1.0.0")
	interrupt()
	w.runOnce()
	recovered := e.deploysOfRepo(t, "prod", store.TriggerRecovery)
	if len(recovered) != 1 || recovered[0].Status != store.DeploySucceeded || recovered[0].ToCommit != two || recovered[0].Ref != "refs/tags/v1.1.0" {
		t.Fatalf("recovery deploys %+v; want one to origin's newest tag v1.1.0 at %s", recovered, two)
	}

	if _, err := e.store.EnqueueRollback(ctx, "prod", one, "rollback"); err != nil {
		t.Fatal(err)
	}
	interrupt() // the rollback is cut off; its recovery must still go to the pin
	w.runOnce()
	if head := testkit.CheckoutHead(t, e.checkout); head != one {
		t.Fatalf("recovery while pinned at %s: HEAD %s", one[:7], head)
	}
}

func (e *workerEnv) deploysOfRepo(t *testing.T, repo, trigger string) []store.Deploy {
	t.Helper()
	dps, err := e.store.ListDeploys(context.Background(), store.DeployFilter{Repo: repo, Trigger: trigger})
	if err != nil {
		t.Fatal(err)
	}
	return dps
}
