package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestSkippedDeployIsNotLive: a skipped deploy (paths) records its reason and the commit
// it did not deploy, but the live commit, the live tag, the rollback's previous commit and
// the previous outcome stay the last succeeded deploy's; reconcile counts origin's head
// skipped as attempted and queues nothing for it, while a newer head is still queued with
// its ref.
func TestSkippedDeployIsNotLive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, _, err := s.LiveDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("LiveDeploy before any deploy: %v; want ErrNotFound", err)
		}
		why := func(string) string { return "origin moved on" }
		// Two deploys of tags, the second one failed: live is the first.
		for i, c := range []struct{ commit, status string }{{commitA, DeploySucceeded}, {commitB, DeployFailed}} {
			d, err := s.ReconcileRef(ctx, "site", c.commit, "refs/tags/v1.0."+string(rune('0'+i)), c.commit, why)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 && d.DeployID != 0 {
				t.Fatalf("reconcile with the checkout at origin: %+v; want nothing queued", d)
			}
			if i == 0 {
				if _, err := s.EnqueueManual(ctx, "site"); err != nil {
					t.Fatal(err)
				}
				if _, err := s.run(ctx, s.wdb, dynamic(`UPDATE deploys SET ref = 'refs/tags/v1.0.0' WHERE status = 'queued'`)); err != nil {
					t.Fatal(err)
				}
			} else if d.DeployID == 0 {
				t.Fatalf("reconcile of a newer tag: %+v; want a deploy queued", d)
			}
			deployTo(t, s, "site", c.commit, c.status)
		}
		dp, err := s.ReconcileRef(ctx, "site", commitC, "refs/tags/v1.1.0", "", why)
		if err != nil || dp.DeployID == 0 {
			t.Fatalf("reconcile of v1.1.0: %+v %v", dp, err)
		}
		claimed, err := s.ClaimDeploy(ctx, "site")
		if err != nil || claimed.Ref != "refs/tags/v1.1.0" {
			t.Fatalf("claimed %+v, %v; want the reconcile deploy of refs/tags/v1.1.0", claimed, err)
		}
		const reason = "no change under docs/** since live 1111111"
		if err := s.FinishDeploy(ctx, claimed.ID, Result{Status: DeploySkipped, FromCommit: commitB, ToCommit: commitC, Reason: reason}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Deploy(ctx, claimed.ID)
		if err != nil || got.Status != DeploySkipped || got.Reason != reason || got.ToCommit != commitC || got.Error != "" {
			t.Fatalf("skipped deploy recorded as %+v, %v", got, err)
		}
		live, ref, err := s.LiveDeploy(ctx, "site")
		if err != nil || live != commitA || ref != "refs/tags/v1.0.0" {
			t.Fatalf("LiveDeploy = %s %s %v; want %s refs/tags/v1.0.0 (a skipped deploy is not live)", live, ref, err, commitA)
		}
		next, err := s.EnqueueManual(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if prev, err := s.PreviousOutcome(ctx, "site", next.ID); err != nil || prev != DeployFailed {
			t.Fatalf("previous outcome after failed, skipped = %q %v; want failed (a skip is no recovery)", prev, err)
		}
		st, err := s.RepoState(ctx, "site")
		if err != nil || st.LastOK == nil || st.LastOK.ToCommit != commitA {
			t.Fatalf("RepoState.LastOK = %+v %v; want the deploy of %s", st.LastOK, err, commitA)
		}
		deployTo(t, s, "site", "", DeployInterrupted) // the manual one: not a commit, re-queued
		deployTo(t, s, "site", commitC, DeploySkipped)
		d, err := s.ReconcileRef(ctx, "site", commitC, "refs/tags/v1.1.0", "", why)
		if err != nil || d.DeployID != 0 || !d.NewestSkipped || d.Live != commitA {
			t.Fatalf("reconcile of the skipped head: %+v %v; want nothing queued, NewestSkipped, live %s", d, err, commitA)
		}
	})
}

// TestJoinedRefs: the refs of the deliveries a deploy joined, newest first, for a tag
// target's worker to deploy the newest tag pushed while the deploy waited.
func TestJoinedRefs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var id int64
		for i, tag := range []string{"v1.1.1", "v1.2.0", "v1.1.2"} {
			d := push("prod", "g"+tag)
			d.Ref = "refs/tags/" + tag
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				id = d.DeployID
			} else if d.DeployID != id {
				t.Fatalf("push of %s queued deploy %d; want it to join %d", tag, d.DeployID, id)
			}
		}
		refs, err := s.JoinedRefs(ctx, id)
		if err != nil || strings.Join(refs, " ") != "refs/tags/v1.1.2 refs/tags/v1.2.0 refs/tags/v1.1.1" {
			t.Fatalf("JoinedRefs = %v, %v", refs, err)
		}
		// The worker deploys v1.2.0 and records it as the deploy's ref: the live tag.
		dp, err := s.ClaimDeploy(ctx, "prod")
		if err != nil || dp.Ref != "refs/tags/v1.1.1" {
			t.Fatalf("claimed %+v %v", dp, err)
		}
		if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded, ToCommit: commitB, Ref: "refs/tags/v1.2.0"}); err != nil {
			t.Fatal(err)
		}
		if live, ref, err := s.LiveDeploy(ctx, "prod"); err != nil || live != commitB || ref != "refs/tags/v1.2.0" {
			t.Fatalf("LiveDeploy = %s %s %v; want %s refs/tags/v1.2.0", live, ref, err, commitB)
		}
	})
}
