package server_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestOriginFreshAfterADeploy: a look-up of origin made before a push deploy is not shown
// as "origin ahead" of the commit that deploy made live: the deploy's fetch has read
// origin's head, and the repositories page and the API say so until the next poll.
func TestOriginFreshAfterADeploy(t *testing.T) {
	f := newFleet(t, repoSpec{name: "site", commands: []string{gateCommand}})
	// The workers' start-up look-up of origin, out of the way first.
	testkit.Eventually(t, 30*time.Second, "the start-up look-up of origin", func() bool {
		return f.repoJSON()["origin_checked_at"] != nil
	})
	_, first, c1 := f.pushed("site", "v1", nil)
	testkit.Eventually(t, 30*time.Second, "the deploy of c1 to run", func() bool {
		dp, err := f.store.Deploy(context.Background(), first)
		return err == nil && dp.Status == store.DeployRunning
	})
	// A look-up while that deploy runs sees c1 and queues nothing.
	if code, out := f.post("/api/v1/repos/site/reconcile", ""); code != http.StatusOK || out["origin_commit"] != c1 || out["deploy_id"] != nil {
		t.Fatalf("reconcile: %d %v", code, out)
	}
	// c2 is pushed meanwhile; its deploy fetches origin's head, c2, and makes it live.
	_, second, c2 := f.pushed("site", "v2", nil)
	f.releaseAll()
	for _, id := range []int64{first, second} {
		if dp := f.waitDeploy(id); dp.Status != store.DeploySucceeded {
			t.Fatalf("deploy %d %s: %s", id, dp.Status, dp.Error)
		}
	}
	if dp := f.waitDeploy(second); dp.ToCommit != c2 {
		t.Fatalf("second deploy went to %s, want %s", dp.ToCommit, c2)
	}

	body := okPage(t, f.url, "/repos")
	wellFormed(t, body)
	origin := regexp.MustCompile(`(?s)<td data-label="Origin" class="origin">.*?</td>`).FindString(body)
	if strings.Contains(origin, "origin ahead") || !strings.Contains(origin, "in sync") {
		t.Errorf("after a deploy made origin's head live, the Origin column says:\n%s", origin)
	}
	if r := f.repoJSON(); r["origin_commit"] != c2 {
		t.Errorf("API origin_commit %v, want %s (read by the deploy's fetch)", r["origin_commit"], c2)
	}
}
