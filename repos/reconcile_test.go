package repos

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

func (e *workerEnv) deploysOf(t *testing.T, trigger string) []store.Deploy {
	t.Helper()
	dps, err := e.store.ListDeploys(context.Background(), store.DeployFilter{Repo: "site", Trigger: trigger})
	if err != nil {
		t.Fatal(err)
	}
	return dps
}

func TestReconcileDeploysAMissedPushAndAttemptsAFailingHeadOnce(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	live := testkit.CheckoutHead(t, e.checkout)
	env := filepath.Join(t.TempDir(), "env")
	m := e.manager(t, 1, Repo{
		Spec:     checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{"test ! -f fail.txt", "echo $HOOKGATE_TRIGGER > " + env},
	})
	w := m.workers["site"]

	// In sync before any deploy: the checkout's HEAD stands for live.
	c, err := m.Reconcile(ctx, "site")
	if err != nil || c.Result != CheckInSync || c.DeployID != 0 || c.Origin != live {
		t.Fatalf("in sync: %+v, %v", c, err)
	}

	// Two pushes nobody delivered.
	e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	head := e.origin.Commit(map[string]string{"app.txt": "v3\n"}, "v3")
	c, err = m.Reconcile(ctx, "site")
	if err != nil || c.Result != CheckDeployed || c.DeployID == 0 {
		t.Fatalf("drift: %+v, %v", c, err)
	}
	want := "origin main at " + head[:7] + ", live " + live[:7] + ": a push was not delivered"
	if dp := e.deploy(t, c.DeployID); dp.Trigger != store.TriggerReconcile || dp.Reason != want {
		t.Fatalf("reconcile deploy: trigger %q reason %q; want reason %q", dp.Trigger, dp.Reason, want)
	}
	if !w.runOnce() {
		t.Fatal("the reconcile deploy was not claimed")
	}
	if dp := e.deploy(t, c.DeployID); dp.Status != store.DeploySucceeded || dp.ToCommit != head || testkit.CheckoutHead(t, e.checkout) != head {
		t.Fatalf("reconcile deploy: %+v", dp)
	}
	if got := readFile(t, env); got != "reconcile\n" {
		t.Fatalf("HOOKGATE_TRIGGER = %q", got)
	}
	if st := m.OriginState("site"); st.Commit != head || st.CheckedAt.IsZero() || st.Error != "" {
		t.Fatalf("origin state: %+v", st)
	}

	// A head whose deploy fails is attempted once, however often origin is checked.
	bad := e.origin.Commit(map[string]string{"fail.txt": "x\n"}, "breaks the deploy")
	if c, err = m.Reconcile(ctx, "site"); err != nil || c.Result != CheckDeployed {
		t.Fatalf("bad head: %+v, %v", c, err)
	}
	w.runOnce()
	if dp := e.deploy(t, c.DeployID); dp.Status != store.DeployFailed || dp.ToCommit != bad {
		t.Fatalf("failing deploy: %+v", dp)
	}
	for range 3 {
		if c, err = m.Reconcile(ctx, "site"); err != nil || c.Result != CheckDrift || c.DeployID != 0 {
			t.Fatalf("failed head checked again: %+v, %v", c, err)
		}
		if w.runOnce() {
			t.Fatal("a failed head was deployed again")
		}
	}
	if n := len(e.deploysOf(t, store.TriggerReconcile)); n != 2 {
		t.Fatalf("%d reconcile deploys, want 2", n)
	}

	// A rollback pins: reconcile then queues nothing, and the commands see the trigger.
	if _, err := e.store.EnqueueRollback(ctx, "site", live, "rollback"); err != nil {
		t.Fatal(err)
	}
	w.runOnce()
	if testkit.CheckoutHead(t, e.checkout) != live || readFile(t, env) != "rollback\n" {
		t.Fatalf("rollback: HEAD %s, trigger %q", testkit.CheckoutHead(t, e.checkout), readFile(t, env))
	}
	fixed := e.origin.Commit(map[string]string{"fail.txt": ""}, "fix")
	if c, err = m.Reconcile(ctx, "site"); err != nil || c.Result != CheckDrift || !strings.HasPrefix(c.Reason, "pinned at "+live[:7]) {
		t.Fatalf("pinned: %+v, %v", c, err)
	}
	if _, err := e.store.Unpin(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	if c, err = m.Reconcile(ctx, "site"); err != nil || c.Result != CheckDeployed {
		t.Fatalf("after unpin: %+v, %v", c, err)
	}
	w.runOnce()
	if testkit.CheckoutHead(t, e.checkout) != fixed {
		t.Fatal("unpin and reconcile did not deploy origin's head")
	}
}

func TestReconcileLookUpError(t *testing.T) {
	e := newWorkerEnv(t)
	testkit.Git(t, e.checkout, "remote", "set-url", "origin", filepath.Join(t.TempDir(), "gone.git"))
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}})
	if _, err := m.Reconcile(context.Background(), "site"); err == nil {
		t.Fatal("a look-up of a missing origin succeeded")
	}
	if st := m.OriginState("site"); st.Error == "" || st.Commit != "" || st.CheckedAt.IsZero() {
		t.Fatalf("origin state after a failed look-up: %+v", st)
	}
	if _, err := m.Reconcile(context.Background(), "nope"); err == nil {
		t.Fatal("an unknown repository reconciled")
	}
}

// TestPollReconcilesAtStartAndEveryInterval runs the real loops: a push made while
// nothing listened is deployed by the start-up check, and a failing head is attempted
// once across many polls.
func TestPollReconcilesAtStartAndEveryInterval(t *testing.T) {
	e := newWorkerEnv(t)
	head := e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	var mu sync.Mutex
	checks := map[string]int{}
	total := 0
	m := NewManager(e.store, []Repo{{
		Spec:     checkout.Spec{Name: "site", Path: e.checkout, Branch: "main"},
		Commands: []string{"test ! -f fail.txt"},
		Timeout:  time.Minute,
		Poll:     20 * time.Millisecond,
	}}, Options{
		Env:    []string{"PATH=" + os.Getenv("PATH")},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnOriginCheck: func(repo, result string) {
			mu.Lock()
			checks[result]++
			total++
			mu.Unlock()
		},
	})
	e.store.OnQueued(m.Wake) // as gateway.New wires it
	m.Start()
	defer m.Stop(time.Minute)
	testkit.Eventually(t, 20*time.Second, "the start-up check deploys origin's head", func() bool {
		st, err := e.store.RepoState(context.Background(), "site")
		return err == nil && st.LastOK != nil && st.LastOK.ToCommit == head
	})
	bad := e.origin.Commit(map[string]string{"fail.txt": "x\n"}, "breaks the deploy")
	testkit.Eventually(t, 20*time.Second, "the failing head is attempted", func() bool {
		st, err := e.store.RepoState(context.Background(), "site")
		return err == nil && st.Last != nil && st.Last.ToCommit == bad && st.Last.Status == store.DeployFailed
	})
	mu.Lock()
	after := total
	mu.Unlock()
	testkit.Eventually(t, 20*time.Second, "ten more checks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total >= after+10
	})
	if n := len(e.deploysOf(t, store.TriggerReconcile)); n != 2 {
		t.Fatalf("%d reconcile deploys after many polls, want 2 (v2 once, the failing head once)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if checks[CheckDeployed] != 2 || checks[CheckDrift] < 10 {
		t.Fatalf("checks by result: %v", checks)
	}
}

// A deploy that fails before HEAD moves (here: a local modification in ff mode) records
// the head it was for, so that head is not queued again on every poll either.
func TestReconcileAttemptsAHeadWhoseUpdateFailsOnce(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}})
	w := m.workers["site"]
	if err := os.WriteFile(filepath.Join(e.checkout, "README.md"), []byte("edited on the server\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := e.origin.Commit(map[string]string{"README.md": "v2\n"}, "v2")
	c, err := m.Reconcile(ctx, "site")
	if err != nil || c.Result != CheckDeployed {
		t.Fatalf("drift: %+v, %v", c, err)
	}
	w.runOnce()
	if dp := e.deploy(t, c.DeployID); dp.Status != store.DeployFailed || dp.ToCommit != head {
		t.Fatalf("refused update: status %s to %s; want failed to %s", dp.Status, dp.ToCommit, head)
	}
	if c, err = m.Reconcile(ctx, "site"); err != nil || c.Result != CheckDrift {
		t.Fatalf("checked again: %+v, %v", c, err)
	}
}

// originChecks runs a manager over e's site with the given poll interval and counts its
// look-ups of origin by result.
func (e *workerEnv) originChecks(t *testing.T, poll time.Duration) (*Manager, func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	checks := map[string]int{}
	m := NewManager(e.store, []Repo{{
		Spec:    checkout.Spec{Name: "site", Path: e.checkout, Branch: "main"},
		Timeout: time.Minute,
		Poll:    poll,
	}}, Options{
		Env:    []string{"PATH=" + os.Getenv("PATH")},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnOriginCheck: func(repo, result string) {
			mu.Lock()
			checks[result]++
			mu.Unlock()
		},
	})
	return m, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(checks)
	}
}

// waitStartedUp waits until every start-up look-up of m's workers is over.
func waitStartedUp(t *testing.T, m *Manager) {
	t.Helper()
	select {
	case <-m.startedUp:
	case <-time.After(30 * time.Second):
		t.Fatal("the start-up look-ups of origin did not end in 30 s")
	}
}

// TestStartUpCheckIsAtStart: with an hour between polls, origin is still looked up once
// when the worker starts (a push made while the gateway was down is found then), not only
// after the first interval.
func TestStartUpCheckIsAtStart(t *testing.T) {
	e := newWorkerEnv(t)
	e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "pushed while the gateway was down")
	m, checks := e.originChecks(t, time.Hour)
	m.Start()
	defer m.Stop(time.Minute)
	waitStartedUp(t, m)
	if got := checks(); got[CheckDeployed] != 1 || len(got) != 1 {
		t.Fatalf("look-ups of origin by the end of start-up: %v; want one that queued a deploy", got)
	}
}

// TestPollZeroNeverLooksOriginUp: poll = "0" turns the periodic look-up off, the one at
// start included.
func TestPollZeroNeverLooksOriginUp(t *testing.T) {
	e := newWorkerEnv(t)
	e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "pushed while the gateway was down")
	m, checks := e.originChecks(t, 0)
	m.Start()
	waitStartedUp(t, m)
	m.Stop(time.Minute) // waits for a look-up under way, if one were
	if got := checks(); len(got) != 0 {
		t.Fatalf("poll 0 looked origin up: %v", got)
	}
	if dps := e.deploysOf(t, store.TriggerReconcile); len(dps) != 0 {
		t.Fatalf("poll 0 queued %d reconcile deploys", len(dps))
	}
}
