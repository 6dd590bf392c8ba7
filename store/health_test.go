package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
)

// runTo claims site's queued deploy and finishes it at commit with status.
func runTo(t *testing.T, s *Store, commit, status string) Deploy {
	t.Helper()
	ctx := context.Background()
	dp, err := s.ClaimDeploy(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDeploy(ctx, dp.ID, Result{Status: status, ToCommit: commit}); err != nil {
		t.Fatal(err)
	}
	return dp
}

func TestHealthFailureMarksBadAndQueuesTheRollback(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		runTo(t, s, commitA, DeploySucceeded)
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.StartVerifying(ctx, dp.ID, commitA, commitB, "log"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Deploy(ctx, dp.ID); got.Status != DeployVerifying || got.ToCommit != commitB {
			t.Fatalf("verifying deploy: %+v", got)
		}
		for i, passed := range []bool{false, false} {
			if err := s.RecordProbe(ctx, Probe{DeployID: dp.ID, Repo: "site", At: time.Now(), Latency: 12 * time.Millisecond,
				Kind: ProbeURL, Code: 502, Passed: passed, Output: strings.Repeat("x", 3000), Error: "status 502"}); err != nil {
				t.Fatalf("probe %d: %v", i, err)
			}
		}
		probes, err := s.Probes(ctx, dp.ID)
		if err != nil || len(probes) != 2 || probes[0].Code != 502 || len(probes[0].Output) != MaxProbeOutput ||
			probes[0].Latency != 12*time.Millisecond || probes[0].Passed || probes[0].DeployID != dp.ID {
			t.Fatalf("probes: %+v, %v", probes, err)
		}
		hf, err := s.FinishHealthFailure(ctx, dp.ID, Result{Status: DeployFailed, FromCommit: commitA, ToCommit: commitB,
			Error: "health check failed: status 502"}, true)
		if err != nil {
			t.Fatal(err)
		}
		if !hf.Bad || hf.Rollback.ID == 0 || hf.Rollback.Target != commitA || hf.Pinned {
			t.Fatalf("health failure: %+v", hf)
		}
		bad, err := s.BadCommits(ctx, "site")
		if err != nil || len(bad) != 1 || bad[0].Commit != commitB || bad[0].DeployID != dp.ID ||
			bad[0].Reason != "commit 2222222 failed its health check (deploy "+strconv.FormatInt(dp.ID, 10)+")" {
			t.Fatalf("bad commits: %+v, %v", bad, err)
		}
		rb, err := s.ClaimDeploy(ctx, "site")
		if err != nil || rb.ID != hf.Rollback.ID || rb.Trigger != TriggerAutoRollback || rb.Target != commitA || rb.RollbackOf != dp.ID {
			t.Fatalf("claimed rollback: %+v, %v", rb, err)
		}
		// The rollback fails too: the target is pinned by health at the commit it tried,
		// and nothing more is queued or marked bad.
		hf, err = s.FinishHealthFailure(ctx, rb.ID, Result{Status: DeployFailed, ToCommit: commitA, Error: "health check failed"}, true)
		if err != nil || !hf.Pinned || hf.Bad || hf.Rollback.ID != 0 {
			t.Fatalf("failed rollback: %+v, %v", hf, err)
		}
		if p, err := s.GetPin(ctx, "site"); err != nil || p == nil || p.By != PinnedByHealth || p.Commit != commitA {
			t.Fatalf("pin after the failed rollback: %+v, %v", p, err)
		}
		if _, err := s.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("something was queued after the rollback failed: %v", err)
		}
		if err := s.ClearBadCommit(ctx, "site", commitB); err != nil {
			t.Fatal(err)
		}
		if err := s.ClearBadCommit(ctx, "site", commitB); !errors.Is(err, ErrNotFound) {
			t.Fatalf("clearing it twice: %v", err)
		}
	})
}

func TestHealthFailureWithoutAGoodCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.EnqueueManual(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		hf, err := s.FinishHealthFailure(ctx, dp.ID, Result{Status: DeployFailed, ToCommit: commitA, Error: "health check failed"}, true)
		if err != nil || !hf.Bad || !hf.NoGoodCommit || hf.Rollback.ID != 0 {
			t.Fatalf("first deploy failing its check: %+v, %v", hf, err)
		}
		if _, err := s.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a rollback was queued with no good commit: %v", err)
		}
	})
}

func TestPruneTakesProbesWithTheirDeploy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old := time.Now().Add(-48 * time.Hour)
		for range 2 {
			if _, err := s.EnqueueManual(ctx, "site"); err != nil {
				t.Fatal(err)
			}
			dp, err := s.ClaimDeploy(ctx, "site")
			if err != nil {
				t.Fatal(err)
			}
			s.RecordProbe(ctx, Probe{DeployID: dp.ID, Repo: "site", At: old, Kind: ProbeURL})
			if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySuperseded, ToCommit: commitA}); err != nil {
				t.Fatal(err)
			}
		}
		s.RecordProbe(ctx, Probe{Repo: "site", At: old, Kind: ProbeURL}) // a verify's
		if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM probes`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("probes left: %d, %v (want the newest deploy's one)", n, err)
		}
	})
}

// TestBadOnEveryNodeRollbackOnItsOwn: in a fleet the node whose check failed rolls back
// its own checkout only, and the commit is bad for the target on every node.
func TestBadOnEveryNodeRollbackOnItsOwn(t *testing.T) {
	if !pgtest.Enabled(t) {
		t.Skip("a fleet needs PostgreSQL: run under scripts/pgtest (CI does)")
	}
	ctx := context.Background()
	f := fleet(t, map[string][]string{"web1": {"site"}, "web2": {"site"}})
	web1, web2 := f["web1"], f["web2"]
	deployBoth := func(after string) {
		t.Helper()
		d := push("site", "g-"+after[:4])
		d.After = after
		if err := web1.RecordDelivery(ctx, d); err != nil || d.Status != DeliveryAccepted {
			t.Fatalf("push of %s: %s, %v", after[:7], d.Status, err)
		}
	}
	deployBoth(commitA)
	for _, s := range []*Store{web1, web2} {
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded, ToCommit: commitA}); err != nil {
			t.Fatal(err)
		}
	}
	deployBoth(commitB)
	dp, err := web1.ClaimDeploy(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	hf, err := web1.FinishHealthFailure(ctx, dp.ID, Result{Status: DeployFailed, FromCommit: commitA, ToCommit: commitB, Error: "health check failed"}, true)
	if err != nil || hf.Rollback.Node != "web1" {
		t.Fatalf("web1's failure: %+v, %v", hf, err)
	}
	// web2 still has its own deploy of commitB queued (its own check decides there), and
	// nothing more: the rollback is web1's.
	other, err := web2.ClaimDeploy(ctx, "site")
	if err != nil || other.Trigger == TriggerAutoRollback {
		t.Fatalf("web2 claimed %+v, %v", other, err)
	}
	if err := web2.FinishDeploy(ctx, other.ID, Result{Status: DeploySucceeded, ToCommit: commitA}); err != nil {
		t.Fatal(err)
	}
	if _, err := web2.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("web2 was given web1's rollback: %v", err)
	}
	// On web2 too the commit is bad: a redelivery received there is ignored, and its poll
	// leaves origin's head.
	d := push("site", "g-again")
	d.After = commitB
	if err := web2.RecordDelivery(ctx, d); err != nil || d.Status != DeliveryIgnored || !strings.Contains(d.Reason, "failed its health check") {
		t.Fatalf("push of the bad commit on web2: %s %q, %v", d.Status, d.Reason, err)
	}
	drift, err := web2.Reconcile(ctx, "site", commitB, "", func(string) string { return "reconcile" })
	if err != nil || drift.DeployID != 0 || drift.Bad == "" {
		t.Fatalf("web2's poll: %+v, %v", drift, err)
	}
}

// TestInterruptedAutoRollbackKeepsItsTarget: an automatic rollback cut off (a shutdown that
// did not wait for it, a crash, a deploy ended interrupted) is queued again as the same
// rollback: a recovery with no target would deploy origin's head, the bad commit.
func TestInterruptedAutoRollbackKeepsItsTarget(t *testing.T) {
	cuts := map[string]func(ctx context.Context, s *Store, id int64) error{
		"finished interrupted": func(ctx context.Context, s *Store, id int64) error {
			return s.FinishDeploy(ctx, id, Result{Status: DeployInterrupted, Error: "shut down"})
		},
		"shutdown": func(ctx context.Context, s *Store, _ int64) error {
			_, err := s.InterruptRunning(ctx, "shut down")
			return err
		},
		"crash": func(ctx context.Context, s *Store, _ int64) error {
			_, _, err := s.RecoverCrashed(ctx, "crashed")
			return err
		},
	}
	for name, cut := range cuts {
		t.Run(name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, s *Store) {
				ctx := context.Background()
				if _, err := s.EnqueueManual(ctx, "site"); err != nil {
					t.Fatal(err)
				}
				runTo(t, s, commitA, DeploySucceeded)
				if _, err := s.EnqueueManual(ctx, "site"); err != nil {
					t.Fatal(err)
				}
				dp, err := s.ClaimDeploy(ctx, "site")
				if err != nil {
					t.Fatal(err)
				}
				hf, err := s.FinishHealthFailure(ctx, dp.ID, Result{Status: DeployFailed, FromCommit: commitA, ToCommit: commitB,
					Error: "health check failed: status 502"}, true)
				if err != nil || hf.Rollback.ID == 0 {
					t.Fatalf("health failure: %+v, %v", hf, err)
				}
				rb, err := s.ClaimDeploy(ctx, "site")
				if err != nil || rb.ID != hf.Rollback.ID {
					t.Fatalf("claimed rollback: %+v, %v", rb, err)
				}
				if err := cut(ctx, s, rb.ID); err != nil {
					t.Fatal(err)
				}
				again, err := s.ClaimDeploy(ctx, "site")
				if err != nil {
					t.Fatalf("nothing queued after the rollback was cut off: %v", err)
				}
				if again.ID == rb.ID || again.Trigger != TriggerAutoRollback || again.Target != commitA ||
					again.RollbackOf != dp.ID || again.Reason != rb.Reason {
					t.Fatalf("the rollback's recovery: %+v; want trigger auto_rollback, target %s, rollback_of %d, reason %q",
						again, commitA, dp.ID, rb.Reason)
				}
			})
		})
	}
}

// TestRecentBadCommitsAreCapped: a repository status lists the newest bad commits up to a
// limit and says how many there are; all are kept (the skip reads every one).
func TestRecentBadCommitsAreCapped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if bads, n, err := s.RecentBadCommits(ctx, "site", 3); err != nil || n != 0 || bads == nil || len(bads) != 0 {
			t.Fatalf("none yet: %v %d %v", bads, n, err)
		}
		var commits []string
		for i := 1; i <= 5; i++ {
			if _, err := s.EnqueueManual(ctx, "site"); err != nil {
				t.Fatal(err)
			}
			dp, err := s.ClaimDeploy(ctx, "site")
			if err != nil {
				t.Fatal(err)
			}
			c := strings.Repeat(strconv.Itoa(i), 40)
			commits = append(commits, c)
			if _, err := s.FinishHealthFailure(ctx, dp.ID, Result{Status: DeployFailed, ToCommit: c, Error: "health check failed"}, false); err != nil {
				t.Fatal(err)
			}
		}
		bads, n, err := s.RecentBadCommits(ctx, "site", 3)
		if err != nil || n != 5 || len(bads) != 3 || bads[0].Commit != commits[4] || bads[2].Commit != commits[2] {
			t.Fatalf("newest 3 of 5: %+v %d %v", bads, n, err)
		}
		if all, err := s.BadCommits(ctx, "site"); err != nil || len(all) != 5 {
			t.Fatalf("all bad commits: %d %v", len(all), err)
		}
	})
}

// TestManualDeployJoinTakesOverAQueuedPush: the push deploy a manual deploy joins becomes
// manual (the worker skips a bad head only for automatic deploys); a queued rollback keeps
// its trigger and commit.
func TestManualDeployJoinTakesOverAQueuedPush(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := push("site", "g1")
		if err := s.RecordDelivery(ctx, d); err != nil || d.DeployID == 0 {
			t.Fatalf("push: %+v %v", d, err)
		}
		dp, err := s.EnqueueManual(ctx, "site")
		if err != nil || dp.ID != d.DeployID || dp.Trigger != TriggerManual {
			t.Fatalf("manual deploy joining push deploy %d: %+v %v", d.DeployID, dp, err)
		}
		runTo(t, s, commitA, DeploySucceeded)
		rb, err := s.EnqueueRollback(ctx, "site", commitA, "by hand")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unpin(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		dp, err = s.EnqueueManual(ctx, "site")
		if err != nil || dp.ID != rb.ID || dp.Trigger != TriggerRollback || dp.Target != commitA {
			t.Fatalf("manual deploy joining rollback %d: %+v %v", rb.ID, dp, err)
		}
	})
}
