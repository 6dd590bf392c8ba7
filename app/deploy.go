// This file owns a manual deploy: queue it and wake the worker.
package app

import (
	"context"
	"fmt"

	"github.com/hookgate/hookgate/store"
)

// DeployNow queues a manual deploy of name (joining one already queued) and wakes its
// worker.
func (a *App) DeployNow(ctx context.Context, name string) (store.Deploy, error) {
	return a.DeployNowForced(ctx, name, false)
}

// DeployNowForced is DeployNow; unless force, it refuses (bad_commit) while origin's head
// is a bad commit of name.
func (a *App) DeployNowForced(ctx context.Context, name string, force bool) (store.Deploy, error) {
	if _, ok := a.repo(name); !ok {
		return store.Deploy{}, fmt.Errorf("repository %q: %w", name, store.ErrNotFound)
	}
	if !force {
		if err := a.checkHeadNotBad(ctx, name); err != nil {
			return store.Deploy{}, err
		}
	}
	dp, err := a.store.EnqueueManual(ctx, name)
	if err != nil {
		return store.Deploy{}, err
	}
	a.log.Info("manual deploy queued", "deploy_id", dp.ID, "repo", name)
	return dp, nil
}
