// This file owns the slow sweep: a deploy queued with no wake-up still runs.
package repos

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// TestSweepRunsAQueuedDeployNobodyWoke: a deploy queued after Start, with no Wake for it,
// is found by the sweep and runs within a few of its periods.
func TestSweepRunsAQueuedDeployNobodyWoke(t *testing.T) {
	e := newWorkerEnv(t)
	to := e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}, Commands: []string{"true"}})
	m.sweepEvery = 200 * time.Millisecond
	m.Start()
	defer m.Stop(30 * time.Second)
	d := e.queue(t, "site", "no-wake") // after Start, which woke no one: nothing was queued
	testkit.Eventually(t, 10*time.Second, "the sweep to run the queued deploy", func() bool {
		return e.deploy(t, d.DeployID).Status == store.DeploySucceeded
	})
	if got := testkit.CheckoutHead(t, e.checkout); got != to {
		t.Fatalf("checkout at %s, want %s", got, to)
	}
}

// TestSweepEveryDefault: unset, the sweep runs every DefaultSweepEvery (30 s).
func TestSweepEveryDefault(t *testing.T) {
	e := newWorkerEnv(t)
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}})
	if m.sweepEvery != DefaultSweepEvery || DefaultSweepEvery != 30*time.Second {
		t.Fatalf("sweep every %s (default %s), want 30s", m.sweepEvery, DefaultSweepEvery)
	}
}
