package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestNoDeliveryJoinsAClaimedDeploy: while deliveries pour in, a claimed deploy's
// deliveries are final: none joins it after the claim (it would be deployed by a run that
// fetched before its push, and never again), and every accepted delivery ends in a deploy
// that ran. On PostgreSQL the writer and the claimer are concurrent transactions; the
// queued row read FOR SHARE is what holds the claim back.
func TestNoDeliveryJoinsAClaimedDeploy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const writers, each = 8, 40
		var wg sync.WaitGroup
		all := make(chan *Delivery, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					d := push("site", fmt.Sprintf("w%d-%d", w, i))
					if err := s.RecordDelivery(ctx, d); err != nil {
						t.Error(err)
						return
					}
					all <- d
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		// Failures wait for the writers, which must not outlive the test.
		fatalf := func(format string, args ...any) {
			t.Helper()
			<-done
			t.Fatalf(format, args...)
		}
		ran := map[int64]bool{}
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			for {
				dp, err := s.ClaimDeploy(ctx, "site")
				if errors.Is(err, ErrNotFound) {
					break
				}
				if err != nil {
					fatalf("%v", err)
				}
				atClaim, err := s.Deploy(ctx, dp.ID)
				if err != nil {
					fatalf("%v", err)
				}
				if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded}); err != nil {
					fatalf("%v", err)
				}
				after, err := s.Deploy(ctx, dp.ID)
				if err != nil {
					fatalf("%v", err)
				}
				if len(after.DeliveryIDs) != len(atClaim.DeliveryIDs) {
					fatalf("deploy %d had deliveries %v when claimed, %v after it ran", dp.ID, atClaim.DeliveryIDs, after.DeliveryIDs)
				}
				ran[dp.ID] = true
			}
		}
		close(all)
		n := 0
		for d := range all {
			n++
			if !ran[d.DeployID] {
				t.Errorf("delivery %d joined deploy %d, which never ran", d.ID, d.DeployID)
			}
		}
		if n != writers*each {
			t.Fatalf("%d deliveries recorded, want %d", n, writers*each)
		}
		t.Logf("%d deliveries, %d deploys", n, len(ran))
	})
}
