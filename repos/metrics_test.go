package repos

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// TestOnDeployFinished: the observer hears of each deploy once it is recorded, with the
// deploy as stored (id, repository, status, commits, error) and its duration.
func TestOnDeployFinished(t *testing.T) {
	e := newWorkerEnv(t)
	type call struct {
		got      store.Deploy
		took     time.Duration
		recorded store.Deploy // the deploy as the store had it when the observer ran
	}
	var mu sync.Mutex
	var calls []call
	var deployID int64
	m := NewManager(e.store, []Repo{
		{Spec: checkout.Spec{Name: "site", Path: e.checkout, Branch: "main"}, Commands: []string{"true"}, Timeout: time.Minute},
		{Spec: checkout.Spec{Name: "broken", Path: e.checkout, Branch: "main"}, Commands: []string{"exit 3"}, Timeout: time.Minute},
	}, Options{
		Workers: 1,
		Env:     []string{"PATH=" + os.Getenv("PATH")},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnDeployFinished: func(got store.Deploy, took time.Duration) {
			rec := e.deploy(t, deployID)
			mu.Lock()
			calls = append(calls, call{got, took, rec})
			mu.Unlock()
		},
	})
	for _, repo := range []string{"site", "broken"} {
		deployID = e.queue(t, repo, "guid-"+repo).DeployID
		if !m.workers[repo].runOnce() {
			t.Fatalf("%s: nothing claimed", repo)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("observer called %d times, want 2", len(calls))
	}
	for i, want := range []struct{ repo, status string }{{"site", store.DeploySucceeded}, {"broken", store.DeployFailed}} {
		c := calls[i]
		if c.got.Repo != want.repo || c.got.Status != want.status || c.recorded.Status != want.status ||
			c.got.ID != c.recorded.ID || c.got.ToCommit != c.recorded.ToCommit || c.got.ToCommit == "" ||
			c.got.Error != c.recorded.Error || c.got.FinishedAt.IsZero() || c.took <= 0 {
			t.Fatalf("call %d: observer got %+v after %s; the store had %+v", i, c.got, c.took, c.recorded)
		}
	}
	if !strings.Contains(calls[1].got.Error, "exit status 3") {
		t.Fatalf("failed deploy's error %q does not say why", calls[1].got.Error)
	}
}
