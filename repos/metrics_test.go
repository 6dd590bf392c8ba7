package repos

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hookgate/hookgate/store"
)

// TestOnDeployFinished: the observer hears of each deploy once it is recorded, with its
// repository, status and duration.
func TestOnDeployFinished(t *testing.T) {
	e := newWorkerEnv(t)
	type call struct {
		repo, status string
		took         time.Duration
		recorded     string // the status the store had when the observer ran
	}
	var mu sync.Mutex
	var calls []call
	var deployID int64
	m := NewManager(e.store, []Repo{
		{Spec: Spec{Name: "site", Path: e.checkout, Branch: "main"}, Commands: []string{"true"}, Timeout: time.Minute},
		{Spec: Spec{Name: "broken", Path: e.checkout, Branch: "main"}, Commands: []string{"exit 3"}, Timeout: time.Minute},
	}, Options{
		Workers: 1,
		Env:     []string{"PATH=" + os.Getenv("PATH")},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnDeployFinished: func(repo, status string, took time.Duration) {
			dp := e.deploy(t, deployID)
			mu.Lock()
			calls = append(calls, call{repo, status, took, dp.Status})
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
	if len(calls) != 2 ||
		calls[0].repo != "site" || calls[0].status != store.DeploySucceeded || calls[0].recorded != store.DeploySucceeded ||
		calls[1].repo != "broken" || calls[1].status != store.DeployFailed || calls[1].recorded != store.DeployFailed ||
		calls[0].took <= 0 || calls[1].took <= 0 {
		t.Fatalf("observer calls %+v", calls)
	}
}
