package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ClaimDeploy moves this node's queued deploy of repo to running and returns it, or
// ErrNotFound when nothing is queued (or, which the node's one worker per repository never
// lets happen, a deploy of repo is already running on this node). The conditional update
// is the claim: two claimers can never both win.
func (s *Store) ClaimDeploy(ctx context.Context, repo string) (Deploy, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Deploy{}, fmt.Errorf("claim deploy: %w", err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	var dp Deploy
	err = s.row(ctx, tx, claimDeploy, s.now(), s.node, repo, s.node, repo).Scan(&dp.ID, &dp.Repo, &dp.Status,
		&dp.Trigger, &dp.Ref, &dp.QueuedAt, &dp.StartedAt, &dp.Reason, &dp.Target, &dp.RollbackOf)
	if errors.Is(err, sql.ErrNoRows) {
		return Deploy{}, fmt.Errorf("claim deploy for %s: %w", repo, ErrNotFound)
	}
	if err != nil {
		return Deploy{}, fmt.Errorf("claim deploy for %s: %w", repo, err)
	}
	err = s.row(ctx, tx, claimedGUIDSQL,
		dp.ID, dp.ID).Scan(&dp.DeliveryGUID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Deploy{}, fmt.Errorf("claim deploy %d: %w", dp.ID, err)
	}
	if dp.Target == "" {
		// While pinned every deploy moves to the pinned commit: a recovery re-queued after
		// a rollback was cut off, or a push deploy queued before the pin.
		pin, err := s.pinOf(ctx, tx, repo)
		if err != nil {
			return Deploy{}, fmt.Errorf("claim deploy %d: %w", dp.ID, err)
		}
		if pin != nil {
			dp.Target = pin.Commit
			if dp.Reason == "" {
				dp.Reason = fmt.Sprintf("pinned at %s: moves to the pinned commit, not origin's head", short(pin.Commit))
			}
			if _, err := s.run(ctx, tx, pinnedTargetSQL,
				dp.Target, dp.Reason, dp.ID); err != nil {
				return Deploy{}, fmt.Errorf("claim deploy %d: %w", dp.ID, err)
			}
		}
	}
	if err := s.report(ctx, tx, dp.ID, repo); err != nil {
		return Deploy{}, fmt.Errorf("claim deploy %d: %w", dp.ID, err)
	}
	if err := s.commit(tx); err != nil {
		return Deploy{}, fmt.Errorf("claim deploy %d: commit: %w", dp.ID, err)
	}
	dp.QueuedAt, dp.StartedAt = dp.QueuedAt.UTC(), dp.StartedAt.UTC()
	dp.Node = s.node
	return dp, nil
}

// UpdateDeployProgress stores a running deploy's commits and output so far, so the history
// shows a deploy while it runs.
func (s *Store) UpdateDeployProgress(ctx context.Context, id int64, from, to, log string) error {
	_, err := s.run(ctx, s.wdb, deployProgressSQL, from, to, log, id)
	if err != nil {
		return fmt.Errorf("update deploy %d: %w", id, err)
	}
	return nil
}

// FinishDeploy records how a running deploy ended. An interrupted deploy's repository is
// queued again in the same transaction, so the work it stood for is not lost.
func (s *Store) FinishDeploy(ctx context.Context, id int64, r Result) error {
	switch r.Status {
	case DeploySucceeded, DeployFailed, DeployInterrupted, DeploySuperseded, DeploySkipped:
	default:
		return fmt.Errorf("finish deploy %d: status %q is not final", id, r.Status)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish deploy %d: %w", id, err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	var repo, node string
	err = s.row(ctx, tx, finishDeploySQL,
		r.Status, r.FromCommit, r.ToCommit, r.Error, r.Log, s.now(), id).Scan(&repo, &node)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("finish deploy %d: not running: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("finish deploy %d: %w", id, err)
	}
	if r.Reason != "" {
		if _, err := s.run(ctx, tx, deployReasonSQL, r.Reason, id); err != nil {
			return fmt.Errorf("finish deploy %d: %w", id, err)
		}
	}
	if r.Ref != "" {
		if _, err := s.run(ctx, tx, deployRefSQL, r.Ref, id); err != nil {
			return fmt.Errorf("finish deploy %d: %w", id, err)
		}
	}
	if err := s.report(ctx, tx, id, repo); err != nil {
		return fmt.Errorf("finish deploy %d: %w", id, err)
	}
	if r.Status == DeployInterrupted {
		next, err := s.enqueue(ctx, tx, repo, node, TriggerRecovery, "")
		if err != nil {
			return fmt.Errorf("finish deploy %d: %w", id, err)
		}
		if err := s.carryAutoRollback(ctx, tx, id, next); err != nil {
			return fmt.Errorf("finish deploy %d: %w", id, err)
		}
	}
	if err := s.commit(tx); err != nil {
		return fmt.Errorf("finish deploy %d: commit: %w", id, err)
	}
	return nil
}

// carryAutoRollback makes next, the queued deploy that redoes interrupted's work, an
// automatic rollback when interrupted was one: same target, reason and rollback_of. A
// recovery with no target would deploy origin's head, which is the bad commit the rollback
// was moving away from, and end skipped with the checkout left wherever the cut left it.
// Like EnqueueRollback, a deploy already queued (a push that joined) becomes the rollback.
func (s *Store) carryAutoRollback(ctx context.Context, tx *sql.Tx, interrupted, next int64) error {
	var trigger, target, reason string
	var of int64
	if err := s.row(ctx, tx, deployRollbackSQL, interrupted).Scan(&trigger, &target, &reason, &of); err != nil {
		return fmt.Errorf("recover deploy %d: %w", interrupted, err)
	}
	if trigger != TriggerAutoRollback || target == "" {
		return nil
	}
	if _, err := s.run(ctx, tx, autoRollbackSQL, TriggerAutoRollback, target, reason, of, next); err != nil {
		return fmt.Errorf("recover deploy %d: keep its rollback: %w", interrupted, err)
	}
	return nil
}

// MaxCrashes is how many crashes in a row may cut off the work a deploy stands for: the
// deploy running at the last of them is failed instead of queued again, since a deploy that
// kills the gateway (one that makes it run out of memory) would otherwise do so again at
// every restart and take every other repository's deploys down with it.
const MaxCrashes = 2

// crashFailure is the error of a deploy failed by RecoverCrashed.
var crashFailure = fmt.Sprintf("interrupted by a crash %d times; not retried: the gateway stopped while it ran, "+
	"twice in a row, perhaps because of it; push again or deploy by hand once the cause is fixed", MaxCrashes)

// InterruptRunning marks every deploy running on this node interrupted with reason and
// queues its repository again on this node. Called at the end of a shutdown (deploys that
// did not finish in time); at start-up, RecoverCrashed. Deploys queued or running under no
// node's name (recorded before deploys named their node) are taken as this node's first.
// It returns the repositories re-queued.
func (s *Store) InterruptRunning(ctx context.Context, reason string) ([]string, error) {
	repos, _, err := s.interruptRunning(ctx, reason, false)
	return repos, err
}

// RecoverCrashed is InterruptRunning at start-up, where a deploy still running was cut off
// by a crash: each re-queued deploy carries the count of crashes in a row behind it, and a
// deploy cut off for the MaxCrashes-th time is failed instead, with a reason saying so. It
// returns the repositories re-queued and the deploys failed, for their notifications.
func (s *Store) RecoverCrashed(ctx context.Context, reason string) (requeued []string, failed []Deploy, err error) {
	requeued, ids, err := s.interruptRunning(ctx, reason, true)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		dp, err := s.Deploy(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("recover crashed deploys: %w", err)
		}
		failed = append(failed, dp)
	}
	return requeued, failed, nil
}

func (s *Store) interruptRunning(ctx context.Context, reason string, crash bool) (repos []string, failed []int64, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	if s.node != "" {
		if _, err := s.run(ctx, tx, nameNodelessSQL, s.node); err != nil {
			return nil, nil, fmt.Errorf("interrupt running deploys: adopt unnamed deploys: %w", err)
		}
	}
	add := 0
	if crash {
		add = 1
	}
	rows, err := s.rows(ctx, tx, interruptRunningSQL,
		add, add, MaxCrashes, add, MaxCrashes, crashFailure, reason, s.now(), s.node)
	if err != nil {
		return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
	}
	type cut struct {
		id      int64
		repo    string
		crashes int
	}
	type endedDeploy struct {
		id   int64
		repo string
	}
	var cuts []cut
	var ended []endedDeploy // every deploy the update ended, for its report
	for rows.Next() {
		var id int64
		var c cut
		var status string
		if err := rows.Scan(&id, &c.repo, &status, &c.crashes); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
		}
		c.id = id
		ended = append(ended, endedDeploy{id, c.repo})
		if status == DeployFailed {
			failed = append(failed, id)
			continue
		}
		cuts = append(cuts, c)
		repos = append(repos, c.repo)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
	}
	if err := s.lockRepos(ctx, tx, repos); err != nil {
		return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
	}
	for _, e := range ended {
		if err := s.report(ctx, tx, e.id, e.repo); err != nil {
			return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
		}
	}
	for _, c := range cuts {
		id, err := s.enqueue(ctx, tx, c.repo, s.node, TriggerRecovery, "")
		if err != nil {
			return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
		}
		// The deploy queued (or joined) redoes the work cut off, so it inherits its count.
		if _, err := s.run(ctx, tx, crashCountSQL,
			c.crashes, id, c.crashes); err != nil {
			return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
		}
		if err := s.carryAutoRollback(ctx, tx, c.id, id); err != nil {
			return nil, nil, fmt.Errorf("interrupt running deploys: %w", err)
		}
	}
	if err := s.commit(tx); err != nil {
		return nil, nil, fmt.Errorf("interrupt running deploys: commit: %w", err)
	}
	return repos, failed, nil
}

// QueuedRepos lists the repositories that have a deploy waiting for this node.
func (s *Store) QueuedRepos(ctx context.Context) ([]string, error) {
	rows, err := s.rows(ctx, s.rdb, queuedReposSQL, s.node)
	if err != nil {
		return nil, fmt.Errorf("list queued repositories: %w", err)
	}
	repos, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("list queued repositories: %w", err)
	}
	return repos, nil
}

// EnqueueManual queues a deploy of repo that no delivery asked for on every node that
// deploys it, or joins the ones already queued (which become manual), and returns this node's (or, when this
// node does not deploy repo, the first node's). A pinned repository refuses with
// ErrPinned.
func (s *Store) EnqueueManual(ctx context.Context, repo string) (Deploy, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Deploy{}, fmt.Errorf("queue manual deploy: %w", err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	if err := s.lockUnpinned(ctx, tx, repo); err != nil {
		return Deploy{}, err
	}
	ids, primary, err := s.fanOut(ctx, tx, repo, TriggerManual, "")
	if err != nil {
		return Deploy{}, fmt.Errorf("queue manual deploy: %w", err)
	}
	// A deploy already queued (a push, a redelivery) that this one joins becomes the
	// operator's: the worker skips a bad head only for automatic deploys, and the operator
	// was checked (or forced past the check) when asking. A queued rollback keeps its commit.
	for _, id := range ids {
		if _, err := s.run(ctx, tx, manualJoinSQL, TriggerManual, id); err != nil {
			return Deploy{}, fmt.Errorf("queue manual deploy: %w", err)
		}
	}
	if err := s.commit(tx); err != nil {
		return Deploy{}, fmt.Errorf("queue manual deploy: commit: %w", err)
	}
	return s.Deploy(ctx, ids[primary])
}

// lockUnpinned takes repo's lock in tx and refuses (ErrPinned) when it is pinned: a manual
// deploy's first step. The lock comes before the pin is read: the delivery writer reads
// pins under the same lock.
func (s *Store) lockUnpinned(ctx context.Context, tx *sql.Tx, repo string) error {
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return fmt.Errorf("queue manual deploy: %w", err)
	}
	pin, err := s.pinOf(ctx, tx, repo)
	if err != nil {
		return fmt.Errorf("queue manual deploy: %w", err)
	}
	if pin != nil {
		return fmt.Errorf("queue manual deploy of %s: pinned at %s: %w", repo, short(pin.Commit), ErrPinned)
	}
	return nil
}

const deployColumns = `id, repo, status, triggered_by, ref, from_commit, to_commit, queued_at,
	started_at, finished_at, error, reason, target_commit, node, rollback_of`

func scanDeploy(row scanner, extra ...any) (Deploy, error) {
	var dp Deploy
	var started, finished sql.NullTime
	dest := []any{&dp.ID, &dp.Repo, &dp.Status, &dp.Trigger, &dp.Ref, &dp.FromCommit,
		&dp.ToCommit, &dp.QueuedAt, &started, &finished, &dp.Error, &dp.Reason, &dp.Target, &dp.Node, &dp.RollbackOf}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Deploy{}, err
	}
	dp.QueuedAt = dp.QueuedAt.UTC()
	dp.StartedAt = started.Time.UTC()
	dp.FinishedAt = finished.Time.UTC()
	return dp, nil
}

// Deploy returns one deploy with its output and the ids of the deliveries that joined it.
func (s *Store) Deploy(ctx context.Context, id int64) (Deploy, error) {
	row := s.row(ctx, s.rdb, deployWithLogSQL, id)
	var log string
	dp, err := scanDeploy(row, &log)
	if errors.Is(err, sql.ErrNoRows) {
		return Deploy{}, fmt.Errorf("deploy %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Deploy{}, fmt.Errorf("get deploy %d: %w", id, err)
	}
	dp.Log = log
	if dp.DeliveryIDs, err = s.deliveryIDs(ctx, id); err != nil {
		return Deploy{}, err
	}
	return dp, nil
}

func (s *Store) deliveryIDs(ctx context.Context, deployID int64) ([]int64, error) {
	rows, err := s.rows(ctx, s.rdb, deployDeliveryIDsSQL, deployID, deployID)
	if err != nil {
		return nil, fmt.Errorf("deliveries of deploy %d: %w", deployID, err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("deliveries of deploy %d: %w", deployID, err)
	}
	return ids, nil
}

func scanStrings(rows *sql.Rows) ([]string, error) { return scanColumn[string](rows) }

// scanIDs reads a column of ids, closing rows; none is an empty list, not nil.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	ids, err := scanColumn[int64](rows)
	if ids == nil && err == nil {
		ids = []int64{}
	}
	return ids, err
}

// scanColumn reads the one column of rows and closes them.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
