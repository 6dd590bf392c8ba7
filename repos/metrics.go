package repos

import "time"

// DeployObserver learns of each finished deploy: the repository, its status (succeeded,
// failed or interrupted) and how long it took. The gateway feeds its metrics with it.
type DeployObserver func(repo, status string, took time.Duration)

// observeDeploy tells the observer, if any. It runs on the worker's goroutine after the
// result is recorded, so a slow observer delays only that repository's next deploy.
func (m *Manager) observeDeploy(repo, status string, took time.Duration) {
	if m.observe != nil {
		m.observe(repo, status, took)
	}
}
