// Pins: a repository held at one commit (Pin, GetPin, SetPin, Unpin) and the pin the
// delivery writer reads once per batch.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hookgate/hookgate/policy"
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
	return scanPin(repo, s.row(ctx, q, pinByRepo, repo))
}

// pinInBatch is pinOf for the delivery writer, which looks each repository up once per
// batch (the pin cannot change inside the batch's transaction).
func (s *Store) pinInBatch(ctx context.Context, tx *sql.Tx, st *batchState, repo string) (*Pin, error) {
	if p, ok := st.pins[repo]; ok {
		return p, nil
	}
	p, err := scanPin(repo, s.row(ctx, tx, pinByRepo, repo))
	if err != nil {
		return nil, err
	}
	if st.pins == nil {
		st.pins = map[string]*Pin{}
	}
	st.pins[repo] = p
	return p, nil
}

// PinnedReason is the reason a push to a pinned repository is ignored with
// (policy.PinnedReason).
func PinnedReason(p *Pin) string {
	return policy.PinnedReason(policy.Pin{Commit: p.Commit, By: p.By, At: p.At})
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
	_, err := s.run(ctx, tx, setPinSQL,
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
	res, err := s.run(ctx, tx, unpinSQL, repo)
	if err != nil {
		return false, fmt.Errorf("unpin %s: %w", repo, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("unpin %s: %w", repo, err)
	}
	if n > 0 && s.pg {
		if _, err := s.run(ctx, tx, notifyReconcileSQL, reconcileChannel, repo); err != nil {
			return false, fmt.Errorf("unpin %s: %w", repo, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("unpin %s: commit: %w", repo, err)
	}
	return n > 0, nil
}
