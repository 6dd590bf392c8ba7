// This file owns what an operator does with health checks: run one now (Verify), list
// and clear a target's bad commits, and the refusal to deploy a bad commit unforced.
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hookgate/hookgate/repos"
	"github.com/hookgate/hookgate/store"
)

// HealthChecker is the worker side of health checks (the real repos.Manager): origin's
// head looked up now, and a check run on demand.
type HealthChecker interface {
	OriginHead(ctx context.Context, repo string) (string, error)
	Verify(ctx context.Context, repo string) (healthy bool, probes []store.Probe, err error)
}

// badCommitError refuses to deploy a bad commit unforced.
func badCommitError(b store.BadCommit) error {
	return &Error{BadCommit, "bad_commit",
		fmt.Sprintf("%s; send {\"force\": true} to deploy it anyway, or clear it (DELETE /api/v1/repos/%s/bad/%s)",
			b.Reason, b.Repo, b.Commit)}
}

// checkNotBad refuses (bad_commit) when commit is bad for name.
func (a *App) checkNotBad(ctx context.Context, name, commit string) error {
	b, err := a.store.BadCommit(ctx, name, commit)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return badCommitError(b)
}

// checkHeadNotBad refuses a manual deploy of name while origin's head is one of its bad
// commits. Only when it has some is origin looked up; a failed look-up lets the deploy go
// (its worker looks again before it moves, see repos' avoidBad; a manual deploy is not
// stopped there, so a look-up that fails here is the only gap, and it is logged).
func (a *App) checkHeadNotBad(ctx context.Context, name string) error {
	bads, err := a.store.BadCommits(ctx, name)
	if err != nil || len(bads) == 0 || a.health == nil {
		return err
	}
	head, err := a.health.OriginHead(ctx, name)
	if err != nil {
		a.log.Warn("manual deploy: origin not looked up for bad commits", "repo", name, "err", err)
		return nil
	}
	for _, b := range bads {
		if b.Commit == head {
			return badCommitError(b)
		}
	}
	return nil
}

// BadCommits lists name's bad commits, newest first.
func (a *App) BadCommits(ctx context.Context, name string) ([]store.BadCommit, error) {
	if _, ok := a.repo(name); !ok {
		return nil, unknownRepo(name)
	}
	return a.store.BadCommits(ctx, name)
}

// ClearBadCommit forgets that commit (a full hash, or a prefix of at least 7 of one of the
// bad commits) is bad for name; an unknown repository or commit is UnknownRepo or
// UnknownBadCommit.
func (a *App) ClearBadCommit(ctx context.Context, name, commit string) error {
	bads, err := a.BadCommits(ctx, name)
	if err != nil {
		return err
	}
	commit = strings.ToLower(strings.TrimSpace(commit))
	for _, b := range bads {
		if b.Commit == commit || (len(commit) >= 7 && strings.HasPrefix(b.Commit, commit)) {
			if err := a.store.ClearBadCommit(ctx, name, b.Commit); err != nil {
				return err
			}
			a.log.Warn("bad commit cleared", "repo", name, "commit", short(b.Commit))
			return nil
		}
	}
	return &Error{UnknownBadCommit, "unknown_bad_commit", fmt.Sprintf("%q is not a bad commit of %s", commit, name)}
}

// healthPinReason says why name is pinned by health at commit: its automatic rollback
// there failed, and how (the deploy that did so, for a link).
func (a *App) healthPinReason(ctx context.Context, name, commit string) (string, int64, error) {
	rb, err := a.store.FailedRollback(ctx, name, commit)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Sprintf("the automatic rollback to %.7s failed (its deploy is no longer kept)", commit), 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("the automatic rollback to %.7s (deploy %d, after deploy %d failed its health check) failed: %s",
		commit, rb.ID, rb.RollbackOf, rb.Error), rb.ID, nil
}

// Verify runs name's health check now against what is live (see repos.Manager.Verify).
func (a *App) Verify(ctx context.Context, name string) (bool, []store.Probe, error) {
	if _, ok := a.repo(name); !ok {
		return false, nil, unknownRepo(name)
	}
	if a.health == nil {
		return false, nil, &Error{Unavailable, "unavailable", "health checks need the deploy workers"}
	}
	healthy, probes, err := a.health.Verify(ctx, name)
	switch {
	case errors.Is(err, repos.ErrNotHere):
		return false, nil, notDeployedHere(name)
	case errors.Is(err, repos.ErrNoHealthCheck):
		return false, nil, &Error{NoHealthCheck, "no_health_check",
			fmt.Sprintf("%s has no [repos.%s.health] check configured", name, name)}
	case errors.Is(err, repos.ErrDeployRunning):
		return false, nil, &Error{DeployRunning, "deploy_running",
			err.Error() + "; its own health check answers (GET /api/v1/deploys/ID), or verify again once it ends"}
	}
	return healthy, probes, err
}

var _ HealthChecker = (*repos.Manager)(nil)
