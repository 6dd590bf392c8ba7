package gatewaytest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestNewDeploysASignedPush: the default gateway takes a push signed by Send and its worker
// brings the checkout to the pushed commit.
func TestNewDeploysASignedPush(t *testing.T) {
	g := gatewaytest.New(t)
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v\n%s", resp.StatusCode, out, g.Logs.String())
	}
	id := int64(out["deploy_id"].(float64))
	testkit.Eventually(t, 30*time.Second, "the deploy to succeed", func() bool {
		dp, err := g.Store.Deploy(context.Background(), id)
		return err == nil && dp.Status == store.DeploySucceeded
	})
	if got := testkit.CheckoutHead(t, g.Checkout["site"]); got != after {
		t.Errorf("checkout at %s, want %s", got, after)
	}
}

// TestDropWakeupsLeavesTheSweep: with every wake-up dropped, the sweep alone runs the
// deploy a push queued.
func TestDropWakeupsLeavesTheSweep(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.DropWakeups(), gatewaytest.SweepEvery(200*time.Millisecond))
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	id := int64(out["deploy_id"].(float64))
	testkit.Eventually(t, 30*time.Second, "the sweep to run the deploy", func() bool {
		dp, err := g.Store.Deploy(context.Background(), id)
		return err == nil && dp.Status == store.DeploySucceeded
	})
}

// TestManualStartsNoWorkers: a Manual gateway queues a push's deploy and runs it only once
// the test starts the workers.
func TestManualStartsNoWorkers(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.Manual())
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	id := int64(out["deploy_id"].(float64))
	// A check that nothing happens needs a window: a started worker, woken by the store as
	// the delivery committed, claims within milliseconds; none may have claimed in 200 ms.
	time.Sleep(200 * time.Millisecond)
	if dp, err := g.Store.Deploy(context.Background(), id); err != nil || dp.Status != store.DeployQueued {
		t.Fatalf("before StartWorkers the deploy is %+v (%v), want queued", dp, err)
	}
	g.StartWorkers()
	testkit.Eventually(t, 30*time.Second, "the deploy to run once the workers start", func() bool {
		dp, err := g.Store.Deploy(context.Background(), id)
		return err == nil && dp.Status == store.DeploySucceeded
	})
}

// TestJoinOnPostgres: two gateways on one PostgreSQL database, the second joined to the
// first, each deploy a push received by the first to their own checkout.
func TestJoinOnPostgres(t *testing.T) {
	a := gatewaytest.New(t, gatewaytest.Postgres(), gatewaytest.Node("web1"))
	b := gatewaytest.New(t, gatewaytest.Join(a), gatewaytest.Node("web2"))
	before := a.Origin["site"].Head()
	after := a.Origin["site"].Commit(map[string]string{"index.html": "v2\n"}, "v2")
	resp, out := a.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v", resp.StatusCode, out)
	}
	for _, g := range []*gatewaytest.Gateway{a, b} {
		testkit.Eventually(t, 30*time.Second, "each node's checkout to reach the pushed commit", func() bool {
			return testkit.CheckoutHead(t, g.Checkout["site"]) == after
		})
	}
}
