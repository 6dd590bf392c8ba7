package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestWaitingForChecks: a push to a target that requires checks is recorded waiting, not
// queued, with its commit, and no worker can claim it; the same commit again joins it; a
// newer commit supersedes it; passing queues it moving to exactly its commit (superseding
// an older green deploy still queued); failing ends it failed; every change writes its
// report in its own transaction; pins and manual deploys do not wait. Both engines.
func TestWaitingForChecks(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		ctx := context.Background()
		st := openAt(t, newDatabase(), WithNode("web1"))
		at := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
		st.SetNow(func() time.Time { return at })
		if err := st.RegisterNode(ctx, "web1", "test", []string{"site"}); err != nil {
			t.Fatal(err)
		}
		st.SetReporting([]string{"site"})
		st.SetRequireChecks([]string{"site"})
		var woken []string
		st.OnQueued(func(repo string) { woken = append(woken, repo) })
		const c1, c2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"

		record := func(guid, after string) int64 {
			t.Helper()
			d := push("site", guid)
			d.After, d.Commit = after, after[:7]
			if err := st.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
			return d.DeployID
		}
		status := func(id int64) Deploy {
			t.Helper()
			dp, err := st.Deploy(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return dp
		}

		first := record("g1", c1)
		if dp := status(first); dp.Status != DeployWaiting || dp.ToCommit != c1 || dp.Trigger != TriggerPush {
			t.Fatalf("push deploy %+v, want waiting for %s", dp, c1)
		}
		if _, err := st.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a waiting deploy was claimed: %v", err)
		}
		if len(woken) != 0 {
			t.Fatalf("a waiting deploy woke the worker: %v", woken)
		}
		if again := record("g2", c1); again != first {
			t.Fatalf("the same commit again made deploy %d, want it to join %d", again, first)
		}
		due, err := st.DueWaiting(ctx, at, 10)
		if err != nil || len(due) != 1 || due[0].ID != first || due[0].Commit != c1 || !due[0].Since.Equal(at) {
			t.Fatalf("due %+v %v", due, err)
		}

		// Still pending: looked at again later, with what it waits for.
		if err := st.PostponeWaiting(ctx, first, at.Add(10*time.Second), "checks: ci/build (pending)"); err != nil {
			t.Fatal(err)
		}
		if due, _ := st.DueWaiting(ctx, at, 10); len(due) != 0 {
			t.Fatalf("postponed deploy due at once: %+v", due)
		}
		if next, err := st.NextCheckAt(ctx); err != nil || !next.Equal(at.Add(10*time.Second)) {
			t.Fatalf("next check %v %v", next, err)
		}
		if w, _ := st.WaitingFor(ctx, first); w != "checks: ci/build (pending)" {
			t.Fatalf("waiting for %q", w)
		}

		// A newer push supersedes it.
		second := record("g3", c2)
		if dp := status(first); dp.Status != DeploySuperseded || dp.Error != "superseded by 2222222" || dp.FinishedAt.IsZero() {
			t.Fatalf("older waiting deploy %+v, want superseded by 2222222", dp)
		}
		if err := st.PassWaiting(ctx, first); !errors.Is(err, ErrConflict) {
			t.Fatalf("passing a superseded deploy: %v", err)
		}

		// Green: queued, moving to exactly its commit, and the worker is woken.
		if err := st.PassWaiting(ctx, second); err != nil {
			t.Fatal(err)
		}
		if dp := status(second); dp.Status != DeployQueued || dp.Target != c2 {
			t.Fatalf("passed deploy %+v, want queued for %s", dp, c2)
		}
		if len(woken) != 1 {
			t.Fatalf("woken %v, want site once", woken)
		}

		// A third commit turns green while the second still waits for a worker: the
		// newer one supersedes it in the queue (one queued deploy per node and repository).
		const c3 = "3333333333333333333333333333333333333333"
		third := record("g4", c3)
		if dp := status(second); dp.Status != DeployQueued {
			t.Fatalf("a waiting push changed the queued deploy: %+v", dp)
		}
		if err := st.PassWaiting(ctx, third); err != nil {
			t.Fatal(err)
		}
		if dp := status(second); dp.Status != DeploySuperseded || dp.Error != "superseded by 3333333" {
			t.Fatalf("older queued deploy %+v, want superseded", dp)
		}
		claimed, err := st.ClaimDeploy(ctx, "site")
		if err != nil || claimed.ID != third || claimed.Target != c3 {
			t.Fatalf("claimed %+v %v, want deploy %d to %s", claimed, err, third, c3)
		}
		if err := st.FinishDeploy(ctx, third, Result{Status: DeploySucceeded, ToCommit: c3}); err != nil {
			t.Fatal(err)
		}

		// Red: failed, with the check named.
		const c4 = "4444444444444444444444444444444444444444"
		fourth := record("g5", c4)
		if err := st.FailWaiting(ctx, fourth, "check ci/build failed"); err != nil {
			t.Fatal(err)
		}
		if dp := status(fourth); dp.Status != DeployFailed || dp.Error != "check ci/build failed" || dp.ToCommit != c4 {
			t.Fatalf("failed deploy %+v", dp)
		}

		// Manual deploys do not wait.
		manual, err := st.EnqueueManual(ctx, "site")
		if err != nil || manual.Status != DeployQueued {
			t.Fatalf("manual deploy %+v %v, want queued", manual, err)
		}

		// Every status change wrote its report: first waiting, superseded; second waiting,
		// queued, superseded; third waiting, queued, running, succeeded; fourth waiting,
		// failed; the manual one queued.
		want := map[int64][]string{
			first:     {DeployWaiting, DeploySuperseded},
			second:    {DeployWaiting, DeployQueued, DeploySuperseded},
			third:     {DeployWaiting, DeployQueued, DeployRunning, DeploySucceeded},
			fourth:    {DeployWaiting, DeployFailed},
			manual.ID: {DeployQueued},
		}
		for id, statuses := range want {
			reports, err := st.DeployReports(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range reports {
				got = append(got, r.Status)
			}
			if len(got) != len(statuses) {
				t.Errorf("deploy %d reports %v, want %v", id, got, statuses)
				continue
			}
			for i := range got {
				if got[i] != statuses[i] {
					t.Errorf("deploy %d reports %v, want %v", id, got, statuses)
					break
				}
			}
		}
	})
}

// TestWaitingDeployWhilePinned: a deploy whose checks turn green while the repository is
// pinned is superseded, not queued: the pin decides what is live.
func TestWaitingDeployWhilePinned(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		ctx := context.Background()
		st := openAt(t, newDatabase(), WithNode("web1"))
		if err := st.RegisterNode(ctx, "web1", "test", []string{"site"}); err != nil {
			t.Fatal(err)
		}
		st.SetRequireChecks([]string{"site"})
		d := push("site", "g1")
		if err := st.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		const pinned = "abcdefabcdefabcdefabcdefabcdefabcdefabcd"
		if _, err := st.SetPin(ctx, "site", pinned, PinnedByPin); err != nil {
			t.Fatal(err)
		}
		if err := st.PassWaiting(ctx, d.DeployID); err != nil {
			t.Fatal(err)
		}
		dp, err := st.Deploy(ctx, d.DeployID)
		if err != nil || dp.Status != DeploySuperseded || dp.Error != "superseded by abcdefa" {
			t.Fatalf("deploy %+v %v, want superseded by the pin", dp, err)
		}
		if _, err := st.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("claimed while pinned: %v", err)
		}
	})
}

// TestEnqueueManualWaiting: a manual deploy of a target with require_checks waits for the
// commit it was given on every node that deploys the target, superseding one waiting for
// another commit; a pinned target refuses. Both engines.
func TestEnqueueManualWaiting(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		ctx := context.Background()
		st := openAt(t, newDatabase(), WithNode("web1"))
		for _, n := range []string{"web1", "web2"} {
			if err := st.RegisterNode(ctx, n, "test", []string{"site"}); err != nil {
				t.Fatal(err)
			}
		}
		st.SetRequireChecks([]string{"site"})
		if !st.RequiresChecks("site") || st.RequiresChecks("blog") {
			t.Fatal("RequiresChecks does not follow SetRequireChecks")
		}
		const c1, c2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
		first, err := st.EnqueueManualWaiting(ctx, "site", c1)
		if err != nil || first.Status != DeployWaiting || first.Trigger != TriggerManual || first.ToCommit != c1 || first.Node != "web1" {
			t.Fatalf("manual waiting deploy %+v %v", first, err)
		}
		second, err := st.EnqueueManualWaiting(ctx, "site", c2)
		if err != nil {
			t.Fatal(err)
		}
		if dp, _ := st.Deploy(ctx, first.ID); dp.Status != DeploySuperseded {
			t.Fatalf("the older manual deploy is %s, want superseded", dp.Status)
		}
		var waiting []string
		for id := int64(1); id <= second.ID+3; id++ {
			if dp, err := st.Deploy(ctx, id); err == nil && dp.Status == DeployWaiting {
				waiting = append(waiting, dp.Node+"@"+dp.ToCommit[:7])
			}
		}
		nodes := 1 // SQLite: one gateway per file deploys
		if st.pg {
			nodes = 2
		}
		if len(waiting) != nodes || !strings.HasSuffix(waiting[0], "@2222222") || (nodes == 2 && waiting[1] != "web2@2222222") {
			t.Fatalf("waiting deploys %v, want one per node (%d) for 2222222", waiting, nodes)
		}
		if _, err := st.SetPin(ctx, "site", c1, PinnedByPin); err != nil {
			t.Fatal(err)
		}
		if _, err := st.EnqueueManualWaiting(ctx, "site", c2); !errors.Is(err, ErrPinned) {
			t.Fatalf("pinned: %v, want ErrPinned", err)
		}
	})
}

// TestReconcileWaitsForChecks: a reconcile of a target with require_checks queues a deploy
// waiting for origin's head's checks, with its reason; while it waits, or once its check
// failed (its commit is the newest deploy's), a reconcile queues nothing more. Both engines.
func TestReconcileWaitsForChecks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.SetRequireChecks([]string{"site"})
		reason := func(live string) string { return "origin at 2222222, live " + short(live) }
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		deployTo(t, s, "site", commitA, DeploySucceeded)
		d, err := s.Reconcile(ctx, "site", commitB, "", reason)
		if err != nil || d.DeployID == 0 {
			t.Fatalf("drift: %+v, %v", d, err)
		}
		dp, _ := s.Deploy(ctx, d.DeployID)
		if dp.Status != DeployWaiting || dp.Trigger != TriggerReconcile || dp.ToCommit != commitB || dp.Reason != reason(commitA) {
			t.Fatalf("reconcile deploy %+v, want waiting for %s", dp, commitB)
		}
		waiting := d.DeployID
		if d, err = s.Reconcile(ctx, "site", commitB, "", reason); err != nil || d.DeployID != 0 || !d.Busy || d.InFlight != waiting {
			t.Fatalf("while %d waits: %+v, %v", waiting, d, err)
		}
		if err := s.FailWaiting(ctx, waiting, "check ci failed"); err != nil {
			t.Fatal(err)
		}
		if d, err = s.Reconcile(ctx, "site", commitB, "", reason); err != nil || d.DeployID != 0 {
			t.Fatalf("after the red check: %+v, %v (a reconcile would retry a red commit every poll)", d, err)
		}
	})
}
