package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Who pinned a repository: a rollback, or an operator's pin without a deploy.
const (
	PinnedByRollback = "rollback"
	PinnedByPin      = "pin"
)

// Pin holds a repository at one commit until it is unpinned.
type Pin struct {
	Repo   string
	Commit string // full hash
	At     time.Time
	By     string // PinnedByRollback or PinnedByPin
}

// pinSQL is prepared with the write path: every accepted delivery's batch reads it.
const pinSQL = `SELECT commit_hash, pinned_by, pinned_at FROM pins WHERE repo = ?`

type queryRower interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func scanPin(repo string, row *sql.Row) (*Pin, error) {
	p := Pin{Repo: repo}
	err := row.Scan(&p.Commit, &p.By, &p.At)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pin of %s: %w", repo, err)
	}
	p.At = p.At.UTC()
	return &p, nil
}

func (s *Store) pinOf(ctx context.Context, q queryRower, repo string) (*Pin, error) {
	return scanPin(repo, q.QueryRowContext(ctx, s.sql(pinSQL), repo))
}

// pinInBatch is pinOf for the delivery writer, which looks each repository up once per
// batch (the pin cannot change inside the batch's transaction).
func (s *Store) pinInBatch(ctx context.Context, tx *sql.Tx, st *batchState, repo string) (*Pin, error) {
	if p, ok := st.pins[repo]; ok {
		return p, nil
	}
	p, err := scanPin(repo, s.queryRow(ctx, tx, pinSQL, repo))
	if err != nil {
		return nil, err
	}
	if st.pins == nil {
		st.pins = map[string]*Pin{}
	}
	st.pins[repo] = p
	return p, nil
}

// PinnedReason is the reason a push to a pinned repository is ignored with.
func PinnedReason(p *Pin) string {
	return fmt.Sprintf("pinned at %s by %s since %s; unpin to deploy pushes again",
		short(p.Commit), p.By, p.At.Format(time.RFC3339))
}

// GetPin returns repo's pin, or nil when it is not pinned.
func (s *Store) GetPin(ctx context.Context, repo string) (*Pin, error) {
	return s.pinOf(ctx, s.rdb, repo)
}

// SetPin pins repo at commit (a full hash) without queueing anything; a pin already there
// is replaced.
func (s *Store) SetPin(ctx context.Context, repo, commit, by string) (Pin, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Pin{}, fmt.Errorf("pin %s: %w", repo, err)
	}
	defer tx.Rollback()
	p, err := s.setPin(ctx, tx, repo, commit, by)
	if err != nil {
		return Pin{}, err
	}
	if err := tx.Commit(); err != nil {
		return Pin{}, fmt.Errorf("pin %s: commit: %w", repo, err)
	}
	return p, nil
}

func (s *Store) setPin(ctx context.Context, tx *sql.Tx, repo, commit, by string) (Pin, error) {
	p := Pin{Repo: repo, Commit: commit, By: by, At: s.now().UTC()}
	_, err := tx.ExecContext(ctx, s.sql(`
		INSERT INTO pins (repo, commit_hash, pinned_by, pinned_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET commit_hash = excluded.commit_hash,
			pinned_by = excluded.pinned_by, pinned_at = excluded.pinned_at`),
		p.Repo, p.Commit, p.By, p.At)
	if err != nil {
		return Pin{}, fmt.Errorf("pin %s: %w", repo, err)
	}
	return p, nil
}

// Unpin lifts repo's pin and reports whether there was one. On PostgreSQL the other
// gateways are told to reconcile repo (see WatchQueue): the caller reconciles its own
// checkout.
func (s *Store) Unpin(ctx context.Context, repo string) (bool, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("unpin %s: %w", repo, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.sql(`DELETE FROM pins WHERE repo = ?`), repo)
	if err != nil {
		return false, fmt.Errorf("unpin %s: %w", repo, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("unpin %s: %w", repo, err)
	}
	if n > 0 && s.pg {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, reconcileChannel, repo); err != nil {
			return false, fmt.Errorf("unpin %s: %w", repo, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("unpin %s: commit: %w", repo, err)
	}
	return n > 0, nil
}

// EnqueueRollback pins repo at commit and queues, on every node that deploys repo, a
// deploy that moves the checkout there, in one transaction; it returns this node's (or the
// first node's, see EnqueueManual). A deploy already queued on a node becomes its rollback
// (the deliveries that joined it stay with it): only one deploy per node and repository
// waits, and the pin means the branch head it stood for is not to be deployed.
func (s *Store) EnqueueRollback(ctx context.Context, repo, commit, reason string) (Deploy, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Deploy{}, fmt.Errorf("queue rollback: %w", err)
	}
	defer tx.Rollback()
	// Before the pin: the delivery writer reads pins under the same lock.
	if err := s.lockRepos(ctx, tx, []string{repo}); err != nil {
		return Deploy{}, fmt.Errorf("queue rollback: %w", err)
	}
	if _, err := s.setPin(ctx, tx, repo, commit, PinnedByRollback); err != nil {
		return Deploy{}, err
	}
	ids, primary, err := s.fanOut(ctx, tx, repo, TriggerRollback, "")
	if err != nil {
		return Deploy{}, fmt.Errorf("queue rollback: %w", err)
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, s.sql(`
			UPDATE deploys SET triggered_by = ?, target_commit = ?, reason = ?
			WHERE id = ? AND status = 'queued'`), TriggerRollback, commit, reason, id); err != nil {
			return Deploy{}, fmt.Errorf("queue rollback: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Deploy{}, fmt.Errorf("queue rollback: commit: %w", err)
	}
	return s.Deploy(ctx, ids[primary])
}

// busySQL returns the id of a node's queued deploy of a repository, else of its running
// one, else 0. The queued one first: it runs last, so it is the one that decides what is
// live once the queue is drained. A running deploy that moves to another commit than
// origin's head (the last argument), a rollback or a deploy claimed while pinned, does not
// count: once the pin is lifted, origin's head is queued behind it.
const busySQL = `
	SELECT COALESCE(
		(SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'queued'),
		(SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'running'
		   AND target_commit IN ('', ?) LIMIT 1),
		0)`

// PreviousCommit returns the to_commit of the newest succeeded deploy before the live one
// (the newest succeeded deploy) that deployed another commit, or ErrNotFound.
func (s *Store) PreviousCommit(ctx context.Context, repo string) (string, error) {
	var commit string
	err := s.rdb.QueryRowContext(ctx, s.sql(`
		SELECT to_commit FROM deploys
		WHERE repo = ? AND status = 'succeeded' AND to_commit != ''
		  AND to_commit != (SELECT to_commit FROM deploys WHERE repo = ? AND status = 'succeeded'
		                    ORDER BY id DESC LIMIT 1)
		ORDER BY id DESC LIMIT 1`), repo, repo).Scan(&commit)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("previous deploy of %s: %w", repo, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("previous deploy of %s: %w", repo, err)
	}
	return commit, nil
}

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
	if err := tx.QueryRowContext(ctx, s.sql(busySQL), s.node, repo, s.node, repo, origin).Scan(&d.InFlight); err != nil {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	d.Busy = d.InFlight != 0
	err = tx.QueryRowContext(ctx, s.sql(`
		SELECT to_commit FROM deploys WHERE node = ? AND repo = ? AND status = 'succeeded'
		ORDER BY id DESC LIMIT 1`), s.node, repo).Scan(&d.Live)
	if errors.Is(err, sql.ErrNoRows) {
		d.Live, err = checkoutHead, nil
	}
	if err != nil {
		return d, fmt.Errorf("reconcile %s: %w", repo, err)
	}
	err = tx.QueryRowContext(ctx, s.sql(`
		SELECT to_commit FROM deploys WHERE node = ? AND repo = ? AND status != 'queued'
		ORDER BY id DESC LIMIT 1`), s.node, repo).Scan(&d.Newest)
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
		if err := tx.QueryRowContext(ctx, s.sql(`
			SELECT count(*) FROM deploys WHERE repo = ? AND node != ? AND status = 'succeeded'`),
			repo, s.node).Scan(&elsewhere); err != nil {
			return d, fmt.Errorf("reconcile %s: %w", repo, err)
		}
		if elsewhere == 0 {
			return d, nil
		}
	}
	err = tx.QueryRowContext(ctx, s.sql(`
		INSERT INTO deploys (repo, status, triggered_by, ref, queued_at, reason, node)
		VALUES (?, 'queued', ?, '', ?, ?, ?) RETURNING id`),
		repo, TriggerReconcile, s.now(), reason(d.Live), s.node).Scan(&d.DeployID)
	if err != nil {
		return d, fmt.Errorf("reconcile %s: queue: %w", repo, err)
	}
	if err := tx.Commit(); err != nil {
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
