package store

import (
	"context"
	"strings"
	"testing"
)

// TestRecoverCrashedFailsTheSecondCrash: a deploy cut off by a crash is queued again with
// the count; the one cut off by the next crash is failed and not queued. A crash between
// them that the re-queued deploy's repository shares with a newer push still counts (the
// push joined the recovery), and an orderly shutdown's interruption does not count.
func TestRecoverCrashedFailsTheSecondCrash(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		claim := func() Deploy {
			t.Helper()
			dp, err := s.ClaimDeploy(ctx, "site")
			if err != nil {
				t.Fatal(err)
			}
			return dp
		}
		if err := s.RecordDelivery(ctx, push("site", "one")); err != nil {
			t.Fatal(err)
		}
		first := claim()
		// An orderly shutdown cut it off: queued again, not counted.
		if _, err := s.InterruptRunning(ctx, "shutdown"); err != nil {
			t.Fatal(err)
		}
		second := claim()
		requeued, failed, err := s.RecoverCrashed(ctx, "crashed")
		if err != nil || len(requeued) != 1 || len(failed) != 0 {
			t.Fatalf("first crash: requeued %v, failed %v, %v", requeued, failed, err)
		}
		// A push arriving before the restart's worker claims joins the recovery deploy.
		if err := s.RecordDelivery(ctx, push("site", "two")); err != nil {
			t.Fatal(err)
		}
		third := claim()
		requeued, failed, err = s.RecoverCrashed(ctx, "crashed")
		if err != nil || len(requeued) != 0 || len(failed) != 1 || failed[0].ID != third.ID {
			t.Fatalf("second crash: requeued %v, failed %+v, %v; want deploy %d failed", requeued, failed, err, third.ID)
		}
		if f := failed[0]; f.Status != DeployFailed || !strings.Contains(f.Error, "interrupted by a crash 2 times; not retried") || f.FinishedAt.IsZero() {
			t.Fatalf("failed deploy: %+v", f)
		}
		if q, err := s.QueuedRepos(ctx); err != nil || len(q) != 0 {
			t.Fatalf("queued after the second crash: %v (%v)", q, err)
		}
		for id, want := range map[int64]string{first.ID: "shutdown", second.ID: "crashed"} {
			if dp, err := s.Deploy(ctx, id); err != nil || dp.Status != DeployInterrupted || dp.Error != want {
				t.Fatalf("deploy %d: %s %q (%v)", id, dp.Status, dp.Error, err)
			}
		}
		// The next push starts afresh.
		if err := s.RecordDelivery(ctx, push("site", "three")); err != nil {
			t.Fatal(err)
		}
		claim()
		if requeued, failed, err := s.RecoverCrashed(ctx, "crashed"); err != nil || len(requeued) != 1 || len(failed) != 0 {
			t.Fatalf("a new deploy's first crash: requeued %v, failed %v, %v", requeued, failed, err)
		}
	})
}
