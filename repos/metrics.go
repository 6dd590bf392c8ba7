package repos

import (
	"time"

	"github.com/hookgate/hookgate/store"
)

// DeployObserver learns of each finished deploy once its result is recorded: the deploy
// as stored (status succeeded, failed or interrupted, commits, error, times) and how long
// it took. The gateway feeds its metrics and notifications with it.
type DeployObserver func(dp store.Deploy, took time.Duration)

// observeDeploy tells the observer, if any. It runs on the worker's goroutine after the
// result is recorded, so a slow observer delays only that repository's next deploy.
func (m *Manager) observeDeploy(dp store.Deploy, took time.Duration) {
	if m.observe != nil {
		m.observe(dp, took)
	}
}
