// This file owns the object-size bounds through the worker: a delta bomb fails the deploy.
package repos

import (
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// TestDeltaBombFailsTheDeploy: through the worker, the deploy of a push holding a delta bomb
// is recorded failed with the key to raise, its commands never run, and the checkout stays.
func TestDeltaBombFailsTheDeploy(t *testing.T) {
	e := newWorkerEnv(t)
	before := testkit.CheckoutHead(t, e.checkout)
	if _, err := testkit.InstallDeltaBomb(e.origin.Bare, "main", e.origin.Head(), bombBase, bombCopies); err != nil {
		t.Fatal(err)
	}
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout, Limits: smallLimits}, Commands: []string{"echo must not run"}})
	d := e.queue(t, "site", "bomb")
	m.workers["site"].runOnce()
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeployFailed || !strings.Contains(dp.Error, "server.max_object_size (1MB)") || strings.Contains(dp.Log, "must not run\n") {
		t.Fatalf("deploy %s: %q\n%s", dp.Status, dp.Error, dp.Log)
	}
	if testkit.CheckoutHead(t, e.checkout) != before {
		t.Fatal("the checkout moved")
	}
}
