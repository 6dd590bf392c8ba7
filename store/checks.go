// Waiting for the forge's checks (require_checks, issue 22): a push or reconcile deploy of
// a target that requires checks is recorded as waiting, not queued, with the commit the
// checks are for as its to_commit. No worker claims it: the reporter's checker looks at the
// forge when next_check_at comes and passes it (queued, moving to exactly that commit),
// fails it, or looks again later. A newer commit supersedes it.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// SetRequireChecks names the repositories whose push and reconcile deploys wait for the
// forge's checks, as the configuration says (a reload calls it again).
func (s *Store) SetRequireChecks(repos []string) {
	m := make(map[string]bool, len(repos))
	for _, r := range repos {
		m[r] = true
	}
	s.checked.Store(&m)
}

// waitsForChecks says whether a deploy of repo triggered by trigger waits for checks:
// pushes (redelivered or replayed too) and reconciles of a repository that requires them.
// Manual deploys, rollbacks, pins and recoveries never wait.
func (s *Store) waitsForChecks(repo, trigger string) bool {
	m := s.checked.Load()
	if m == nil || !(*m)[repo] {
		return false
	}
	switch trigger {
	case TriggerPush, TriggerRedelivery, TriggerReplay, TriggerReconcile:
		return true
	}
	return false
}

// RequiresChecks says whether repo's push, reconcile and (unless forced) manual deploys
// wait for the forge's checks.
func (s *Store) RequiresChecks(repo string) bool {
	m := s.checked.Load()
	return m != nil && (*m)[repo]
}

// EnqueueManualWaiting queues, on every node that deploys repo, a manual deploy that waits
// for commit's checks (origin's head, looked up by the caller), superseding one waiting
// for another commit; it returns this node's (or the first node's). A pinned repository
// refuses with ErrPinned, as EnqueueManual does.
func (s *Store) EnqueueManualWaiting(ctx context.Context, repo, commit string) (Deploy, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Deploy{}, fmt.Errorf("queue manual deploy: %w", err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	if err := s.lockUnpinned(ctx, tx, repo); err != nil {
		return Deploy{}, err
	}
	targets, err := s.targetsInBatch(ctx, tx, newBatchState(), repo)
	if err != nil {
		return Deploy{}, fmt.Errorf("queue manual deploy: %w", err)
	}
	if len(targets) == 0 {
		return Deploy{}, fmt.Errorf("queue manual deploy: %s: %w", repo, ErrNoNode)
	}
	ids := make([]int64, len(targets))
	for i, n := range targets {
		if ids[i], err = s.enqueueWaiting(ctx, tx, repo, n, TriggerManual, "", commit,
			"manual deploy of origin's head "+short(commit)); err != nil {
			return Deploy{}, fmt.Errorf("queue manual deploy: %w", err)
		}
	}
	if err := s.commit(tx); err != nil {
		return Deploy{}, fmt.Errorf("queue manual deploy: commit: %w", err)
	}
	return s.Deploy(ctx, ids[s.primary(targets)])
}

// enqueueWaiting returns node's waiting deploy of repo for commit, creating it when there
// is none; a waiting deploy of another commit is superseded by it (a newer push).
func (s *Store) enqueueWaiting(ctx context.Context, tx *sql.Tx, repo, node, trigger, ref, commit, reason string) (int64, error) {
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return 0, fmt.Errorf("enqueue waiting deploy: %w", err)
	}
	var old int64
	var oldCommit string
	err := s.row(ctx, tx, waitingOfSQL, node, repo).Scan(&old, &oldCommit)
	switch {
	case err == nil && oldCommit == commit:
		return old, nil
	case err == nil:
		if err := s.supersede(ctx, tx, old, repo, commit); err != nil {
			return 0, err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("enqueue waiting deploy: %w", err)
	}
	now := s.now()
	var id int64
	if err := s.row(ctx, tx, newWaitingSQL, repo, trigger, ref, now, node, commit, now, reason,
		"checks not looked at yet").Scan(&id); err != nil {
		return 0, fmt.Errorf("enqueue waiting deploy: %w", err)
	}
	if err := s.report(ctx, tx, id, repo); err != nil {
		return 0, fmt.Errorf("enqueue waiting deploy: %w", err)
	}
	return id, nil
}

// supersede ends deploy id (waiting or queued) as superseded by commit, reporting it.
func (s *Store) supersede(ctx context.Context, tx *sql.Tx, id int64, repo, commit string) error {
	if _, err := s.run(ctx, tx, supersedeSQL, "superseded by "+short(commit), s.now(), id); err != nil {
		return fmt.Errorf("supersede deploy %d: %w", id, err)
	}
	if err := s.report(ctx, tx, id, repo); err != nil {
		return fmt.Errorf("supersede deploy %d: %w", id, err)
	}
	return nil
}

// noteForgeRepo records on deploy id the repository d's payload named, where its reports
// go, when target reports to a forge: GitLab's project id, else the full name.
func (s *Store) noteForgeRepo(ctx context.Context, tx *sql.Tx, d *Delivery, target string, id int64) error {
	if m := s.reporting.Load(); m == nil || !(*m)[target] || d.Input == nil {
		return nil
	}
	repo := d.Input.FullName
	if d.Input.ProjectID != 0 {
		repo = strconv.FormatInt(d.Input.ProjectID, 10)
	}
	if repo == "" {
		return nil
	}
	if _, err := s.run(ctx, tx, forgeRepoSQL, repo, id, repo); err != nil {
		return fmt.Errorf("record delivery: deploy %d's forge repository: %w", id, err)
	}
	return nil
}

// Waiting is a waiting deploy whose checks are due for a look.
type Waiting struct {
	ID     int64
	Repo   string
	Commit string
	Since  time.Time // when it began to wait (queued_at): the timeout counts from here
	Polls  int       // looks so far
	// ForgeRepo is the payload's repository ("": the target's repository key).
	ForgeRepo string
}

// DueWaiting returns up to limit of this node's waiting deploys due for a look at now.
func (s *Store) DueWaiting(ctx context.Context, now time.Time, limit int) ([]Waiting, error) {
	rows, err := s.rows(ctx, s.rdb, dueWaitingSQL, s.node, now.UTC(), max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("due waiting deploys: %w", err)
	}
	defer rows.Close()
	var out []Waiting
	for rows.Next() {
		var w Waiting
		if err := rows.Scan(&w.ID, &w.Repo, &w.Commit, &w.Since, &w.Polls, &w.ForgeRepo); err != nil {
			return nil, fmt.Errorf("due waiting deploys: %w", err)
		}
		w.Since = w.Since.UTC()
		out = append(out, w)
	}
	return out, rows.Err()
}

// NextCheckAt is when this node's next waiting deploy is due for a look (zero: none waits).
func (s *Store) NextCheckAt(ctx context.Context) (time.Time, error) {
	var t sql.NullTime
	err := s.row(ctx, s.rdb, nextCheckSQL, s.node).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("next check: %w", err)
	}
	return t.Time.UTC(), nil
}

// PostponeWaiting records a look at deploy id's checks that found some still pending:
// the next look at next, and what it waits for now.
func (s *Store) PostponeWaiting(ctx context.Context, id int64, next time.Time, waitingFor string) error {
	if _, err := s.run(ctx, s.wdb, postponeWaitingSQL, next.UTC(), waitingFor, id); err != nil {
		return fmt.Errorf("postpone waiting deploy %d: %w", id, err)
	}
	return nil
}

// WaitingFor is what waiting deploy id waits for ("" for a deploy that does not wait).
func (s *Store) WaitingFor(ctx context.Context, id int64) (string, error) {
	var w string
	if err := s.row(ctx, s.rdb, waitingForSQL, id).Scan(&w); err != nil {
		return "", fmt.Errorf("deploy %d: %w", id, err)
	}
	return w, nil
}

// PassWaiting moves waiting deploy id, whose checks are green, to queued, moving to
// exactly the commit they were for; a deploy already queued on its node (an older commit's)
// is superseded by it. While the repository is pinned it is superseded instead: the pin
// decides what is live. ErrConflict when it no longer waits.
func (s *Store) PassWaiting(ctx context.Context, id int64) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	var repo, node, commit string
	err = s.row(ctx, tx, waitingDeploySQL, id).Scan(&repo, &node, &commit)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("pass waiting deploy %d: not waiting: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	pin, err := s.pinOf(ctx, tx, repo)
	if err != nil {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	if pin != nil {
		if err := s.supersede(ctx, tx, id, repo, pin.Commit); err != nil {
			return err
		}
		return s.commit(tx)
	}
	var queued int64
	err = s.queryRow(ctx, tx, queuedDeploySQL, node, repo).Scan(&queued)
	if err == nil {
		if err := s.supersede(ctx, tx, queued, repo, commit); err != nil {
			return err
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	if _, err := s.run(ctx, tx, passWaitingSQL, id); err != nil {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	if err := s.report(ctx, tx, id, repo); err != nil {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	if err := s.noteQueued(ctx, tx, node, repo); err != nil {
		return fmt.Errorf("pass waiting deploy %d: %w", id, err)
	}
	if err := s.commit(tx); err != nil {
		return fmt.Errorf("pass waiting deploy %d: commit: %w", id, err)
	}
	return nil
}

// FailWaiting ends waiting deploy id as failed with msg (a red check, or the timeout).
// ErrConflict when it no longer waits.
func (s *Store) FailWaiting(ctx context.Context, id int64, msg string) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("fail waiting deploy %d: %w", id, err)
	}
	defer tx.Rollback()
	defer s.forget(tx)
	var repo string
	err = s.row(ctx, tx, failWaitingSQL, msg, s.now(), id).Scan(&repo)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("fail waiting deploy %d: not waiting: %w", id, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("fail waiting deploy %d: %w", id, err)
	}
	if err := s.report(ctx, tx, id, repo); err != nil {
		return fmt.Errorf("fail waiting deploy %d: %w", id, err)
	}
	if err := s.commit(tx); err != nil {
		return fmt.Errorf("fail waiting deploy %d: commit: %w", id, err)
	}
	return nil
}
