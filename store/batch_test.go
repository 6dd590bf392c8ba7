package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestBatchKeepsGoodDeliveries writes a batch whose middle delivery breaks a constraint:
// the batch is retried with a savepoint per delivery, so the others are recorded (and
// share one deploy) and only the bad one fails, unchanged.
func TestBatchKeepsGoodDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		good1, bad, good2 := push("site", "g-1"), push("site", "g-2"), push("site", "g-3")
		bad.Status = "bogus" // not allowed by the table's CHECK
		batch := writeReqs(t, s, good1, bad, good2)
		errs := s.batch.write(batch)
		if errs[0] != nil || errs[2] != nil || errs[1] == nil {
			t.Fatalf("errors %v, want only the second to fail", errs)
		}
		if good1.ID == 0 || good2.ID == 0 || good1.DeployID == 0 || good1.DeployID != good2.DeployID {
			t.Fatalf("good deliveries: %d→%d, %d→%d", good1.ID, good1.DeployID, good2.ID, good2.DeployID)
		}
		if bad.ID != 0 || bad.DeployID != 0 {
			t.Fatalf("the failed delivery kept ids %d, %d", bad.ID, bad.DeployID)
		}
		dp, err := s.Deploy(context.Background(), good1.DeployID)
		if err != nil {
			t.Fatal(err)
		}
		if len(dp.DeliveryIDs) != 2 {
			t.Fatalf("deploy has deliveries %v, want the two good ones", dp.DeliveryIDs)
		}
	})
}

// TestBatchRollbackForgetsDeploy: a delivery that queues its repository's deploy and then
// fails is rolled back with that deploy, so the next delivery of the batch queues a new
// one rather than joining the one undone.
func TestBatchRollbackForgetsDeploy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		bad, good := push("site", "g-1"), push("site", "g-2")
		bad.Signature = "bogus" // accepted, so it queues a deploy, then fails the table's CHECK
		batch := writeReqs(t, s, bad, good)
		errs := s.batch.write(batch)
		if errs[0] == nil || errs[1] != nil {
			t.Fatalf("errors %v, want only the first to fail", errs)
		}
		dp, err := s.Deploy(context.Background(), good.DeployID)
		if err != nil {
			t.Fatalf("deploy %d of the good delivery: %v", good.DeployID, err)
		}
		if dp.Status != DeployQueued || len(dp.DeliveryIDs) != 1 || dp.DeliveryIDs[0] != good.ID {
			t.Fatalf("deploy %+v", dp)
		}
	})
}

// TestBatchRedeliveries: within one batch, the GUID lookup (one query for the batch) sees
// both the deliveries recorded before and the earlier copies in the batch itself.
func TestBatchRedeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		first := push("site", "deployed")
		if err := s.RecordDelivery(ctx, first); err != nil {
			t.Fatal(err)
		}
		dp, err := s.ClaimDeploy(ctx, "site")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishDeploy(ctx, dp.ID, Result{Status: DeploySucceeded}); err != nil {
			t.Fatal(err)
		}
		again, fresh, copy := push("site", "deployed"), push("site", "fresh"), push("site", "fresh")
		batch := writeReqs(t, s, again, fresh, copy)
		for i, err := range s.batch.write(batch) {
			if err != nil {
				t.Fatalf("delivery %d: %v", i, err)
			}
		}
		if !again.Redelivery || again.Status != DeliveryIgnored || again.DeployID != 0 {
			t.Errorf("redelivery of a deployed delivery: redelivery %v, status %s, deploy %d", again.Redelivery, again.Status, again.DeployID)
		}
		if fresh.Redelivery || !copy.Redelivery {
			t.Errorf("redelivery flags %v, %v; want false, true", fresh.Redelivery, copy.Redelivery)
		}
		if fresh.Status != DeliveryAccepted || copy.Status != DeliveryAccepted || fresh.DeployID == 0 || copy.DeployID != fresh.DeployID {
			t.Errorf("fresh and its copy: %s→%d, %s→%d; want both accepted into one deploy", fresh.Status, fresh.DeployID, copy.Status, copy.DeployID)
		}
	})
}

// TestBatchMultiRowIDs: a batch is inserted in multi-row chunks (here 16, 16, 4, 1) with
// ids the writer picks; each delivery must get the id of its own row and payload, as
// SQLite would have numbered them, after rows deleted and re-added.
func TestBatchMultiRowIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, g := range []string{"before-1", "before-2"} {
			if err := s.RecordDelivery(ctx, push("site", g)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.wdb.ExecContext(ctx, `DELETE FROM deliveries WHERE guid = 'before-2'`); err != nil {
			t.Fatal(err)
		}
		var ds []*Delivery
		for i := range 37 {
			d := push([]string{"site", "blog"}[i%2], fmt.Sprintf("multi-%d", i))
			d.Payload = []byte(fmt.Sprintf(`{"ref":"refs/heads/main","n":%d}`, i))
			if i%5 == 0 {
				d.Payload = nil
			}
			ds = append(ds, d)
		}
		batch := writeReqs(t, s, ds...)
		for i, err := range s.batch.write(batch) {
			if err != nil {
				t.Fatalf("delivery %d: %v", i, err)
			}
		}
		for i, r := range batch {
			want := int64(i + 2) // after before-1; before-2's id is free again, as SQLite reuses it
			if s.pg {
				want = int64(i + 3) // a sequence never gives an id twice
			}
			if r.d.ID != want {
				t.Errorf("delivery %d: id %d, want %d", i, r.d.ID, want)
			}
			got, err := s.Delivery(ctx, r.d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.GUID != r.d.GUID || string(got.Payload) != string(r.d.Payload) || got.DeployID != r.d.DeployID {
				t.Errorf("delivery %d: row %q %q deploy %d, want %q %q deploy %d", i, got.GUID, got.Payload,
					got.DeployID, r.d.GUID, r.d.Payload, r.d.DeployID)
			}
		}
		if batch[0].d.DeployID == batch[1].d.DeployID || batch[0].d.DeployID != batch[2].d.DeployID {
			t.Errorf("deploys %d, %d, %d: want one per repository", batch[0].d.DeployID, batch[1].d.DeployID, batch[2].d.DeployID)
		}
	})
}

// writeReqs prepares ds as RecordDelivery would, received now by s's clock, for the
// batch writer.
func writeReqs(t *testing.T, s *Store, ds ...*Delivery) []*writeReq {
	t.Helper()
	batch := make([]*writeReq, 0, len(ds))
	for _, d := range ds {
		d.ReceivedAt = s.now()
		r, err := newWriteReq(d)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, r)
	}
	return batch
}

// breakCommits makes every later transaction that records a delivery fail at COMMIT, not
// before: each delivery row adds a row whose deferred foreign key names no deploy, which
// the database checks only when the transaction commits.
func breakCommits(t *testing.T, s *Store) {
	t.Helper()
	stmts := []string{
		`CREATE TABLE commit_breaker (deploy_id INTEGER REFERENCES deploys(id) DEFERRABLE INITIALLY DEFERRED)`,
		`CREATE TRIGGER break_commit AFTER INSERT ON deliveries BEGIN INSERT INTO commit_breaker VALUES (-1); END`,
	}
	if s.pg {
		stmts = []string{
			`CREATE TABLE commit_breaker (deploy_id BIGINT REFERENCES deploys(id) DEFERRABLE INITIALLY DEFERRED)`,
			`CREATE FUNCTION break_commit() RETURNS trigger LANGUAGE plpgsql AS
				$$ BEGIN INSERT INTO commit_breaker VALUES (-1); RETURN NEW; END $$`,
			`CREATE TRIGGER break_commit AFTER INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION break_commit()`,
		}
	}
	for _, q := range stmts {
		if _, err := s.wdb.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFailedCommitIsAnError: when the COMMIT itself fails, every delivery of the
// transaction gets the error (so its sender gets a 5xx, not 2xx, and the forge retries),
// keeps no id, and nothing of it is in the database: alone, in the one-by-one path
// (writeEach, with its savepoints) and in the whole-batch path.
func TestFailedCommitIsAnError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		breakCommits(t, s)
		check := func(path string, errs []error, ds ...*Delivery) {
			t.Helper()
			for i, d := range ds {
				if errs[i] == nil || !strings.Contains(errs[i].Error(), "commit") {
					t.Errorf("%s: delivery %d: error %v, want the failed commit", path, i, errs[i])
				}
				if d.ID != 0 || d.DeployID != 0 {
					t.Errorf("%s: delivery %d kept ids %d, %d of a transaction that did not commit", path, i, d.ID, d.DeployID)
				}
			}
		}
		alone := push("site", "alone")
		check("RecordDelivery", []error{s.RecordDelivery(ctx, alone)}, alone)
		a, b := push("site", "each-1"), push("blog", "each-2")
		check("writeEach", s.batch.writeEach(writeReqs(t, s, a, b)), a, b)
		c, d := push("site", "all-1"), push("blog", "all-2")
		check("write", s.batch.write(writeReqs(t, s, c, d)), c, d)

		var n int
		if err := s.wdb.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM deliveries) + (SELECT count(*) FROM deploys)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d delivery and deploy rows survived failed commits", n)
		}
	})
}
