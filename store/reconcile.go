// Reconcile: queue a deploy of origin's head when this node's checkout drifted from it.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Drift is what Reconcile found out, and did, about one repository.
type Drift struct {
	Live   string // the live commit: the newest succeeded deploy's, else the checkout's HEAD
	Newest string // to_commit of the newest deploy that is not queued
	// NewestSkipped says that deploy was skipped (paths): origin's head was looked at
	// and nothing the target watches changed, which counts as in sync.
	NewestSkipped bool
	Pin           *Pin  // when pinned
	Busy          bool  // a deploy is queued or running
	InFlight      int64 // when Busy, that deploy (the queued one, else the running one)
	DeployID      int64 // the reconcile deploy queued, 0 when none
	// Bad, when origin's head is a bad commit of the target, says why it is not deployed.
	Bad string
}

// Reconcile queues a deploy of repo on this node with trigger "reconcile" when origin
// (origin's branch head, a full hash) differs from this node's live commit and from its
// newest deploy's to_commit, nothing is queued on this node nor running there towards
// origin's head (see busySQL), and repo is not pinned; all checked in the transaction that queues, so a push or a pin arriving
// meanwhile cannot race it. checkoutHead stands for the live commit when no deploy has
// succeeded on this node yet. With neither, nothing is queued (a repository not cloned yet
// is cloned by its first push or manual deploy), unless another node of the fleet has
// deployed repo: this node joined late, or was away, and catches up. reason words the
// deploy's reason from the live commit ("" when there is none).
func (s *Store) Reconcile(ctx context.Context, repo, origin, checkoutHead string, reason func(live string) string) (Drift, error) {
	return s.ReconcileRef(ctx, repo, origin, "", checkoutHead, reason)
}

// ReconcileRef is Reconcile for a deploy of ref (refs/tags/NAME for a tag target, whose
// origin is that tag's commit): the deploy it queues carries ref, so the worker fetches it.
func (s *Store) ReconcileRef(ctx context.Context, repo, origin, ref, checkoutHead string, reason func(live string) string) (Drift, error) {
	var d Drift
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	// PostgreSQL: a delivery queueing a deploy of repo meanwhile waits, and so cannot
	// race the checks below (SQLite has one writer).
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	if d.Pin, err = s.pinOf(ctx, tx, repo); err != nil {
		return d, err
	}
	// Two conditions with one status each, so each is found in its partial index
	// (deploys_one_queued, deploys_running) rather than in the repository's history.
	if err := s.row(ctx, tx, busy, s.node, repo, s.node, repo, origin).Scan(&d.InFlight); err != nil {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	waits := s.waitsForChecks(repo, TriggerReconcile)
	if waits && d.InFlight == 0 {
		var commit string
		err := s.row(ctx, tx, waitingOfSQL, s.node, repo).Scan(&d.InFlight, &commit)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return d, fmt.Errorf("reconcile %s: %w", repo, err)
		}
	}
	d.Busy = d.InFlight != 0
	err = s.row(ctx, tx, liveCommitSQL, s.node, repo).Scan(&d.Live)
	if errors.Is(err, sql.ErrNoRows) {
		d.Live, err = checkoutHead, nil
	}
	if err != nil {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	var newestStatus string
	err = s.row(ctx, tx, lastTargetSQL, s.node, repo).Scan(&d.Newest, &newestStatus)
	d.NewestSkipped = newestStatus == DeploySkipped
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	if origin == d.Live || origin == d.Newest || d.Busy || d.Pin != nil {
		return d, nil
	}
	if bad, err := s.badCommit(ctx, tx, repo, origin); err == nil {
		d.Bad = bad.Reason
		return d, nil
	} else if !errors.Is(err, ErrNotFound) {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	if d.Live == "" {
		// Nothing live here (never deployed, no checkout yet): there is nothing to drift
		// from, and the first push or manual deploy clones it; unless the repository is
		// live on another node, which this one must catch up with.
		var elsewhere int
		if err := s.row(ctx, tx, deployedElsewhereSQL,
			repo, s.node).Scan(&elsewhere); err != nil {
			return d, fmt.Errorf("reconcile %s: %w", repo, err)
		}
		if elsewhere == 0 {
			return d, nil
		}
	}
	if waits {
		// Waits for origin's head's checks; the checker queues it (no worker wakes now).
		if d.DeployID, err = s.enqueueWaiting(ctx, tx, repo, s.node, TriggerReconcile, "", origin, reason(d.Live)); err != nil {
			return d, fmt.Errorf("reconcile %s: %w", repo, err)
		}
		if err := s.commit(tx); err != nil {
			return Drift{}, fmt.Errorf("reconcile %s: commit: %w", repo, err)
		}
		return d, nil
	}
	err = s.row(ctx, tx, reconcileDeploySQL,
		repo, TriggerReconcile, ref, s.now(), reason(d.Live), s.node).Scan(&d.DeployID)
	if err != nil {
		return d, fmt.Errorf("reconcile %s: queue: %w", repo, err)
	}
	// Inserted directly, not through enqueue: noted here for the subscriber.
	if err := s.noteQueued(ctx, tx, s.node, repo); err != nil {
		return d, fmt.Errorf("reconcile %s: queue: %w", repo, err)
	}
	if err := s.commit(tx); err != nil {
		return Drift{}, fmt.Errorf("reconcile %s: commit: %w", repo, err)
	}
	return d, nil
}

func short(hash string) string {
	if len(hash) > 7 {
		return hash[:7]
	}
	return hash
}

// LiveDeploy returns this node's live commit of repo and the ref it was deployed from (the
// newest succeeded deploy's; a skipped one is not live), or ErrNotFound when none
// succeeded. A tag target's live tag is that ref when it starts with refs/tags/.
func (s *Store) LiveDeploy(ctx context.Context, repo string) (commit, ref string, err error) {
	err = s.row(ctx, s.rdb, liveDeploySQL, s.node, repo).Scan(&commit, &ref)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("live deploy of %s: %w", repo, ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("live deploy of %s: %w", repo, err)
	}
	return commit, ref, nil
}

// JoinedRefs returns the refs of the deliveries a deploy joined, newest first (repeats
// kept). A deploy's own ref is its first delivery's; a tag target's worker reads these to
// deploy the newest tag pushed while the deploy was queued.
func (s *Store) JoinedRefs(ctx context.Context, deployID int64) ([]string, error) {
	rows, err := s.rows(ctx, s.rdb, joinedRefsSQL, deployID, deployID)
	if err != nil {
		return nil, fmt.Errorf("refs of deploy %d: %w", deployID, err)
	}
	refs, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("refs of deploy %d: %w", deployID, err)
	}
	return refs, nil
}
