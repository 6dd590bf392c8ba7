// This file owns a manual deploy: queue it and wake the worker.
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/store"
)

// DeployNow queues a manual deploy of name (joining one already queued) and wakes its
// worker; for a target with require_checks, the deploy waits for the checks of origin's
// head (DeployManual without force).
func (a *App) DeployNow(ctx context.Context, name string) (store.Deploy, error) {
	return a.DeployManual(ctx, name, false)
}

// originHeads is the worker side when it can look up origin's head (*repos.Manager).
type originHeads interface {
	OriginHead(ctx context.Context, repo string) (string, error)
}

// DeployManual queues a manual deploy of name. Unless force, it refuses (bad_commit) while
// origin's head is a bad commit of name, and for a target with require_checks it looks up
// origin's head and queues a deploy that waits for that commit's checks; with force, as
// for any other target, a deploy of the branch head as fetched, at once.
func (a *App) DeployManual(ctx context.Context, name string, force bool) (store.Deploy, error) {
	if _, ok := a.repo(name); !ok {
		return store.Deploy{}, fmt.Errorf("repository %q: %w", name, store.ErrNotFound)
	}
	if !force {
		if err := a.checkHeadNotBad(ctx, name); err != nil {
			return store.Deploy{}, err
		}
	}
	if !force && a.store.RequiresChecks(name) {
		heads, ok := a.workers.(originHeads)
		if !ok {
			return store.Deploy{}, &Error{Unavailable, "unavailable", "looking up origin is not available in this process"}
		}
		head, err := heads.OriginHead(ctx, name)
		switch {
		case errors.Is(err, repos.ErrUnknownRepo):
			return store.Deploy{}, notDeployedHere(name)
		case errors.Is(err, repos.ErrOriginLookUp):
			return store.Deploy{}, &Error{Unavailable, "origin_unreachable",
				fmt.Sprintf("origin's head of %q could not be looked up, so its checks cannot be waited for: %v; "+
					`send {"force": true} to deploy without them`, name, err)}
		case err != nil:
			return store.Deploy{}, err
		}
		dp, err := a.store.EnqueueManualWaiting(ctx, name, head)
		if err != nil {
			return store.Deploy{}, err
		}
		a.log.Info("manual deploy waits for the checks of origin's head", "deploy_id", dp.ID, "repo", name, "commit", head)
		return dp, nil
	}
	dp, err := a.store.EnqueueManual(ctx, name)
	if err != nil {
		return store.Deploy{}, err
	}
	a.log.Info("manual deploy queued", "deploy_id", dp.ID, "repo", name, "force", force)
	return dp, nil
}
