package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/pgtest"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "sub", "hookgate.db"))
}

// openAt opens the database (a SQLite path or a PostgreSQL URL) with opts and closes it
// when t ends.
func openAt(t *testing.T, database string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), database, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachDatabase runs fn once per backend: SQLite always, PostgreSQL when the tests run
// beside a cluster (scripts/pgtest; required under CI). newDatabase returns the setting of
// a new, empty database of that backend each time it is called.
func forEachDatabase(t *testing.T, fn func(t *testing.T, newDatabase func() string)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func() string { return filepath.Join(t.TempDir(), "sub", "hookgate.db") })
	})
	if pgtest.Enabled(t) {
		t.Run("postgres", func(t *testing.T) {
			fn(t, func() string { return pgtest.Database(t) })
		})
	}
}

// forEachBackend runs fn once per backend (see forEachDatabase) with a new store.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *Store)) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		fn(t, openAt(t, newDatabase()))
	})
}

func push(repo, guid string) *Delivery {
	return &Delivery{
		GUID: guid, Repo: repo, Event: "push", Ref: "refs/heads/main",
		After: "fd489864e7642b48eaad6e3f155c10e46810ec72", Commit: "fd48986",
		Signature: SignatureValid, SignatureAlg: "sha256", Status: DeliveryAccepted,
		HTTPStatus: 202, Headers: map[string]string{"X-Github-Event": "push"},
		Payload: []byte(`{"ref":"refs/heads/main"}`),
	}
}

func TestRecordDeliveryRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 23, 10, 4, 5, 123456789, time.UTC)
		s.SetNow(func() time.Time { return at })
		d := push("site", "guid-1")
		if err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		if d.ID == 0 || d.DeployID == 0 {
			t.Fatalf("ids not set: delivery %d deploy %d", d.ID, d.DeployID)
		}
		got, err := s.Delivery(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.GUID != "guid-1" || got.Commit != "fd48986" || got.Signature != SignatureValid ||
			got.Status != DeliveryAccepted || got.DeployID != d.DeployID || got.DeployStatus != DeployQueued ||
			!got.ReceivedAt.Equal(s.storedTime(at)) || got.Headers["X-Github-Event"] != "push" || string(got.Payload) != `{"ref":"refs/heads/main"}` {
			t.Fatalf("delivery did not round-trip: %+v", got)
		}
		dp, err := s.Deploy(ctx, d.DeployID)
		if err != nil {
			t.Fatal(err)
		}
		if dp.Status != DeployQueued || dp.Repo != "site" || dp.Trigger != TriggerPush || len(dp.DeliveryIDs) != 1 || dp.DeliveryIDs[0] != d.ID {
			t.Fatalf("deploy: %+v", dp)
		}
		if _, err := s.Delivery(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing delivery: %v", err)
		}
		if _, err := s.Deploy(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing deploy: %v", err)
		}
	})
}

func TestCoalescing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		first := push("site", "a")
		if err := s.RecordDelivery(ctx, first); err != nil {
			t.Fatal(err)
		}
		running, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if running.ID != first.DeployID || running.DeliveryGUID != "a" {
			t.Fatalf("claimed %+v", running)
		}
		if _, err := s.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second claim: %v", err)
		}

		// 20 pushes during the running deploy, concurrently: one more deploy, not 20.
		var wg sync.WaitGroup
		ds := make([]*Delivery, 20)
		for i := range ds {
			ds[i] = push("site", fmt.Sprintf("g%d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.RecordDelivery(ctx, ds[i]); err != nil {
					t.Error(err)
				}
			}()
		}
		other := push("blog", "b")
		if err := s.RecordDelivery(ctx, other); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		next := ds[0].DeployID
		for _, d := range ds {
			if d.DeployID != next {
				t.Fatalf("deliveries spread over deploys %d and %d", next, d.DeployID)
			}
		}
		if next == running.ID || other.DeployID == next {
			t.Fatalf("queued deploy %d must differ from running %d and blog's %d", next, running.ID, other.DeployID)
		}
		dp, err := s.Deploy(ctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if len(dp.DeliveryIDs) != 20 {
			t.Fatalf("queued deploy has %d deliveries, want 20", len(dp.DeliveryIDs))
		}
		repos, err := s.QueuedRepos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(repos) != 2 {
			t.Fatalf("queued repos %v", repos)
		}
	})
}

func TestFinishAndRedelivery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()

		ok := push("site", "same-guid")
		if err := s.RecordDelivery(ctx, ok); err != nil {
			t.Fatal(err)
		}
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded, FromCommit: "a", ToCommit: "b", Log: "done"}); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeployFailed}); !errors.Is(err, ErrConflict) {
			t.Fatalf("finishing twice: %v", err)
		}
		again := push("site", "same-guid")
		if err := s.RecordDelivery(ctx, again); err != nil {
			t.Fatal(err)
		}
		if !again.Redelivery || again.Status != DeliveryIgnored || again.HTTPStatus != 200 || again.DeployID != 0 {
			t.Fatalf("redelivery of a succeeded deploy: %+v", again)
		}

		bad := push("site", "failed-guid")
		if err := s.RecordDelivery(ctx, bad); err != nil {
			t.Fatal(err)
		}
		if dp, err = s.ClaimDeploy(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeployFailed, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
		retry := push("site", "failed-guid")
		if err := s.RecordDelivery(ctx, retry); err != nil {
			t.Fatal(err)
		}
		if !retry.Redelivery || retry.Status != DeliveryAccepted || retry.DeployID == 0 {
			t.Fatalf("redelivery of a failed deploy must deploy again: %+v", retry)
		}
		got, err := s.Deploy(ctx, retry.DeployID)
		if err != nil || got.Trigger != TriggerRedelivery {
			t.Fatalf("trigger %q (%v)", got.Trigger, err)
		}
	})
}

func TestInterruptRunningRequeues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := push("site", "x")
		if err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateDeployProgress(ctx, dp.ID, "a", "b", "half way"); err != nil {
			t.Fatal(err)
		}
		repos, err := s.InterruptRunning(ctx, "crashed")
		if err != nil {
			t.Fatal(err)
		}
		if len(repos) != 1 || repos[0] != "site" {
			t.Fatalf("requeued %v", repos)
		}
		old, err := s.Deploy(ctx, dp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if old.Status != DeployInterrupted || old.Error != "crashed" || old.Log != "half way" || old.FinishedAt.IsZero() {
			t.Fatalf("interrupted deploy: %+v", old)
		}
		next, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if next.Trigger != TriggerRecovery {
			t.Fatalf("recovery deploy: %+v", next)
		}
		// Finishing as interrupted queues the repository again too.
		if err := s.FinishDeploy(ctx, next.ID, Result{Status: DeployInterrupted}); err != nil {
			t.Fatal(err)
		}
		if q, err := s.QueuedRepos(ctx); err != nil || len(q) != 1 || q[0] != "site" {
			t.Fatalf("queued after interrupted finish: %v (%v)", q, err)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	forEachDatabase(t, testReopenKeepsData)
}

func testReopenKeepsData(t *testing.T, newDatabase func() string) {
	path := newDatabase()
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d := push("site", "keep")
	if err := s.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Delivery(ctx, d.ID); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if err := s.RecordDelivery(ctx, push("site", "after-close")); err != nil {
		t.Fatal(err)
	}
}

func TestRecordAfterCloseFails(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, newDatabase func() string) {
		s, err := Open(context.Background(), newDatabase())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := s.RecordDelivery(context.Background(), push("site", "late")); err == nil {
			t.Fatal("recording after Close succeeded")
		}
	})
}

func TestPruneKeepsWhatIsLive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s.SetNow(func() time.Time { return old })
		finish := func(repo, guid, status string) int64 {
			d := push(repo, guid)
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
			dp, err := s.ClaimDeploy(ctx, repo)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.FinishDeploy(ctx, dp.ID, Result{Status: status, Log: "output"}); err != nil {
				t.Fatal(err)
			}
			return dp.ID
		}
		oldOK := finish("site", "a", DeploySucceeded)
		superseded := finish("site", "b", DeploySucceeded)
		liveOK := finish("site", "c", DeploySucceeded)
		lastFailed := finish("site", "d", DeployFailed)
		blogOnly := finish("blog", "e", DeployFailed)

		s.SetNow(func() time.Time { return old.AddDate(0, 6, 0) })
		fresh := push("site", "fresh")
		if err := s.RecordDelivery(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		p, err := s.Prune(ctx, old.AddDate(0, 3, 0))
		if err != nil {
			t.Fatal(err)
		}
		if p.Deliveries != 5 || p.Deploys != 2 {
			t.Fatalf("pruned %+v, want 5 deliveries and the 2 superseded deploys", p)
		}
		for _, id := range []int64{liveOK, lastFailed, blogOnly, fresh.DeployID} {
			if _, err := s.Deploy(ctx, id); err != nil {
				t.Errorf("deploy %d should be kept: %v", id, err)
			}
		}
		for _, id := range []int64{oldOK, superseded} {
			if _, err := s.Deploy(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("old deploy %d kept", id)
			}
		}
		if _, err := s.Delivery(ctx, fresh.ID); err != nil {
			t.Errorf("fresh delivery pruned: %v", err)
		}
	})
}

// TestNoClaimWhileRunning: while a deploy of a repository runs on this node, the next one
// queued for it waits: a claim finds nothing for that repository (another's still goes),
// and the waiting deploy is claimed once the running one has finished.
func TestNoClaimWhileRunning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.RecordDelivery(ctx, push("site", "g1")); err != nil {
			t.Fatal(err)
		}
		running, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		next := push("site", "g2")
		if err := s.RecordDelivery(ctx, next); err != nil || next.DeployID == 0 || next.DeployID == running.ID {
			t.Fatalf("a push during the deploy: deploy %d (running %d), %v; want a new queued one", next.DeployID, running.ID, err)
		}
		if err := s.RecordDelivery(ctx, push("blog", "g3")); err != nil {
			t.Fatal(err)
		}
		if dp, err := s.ClaimDeploy(ctx, "site"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("claimed deploy %d of site while %d runs (%v)", dp.ID, running.ID, err)
		}
		if _, err := s.ClaimDeploy(ctx, "blog"); err != nil {
			t.Fatalf("another repository's deploy waits for site's: %v", err)
		}
		if err := s.FinishDeploy(ctx, running.ID, Result{Status: DeploySucceeded}); err != nil {
			t.Fatal(err)
		}
		if dp, err := s.ClaimDeploy(ctx, "site"); err != nil || dp.ID != next.DeployID {
			t.Fatalf("after the running deploy finished: claimed %d, %v; want %d", dp.ID, err, next.DeployID)
		}
	})
}
