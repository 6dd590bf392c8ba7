// Wake once (plan §3.2): a deploy queued on this node wakes its worker through the store's
// one subscriber, after the commit, and the sweep runs what a lost wake-up left.

package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/gatewaytest"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// push sends a signed push of a new commit to g's site and returns the deploy it queued.
func push(t *testing.T, g *gatewaytest.Gateway) int64 {
	t.Helper()
	before := g.Origin["site"].Head()
	after := g.Origin["site"].Commit(map[string]string{"index.html": time.Now().String() + "\n"}, "next")
	resp, out := g.Send(gatewaytest.Delivery{Body: testkit.Push(t, "refs/heads/main", before, after, gatewaytest.Repository)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push answered %d %v\n%s", resp.StatusCode, out, g.Logs.String())
	}
	return int64(out["deploy_id"].(float64))
}

// succeeded says whether deploy id of g succeeded.
func succeeded(g *gatewaytest.Gateway, id int64) func() bool {
	return func() bool {
		dp, err := g.Store.Deploy(context.Background(), id)
		return err == nil && dp.Status == store.DeploySucceeded
	}
}

// TestSweepRunsADeployWhoseWakeupWasDropped: with the subscriber dropping every wake-up,
// the sweep alone still runs the deploy a signed push queued.
func TestSweepRunsADeployWhoseWakeupWasDropped(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.DropWakeups(), gatewaytest.SweepEvery(200*time.Millisecond))
	id := push(t, g)
	testkit.Eventually(t, 20*time.Second, "the sweep to run the pushed deploy", succeeded(g, id))
}

// TestQueuedDeployWakesItsWorkerAtOnce: with a sweep too slow to matter, the deploys a push
// and a manual deploy queue run within seconds: the store's subscriber woke the worker, and
// after the commit. A wake-up before it would, on PostgreSQL, find nothing to claim yet and
// leave the deploy to the sweep, or to the fleet watch's poll of the queue: within
// store.QueuePollEvery (5 s), hence that case's shorter deadline. On SQLite the claim waits
// for the one write connection, so it is PostgreSQL that tells.
func TestQueuedDeployWakesItsWorkerAtOnce(t *testing.T) {
	for _, db := range []struct {
		name   string
		within time.Duration
		opts   []gatewaytest.Option
	}{
		{"sqlite", 10 * time.Second, nil},
		{"postgres", 4 * time.Second, []gatewaytest.Option{gatewaytest.Postgres()}},
	} {
		t.Run(db.name, func(t *testing.T) {
			g := gatewaytest.New(t, append(db.opts, gatewaytest.SweepEvery(time.Hour))...)
			id := push(t, g)
			testkit.Eventually(t, db.within, "the pushed deploy to run", succeeded(g, id))
			var dp map[string]any
			if code := gatewaytest.API(t, "POST", g.URL+"/api/v1/repos/site/deploy", "", &dp); code != http.StatusAccepted {
				t.Fatalf("manual deploy answered %d %v", code, dp)
			}
			testkit.Eventually(t, db.within, "the manual deploy to run", succeeded(g, int64(dp["id"].(float64))))
		})
	}
}
