package store

import (
	"context"
	"testing"
)

// TestBatchKeepsGoodDeliveries writes a batch whose middle delivery breaks a constraint:
// the batch is retried with a savepoint per delivery, so the others are recorded (and
// share one deploy) and only the bad one fails, unchanged.
func TestBatchKeepsGoodDeliveries(t *testing.T) {
	s := openTest(t)
	good1, bad, good2 := push("site", "g-1"), push("site", "g-2"), push("site", "g-3")
	bad.Status = "bogus" // not allowed by the table's CHECK
	var batch []*writeReq
	for _, d := range []*Delivery{good1, bad, good2} {
		d.ReceivedAt = s.now()
		r, err := newWriteReq(d)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, r)
	}
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
}

// TestBatchRollbackForgetsDeploy: a delivery that queues its repository's deploy and then
// fails is rolled back with that deploy, so the next delivery of the batch queues a new
// one rather than joining the one undone.
func TestBatchRollbackForgetsDeploy(t *testing.T) {
	s := openTest(t)
	bad, good := push("site", "g-1"), push("site", "g-2")
	bad.Signature = "bogus" // accepted, so it queues a deploy, then fails the table's CHECK
	var batch []*writeReq
	for _, d := range []*Delivery{bad, good} {
		d.ReceivedAt = s.now()
		r, err := newWriteReq(d)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, r)
	}
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
}
