// Rollbacks: pin and queue a deploy of an earlier commit (EnqueueRollback), and which
// commit came before the live one (PreviousCommit).

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

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
	defer s.forget(tx)
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
		if _, err := s.run(ctx, tx, rollbackQueuedSQL, TriggerRollback, commit, reason, id); err != nil {
			return Deploy{}, fmt.Errorf("queue rollback: %w", err)
		}
	}
	if err := s.commit(tx); err != nil {
		return Deploy{}, fmt.Errorf("queue rollback: commit: %w", err)
	}
	return s.Deploy(ctx, ids[primary])
}

// PreviousCommit returns the to_commit of the newest succeeded deploy before the live one
// (the newest succeeded deploy) that deployed another commit, or ErrNotFound.
func (s *Store) PreviousCommit(ctx context.Context, repo string) (string, error) {
	var commit string
	err := s.row(ctx, s.rdb, previousCommitSQL, repo, repo).Scan(&commit)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("previous deploy of %s: %w", repo, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("previous deploy of %s: %w", repo, err)
	}
	return commit, nil
}
