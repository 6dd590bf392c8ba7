// This file owns rolling a repository back to a commit (which pins it there) and finding a
// commit an operator names in the branch's history.
package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// resolveCommit finds want in the branch's history as fetched into r's checkout; for a
// tag target, in the history of the tags it deployed, and want may be one of those tags'
// names. A node that does not deploy the repository has no checkout to look in.
func (a *App) resolveCommit(r Repo, want string) (string, error) {
	resolve := func() (string, error) { return checkout.ResolveCommit(r.Path, r.Branch, want) }
	if r.Tags != "" {
		// A tag target's deploys follow tags, not the branch: a commit of an earlier tag
		// (maybe on another line than the live tag's) or a tag's name, as the worker
		// finds it (checkout's resolveInOwnHistory).
		resolve = func() (string, error) { return checkout.ResolveTagCommit(r.Path, want) }
	}
	commit, err := resolve()
	if err != nil && a.reconciler != nil && !a.reconciler.Deploys(r.Name) {
		return "", notDeployedHere(r.Name)
	}
	if err != nil {
		msg := err.Error()
		if !errors.Is(err, checkout.ErrUnknownCommit) {
			msg = fmt.Sprintf("the history of %s cannot be read: %v", r.Name, err)
		}
		return "", &Error{UnknownCommit, "unknown_commit", msg}
	}
	return commit, nil
}

// LiveCommit is what rollback and pin take as live on name (the LiveOrHead rule of
// status.go); "" when neither is known or name is not configured.
func (a *App) LiveCommit(ctx context.Context, name string) (string, error) {
	r, ok := a.repo(name)
	if !ok {
		return "", nil
	}
	return a.liveCommit(ctx, r)
}

// liveCommit is what is live on r: the newest succeeded deploy's commit, else the
// checkout's HEAD; "" when neither is known.
func (a *App) liveCommit(ctx context.Context, r Repo) (string, error) {
	st, err := a.store.RepoState(ctx, r.Name)
	if err != nil {
		return "", err
	}
	return liveOrHead(st, func() string {
		head, _, _ := checkout.Head(r.Path)
		return head
	}), nil
}

// Rollback queues a deploy of name that moves the checkout to commit (or, when commit is
// "", to the commit live before the live one), and pins the repository there.
func (a *App) Rollback(ctx context.Context, name, commit string) (store.Deploy, error) {
	return a.RollbackForced(ctx, name, commit, false)
}

// RollbackForced is Rollback; unless force, it refuses (bad_commit) a commit that failed
// its health check on name.
func (a *App) RollbackForced(ctx context.Context, name, commit string, force bool) (store.Deploy, error) {
	r, ok := a.repo(name)
	if !ok {
		return store.Deploy{}, unknownRepo(name)
	}
	live, err := a.liveCommit(ctx, r)
	if err != nil {
		return store.Deploy{}, err
	}
	if commit == "" {
		commit, err = a.store.PreviousCommit(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return store.Deploy{}, &Error{NoPreviousDeploy, "no_previous_deploy",
				"no earlier succeeded deploy of another commit to roll back to; name a commit"}
		}
		if err != nil {
			return store.Deploy{}, err
		}
	}
	if commit, err = a.resolveCommit(r, commit); err != nil {
		return store.Deploy{}, err
	}
	if !force {
		if err := a.checkNotBad(ctx, name, commit); err != nil {
			return store.Deploy{}, err
		}
	}
	reason := fmt.Sprintf("rollback to %s requested by an operator (live %s); the repository is pinned there",
		short(commit), orNothing(short(live)))
	dp, err := a.store.EnqueueRollback(ctx, name, commit, reason)
	if err != nil {
		return store.Deploy{}, err
	}
	a.log.Warn("rollback queued; repository pinned", "repo", name, "deploy_id", dp.ID, "commit", short(commit), "live", short(live))
	return dp, nil
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
