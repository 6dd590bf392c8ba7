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
	Live     string // the live commit: the newest succeeded deploy's, else the checkout's HEAD
	Newest   string // to_commit of the newest deploy that is not queued
	Pin      *Pin   // when pinned
	Busy     bool   // a deploy is queued or running
	InFlight int64  // when Busy, that deploy (the queued one, else the running one)
	DeployID int64  // the reconcile deploy queued, 0 when none
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
	err = s.row(ctx, tx, lastTargetSQL, s.node, repo).Scan(&d.Newest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	if origin == d.Live || origin == d.Newest || d.Busy || d.Pin != nil {
		return d, nil
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
		repo, TriggerReconcile, s.now(), reason(d.Live), s.node).Scan(&d.DeployID)
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
