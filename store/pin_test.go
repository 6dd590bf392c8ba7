package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const (
	commitA = "1111111111111111111111111111111111111111"
	commitB = "2222222222222222222222222222222222222222"
	commitC = "3333333333333333333333333333333333333333"
)

// deployTo claims repo's queued deploy and finishes it at commit with status.
func deployTo(t *testing.T, s *Store, repo, commit, status string) Deploy {
	t.Helper()
	ctx := context.Background()
	dp, err := s.ClaimDeploy(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDeploy(ctx, dp.ID, Result{Status: status, ToCommit: commit}); err != nil {
		t.Fatal(err)
	}
	return dp
}

func TestPinIgnoresPushesAndManualDeploys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p, err := s.SetPin(ctx, "site", commitA, PinnedByPin)
		if err != nil {
			t.Fatal(err)
		}
		// A single delivery and a batch of them both meet the pin.
		single := push("site", "g1")
		if err := s.RecordDelivery(ctx, single); err != nil {
			t.Fatal(err)
		}
		other := push("blog", "g2")
		if err := s.RecordDelivery(ctx, other); err != nil {
			t.Fatal(err)
		}
		for _, d := range []*Delivery{single} {
			if d.Status != DeliveryIgnored || d.HTTPStatus != 200 || d.DeployID != 0 ||
				!strings.HasPrefix(d.Reason, "pinned at 1111111") {
				t.Fatalf("push to a pinned repository: status %s %d, deploy %d, reason %q", d.Status, d.HTTPStatus, d.DeployID, d.Reason)
			}
			got, err := s.Delivery(ctx, d.ID)
			if err != nil || got.Status != DeliveryIgnored || got.Reason != d.Reason {
				t.Fatalf("stored: %+v, %v", got, err)
			}
		}
		if other.Status != DeliveryAccepted || other.DeployID == 0 {
			t.Fatalf("a repository that is not pinned must still deploy: %+v", other)
		}
		if _, err := s.EnqueueManual(ctx, "site"); !errors.Is(err, ErrPinned) {
			t.Fatalf("manual deploy while pinned: %v, want ErrPinned", err)
		}
		got, err := s.GetPin(ctx, "site")
		if err != nil || got == nil || got.Commit != commitA || got.By != PinnedByPin || !got.At.Equal(p.At) {
			t.Fatalf("GetPin = %+v, %v; want %+v", got, err, p)
		}
		if ok, err := s.Unpin(ctx, "site"); !ok || err != nil {
			t.Fatalf("Unpin = %v, %v", ok, err)
		}
		d := push("site", "g3")
		if err := s.RecordDelivery(ctx, d); err != nil || d.Status != DeliveryAccepted || d.DeployID == 0 {
			t.Fatalf("after unpin: %+v, %v", d, err)
		}
	})
}

func TestPinSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookgate.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueRollback(ctx, "site", commitB, "rollback to 2222222"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.GetPin(ctx, "site")
	if err != nil || p == nil || p.Commit != commitB || p.By != PinnedByRollback {
		t.Fatalf("pin after reopen: %+v, %v", p, err)
	}
}

func TestRollbackTakesOverTheQueuedDeploy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := push("site", "g1")
		if err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		dp, err := s.EnqueueRollback(ctx, "site", commitA, "rollback to 1111111")
		if err != nil {
			t.Fatal(err)
		}
		if dp.ID != d.DeployID || dp.Trigger != TriggerRollback || dp.Target != commitA || dp.Reason != "rollback to 1111111" {
			t.Fatalf("rollback deploy: %+v (push deploy %d)", dp, d.DeployID)
		}
		claimed, err := s.ClaimDeploy(ctx, "site")
		if err != nil || claimed.Target != commitA || claimed.Trigger != TriggerRollback {
			t.Fatalf("claimed %+v, %v", claimed, err)
		}
		// Cut off by a crash: the recovery deploy carries no target, but the pin holds it.
		if _, err := s.InterruptRunning(ctx, "crash"); err != nil {
			t.Fatal(err)
		}
		claimed, err = s.ClaimDeploy(ctx, "site")
		if err != nil || claimed.Trigger != TriggerRecovery || claimed.Target != commitA {
			t.Fatalf("recovery while pinned must move to the pin: %+v, %v", claimed, err)
		}
		// The history says why: the stored deploy names the pin it was moved to.
		stored, err := s.Deploy(ctx, claimed.ID)
		if err != nil || !strings.HasPrefix(stored.Reason, "pinned at 1111111") {
			t.Fatalf("the redirected deploy's stored reason: %q, %v", stored.Reason, err)
		}
		// The rollback's pin holds against the operator's manual deploy and a push alike,
		// until unpinned.
		if err := s.FinishDeploy(ctx, claimed.ID, Result{Status: DeploySucceeded, ToCommit: commitA}); err != nil {
			t.Fatal(err)
		}
		if p, err := s.GetPin(ctx, "site"); err != nil || p == nil || p.By != PinnedByRollback || p.Commit != commitA {
			t.Fatalf("pin after the rollback: %+v, %v", p, err)
		}
		if _, err := s.EnqueueManual(ctx, "site"); !errors.Is(err, ErrPinned) {
			t.Fatalf("manual deploy after a rollback: %v, want ErrPinned", err)
		}
		late := push("site", "g2")
		if err := s.RecordDelivery(ctx, late); err != nil || late.Status != DeliveryIgnored || late.DeployID != 0 {
			t.Fatalf("push after a rollback: %s, deploy %d, %v; want ignored for the pin", late.Status, late.DeployID, err)
		}
	})
}

// TestReconcileQueuesBehindARollbackOnceUnpinned: an operator who unpins while a rollback
// runs gets origin's head deployed after it; a deploy running towards origin's head
// already is waited for instead.
func TestReconcileQueuesBehindARollbackOnceUnpinned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		reason := func(live string) string { return "origin moved on" }
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		deployTo(t, s, "site", commitB, DeploySucceeded)
		if _, err := s.EnqueueRollback(ctx, "site", commitA, "rollback to 1111111"); err != nil {
			t.Fatal(err)
		}
		rollback, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if d, err := s.Reconcile(ctx, "site", commitC, "", reason); err != nil || d.DeployID != 0 || d.Pin == nil {
			t.Fatalf("pinned: %+v, %v", d, err)
		}
		if _, err := s.Unpin(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		// Origin's head is where the rollback goes: that deploy is the one.
		if d, err := s.Reconcile(ctx, "site", commitA, "", reason); err != nil || d.DeployID != 0 || d.InFlight != rollback.ID {
			t.Fatalf("origin at the rollback's commit: %+v, %v; want deploy %d in flight", d, err, rollback.ID)
		}
		d, err := s.Reconcile(ctx, "site", commitC, "", reason)
		if err != nil || d.DeployID == 0 {
			t.Fatalf("unpinned while rollback %d runs: %+v, %v; want a deploy queued behind it", rollback.ID, d, err)
		}
		// It waits for the rollback, then is claimed.
		if _, err := s.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("claimed while the rollback runs: %v", err)
		}
		if err := s.FinishDeploy(ctx, rollback.ID, Result{Status: DeploySucceeded, FromCommit: commitB, ToCommit: commitA}); err != nil {
			t.Fatal(err)
		}
		if next, err := s.ClaimDeploy(ctx, "site"); err != nil || next.ID != d.DeployID || next.Target != "" {
			t.Fatalf("after the rollback: %+v, %v; want deploy %d to origin's head", next, err, d.DeployID)
		}
	})
}

func TestPreviousCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.PreviousCommit(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no deploys: %v", err)
		}
		for _, c := range []struct{ commit, status string }{
			{commitA, DeploySucceeded}, {commitB, DeploySucceeded}, {commitC, DeployFailed}, {commitB, DeploySucceeded},
		} {
			if _, err := s.EnqueueManual(ctx, "site"); err != nil {
				t.Fatal(err)
			}
			deployTo(t, s, "site", c.commit, c.status)
		}
		// Live is B (deployed twice); C failed: the one before is A.
		if got, err := s.PreviousCommit(ctx, "site"); err != nil || got != commitA {
			t.Fatalf("PreviousCommit = %q, %v; want %s", got, err, commitA)
		}
	})
}

func TestReconcileDecides(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		reason := func(live string) string { return "origin at 3333333, live " + short(live) }
		// Nothing deployed yet and the checkout already at origin's head: in sync.
		d, err := s.Reconcile(ctx, "site", commitA, commitA, reason)
		if err != nil || d.DeployID != 0 || d.Live != commitA {
			t.Fatalf("in sync: %+v, %v", d, err)
		}
		// Nothing deployed and no checkout: nothing to drift from.
		if d, err = s.Reconcile(ctx, "site", commitA, "", reason); err != nil || d.DeployID != 0 {
			t.Fatalf("not cloned yet: %+v, %v", d, err)
		}
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		deployTo(t, s, "site", commitA, DeploySucceeded)

		// Origin moved on: one reconcile deploy, with its reason.
		d, err = s.Reconcile(ctx, "site", commitB, "", reason)
		if err != nil || d.DeployID == 0 {
			t.Fatalf("drift: %+v, %v", d, err)
		}
		dp, _ := s.Deploy(ctx, d.DeployID)
		if dp.Trigger != TriggerReconcile || dp.Reason != "origin at 3333333, live 1111111" {
			t.Fatalf("reconcile deploy: %+v", dp)
		}
		// Queued: nothing more; the deploy in flight is named (an unpin answers with it).
		queued := d.DeployID
		if d, err = s.Reconcile(ctx, "site", commitB, "", reason); err != nil || d.DeployID != 0 || !d.Busy || d.InFlight != queued {
			t.Fatalf("while %d is queued: %+v, %v", queued, d, err)
		}
		// Running: nothing more.
		claimed, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if d, err = s.Reconcile(ctx, "site", commitB, "", reason); err != nil || d.DeployID != 0 || !d.Busy || d.InFlight != claimed.ID {
			t.Fatalf("while %d runs: %+v, %v", claimed.ID, d, err)
		}
		// Running with another queued behind it: the queued one, which runs last.
		next, err := s.EnqueueManual(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if d, err = s.Reconcile(ctx, "site", commitB, "", reason); err != nil || d.DeployID != 0 || d.InFlight != next.ID {
			t.Fatalf("while %d runs and %d is queued: %+v, %v", claimed.ID, next.ID, d, err)
		}
		// Both failed at B: B is not retried, however often it is checked.
		if err := s.FinishDeploy(ctx, claimed.ID, Result{Status: DeployFailed, FromCommit: commitA, ToCommit: commitB}); err != nil {
			t.Fatal(err)
		}
		deployTo(t, s, "site", commitB, DeployFailed)
		for range 3 {
			if d, err = s.Reconcile(ctx, "site", commitB, "", reason); err != nil || d.DeployID != 0 || d.Newest != commitB {
				t.Fatalf("failed head retried: %+v, %v", d, err)
			}
		}
		// A new head is deployed, unless pinned.
		if _, err := s.SetPin(ctx, "site", commitA, PinnedByPin); err != nil {
			t.Fatal(err)
		}
		if d, err = s.Reconcile(ctx, "site", commitC, "", reason); err != nil || d.DeployID != 0 || d.Pin == nil {
			t.Fatalf("pinned: %+v, %v", d, err)
		}
		if _, err := s.Unpin(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		if d, err = s.Reconcile(ctx, "site", commitC, "", reason); err != nil || d.DeployID == 0 {
			t.Fatalf("new head: %+v, %v", d, err)
		}
	})
}
