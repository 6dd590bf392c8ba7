// This file owns pinning a repository at a commit and lifting the pin (then reconciling).
package app

import (
	"context"
	"errors"

	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/store"
)

// Pin holds name at commit (default: the live commit) without deploying.
func (a *App) Pin(ctx context.Context, name, commit string) (store.Pin, error) {
	r, ok := a.repo(name)
	if !ok {
		return store.Pin{}, unknownRepo(name)
	}
	var err error
	if commit == "" {
		if commit, err = a.liveCommit(ctx, r); err != nil {
			return store.Pin{}, err
		}
		if commit == "" {
			return store.Pin{}, &Error{NoLiveCommit, "no_live_commit",
				"nothing is deployed and the checkout has no commit; name the commit to pin"}
		}
	} else if commit, err = a.resolveCommit(r, commit); err != nil {
		return store.Pin{}, err
	}
	p, err := a.store.SetPin(ctx, name, commit, store.PinnedByPin)
	if err != nil {
		return store.Pin{}, err
	}
	a.log.Warn("repository pinned", "repo", name, "commit", short(commit))
	return p, nil
}

// Unpinned is what followed an unpin: the reconcile check (nil without a reconciler) or
// why origin could not be checked; Elsewhere when this node does not deploy the
// repository, so the check is left to the nodes that do (the store tells them).
type Unpinned struct {
	Check     *repos.Check
	LookErr   error
	Elsewhere bool
}

// Deploy is the deploy an unpin answers with, 0 when none: the one its check queued, else
// the one already queued or running. A poll or a push can land between lifting the pin and
// the check and queue origin's head first; the operator then waits for that deploy rather
// than being told there is nothing to deploy while one is under way.
func (u Unpinned) Deploy() int64 {
	switch {
	case u.Check == nil:
		return 0
	case u.Check.DeployID != 0:
		return u.Check.DeployID
	}
	return u.Check.InFlight
}

// Unpin lifts name's pin and reconciles at once.
func (a *App) Unpin(ctx context.Context, name string) (Unpinned, error) {
	if _, ok := a.repo(name); !ok {
		return Unpinned{}, unknownRepo(name)
	}
	was, err := a.store.Unpin(ctx, name)
	if err != nil {
		return Unpinned{}, err
	}
	if was {
		a.log.Warn("repository unpinned", "repo", name)
	}
	if a.reconciler == nil {
		return Unpinned{}, nil
	}
	c, err := a.reconciler.ReconcileUnpinned(ctx, name)
	switch {
	case errors.Is(err, repos.ErrOriginLookUp):
		return Unpinned{LookErr: err}, nil
	case errors.Is(err, repos.ErrUnknownRepo):
		// This node does not deploy the repository ([repos.NAME] nodes): the nodes that
		// do reconcile on their own, told by the store.
		return Unpinned{Elsewhere: true}, nil
	case err != nil:
		return Unpinned{}, err
	}
	return Unpinned{Check: &c}, nil
}
