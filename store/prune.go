package store

import (
	"context"
	"fmt"
	"time"
)

// pruneChunk bounds the rows one pruning transaction deletes, so deliveries arriving
// meanwhile never wait long for the write lock.
const pruneChunk = 1000

// Pruned counts what Prune deleted.
type Pruned struct {
	Deliveries int64
	Deploys    int64
}

// Prune deletes deliveries received before cutoff, notifications sent before it, and
// finished deploys (with their logs) that ended before it. Each node's newest deploy and
// newest succeeded deploy of each repository are kept whatever their age: they say what is
// live there.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (Pruned, error) {
	var p Pruned
	cutoff = cutoff.UTC()
	for {
		n, err := s.pruneChunk(ctx, `DELETE FROM deliveries WHERE id IN (
			SELECT id FROM deliveries WHERE received_at < ? ORDER BY id LIMIT ?)`, cutoff, pruneChunk)
		if err != nil {
			return p, fmt.Errorf("prune deliveries: %w", err)
		}
		p.Deliveries += n
		if n < pruneChunk {
			break
		}
	}
	for {
		n, err := s.pruneChunk(ctx, `DELETE FROM notifications WHERE id IN (
			SELECT id FROM notifications WHERE created_at < ? ORDER BY id LIMIT ?)`, cutoff, pruneChunk)
		if err != nil {
			return p, fmt.Errorf("prune notifications: %w", err)
		}
		if n < pruneChunk {
			break
		}
	}
	for {
		n, err := s.pruneChunk(ctx, `DELETE FROM deploys WHERE id IN (
			SELECT id FROM deploys
			WHERE status IN ('succeeded', 'failed', 'interrupted', 'superseded', 'skipped') AND finished_at < ?
			  AND id NOT IN (SELECT max(id) FROM deploys WHERE status != 'queued' GROUP BY node, repo)
			  AND id NOT IN (SELECT max(id) FROM deploys WHERE status = 'succeeded' GROUP BY node, repo)
			ORDER BY id LIMIT ?)`, cutoff, pruneChunk)
		if err != nil {
			return p, fmt.Errorf("prune deploys: %w", err)
		}
		p.Deploys += n
		if n < pruneChunk {
			break
		}
	}
	for {
		// The probes of checks run on demand (POST /api/v1/repos/NAME/verify), which no
		// deploy holds; a deploy's go with it.
		n, err := s.pruneChunk(ctx, `DELETE FROM probes WHERE id IN (
			SELECT id FROM probes WHERE deploy_id IS NULL AND at < ? ORDER BY id LIMIT ?)`, cutoff, pruneChunk)
		if err != nil {
			return p, fmt.Errorf("prune probes: %w", err)
		}
		if n < pruneChunk {
			break
		}
	}
	return p, nil
}

// PruneUnsigned deletes the deliveries without a valid signature (all of them rejected
// before authentication: the sender's word only) received before cutoff. It runs whether
// or not a retention is set, so that what unauthenticated clients can make a long-running
// gateway keep stays bounded. "signature != 'valid'" is the condition of the partial index
// deliveries_signature_id (migration 00004), so only those rows are scanned.
func (s *Store) PruneUnsigned(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	cutoff = cutoff.UTC()
	for {
		n, err := s.pruneChunk(ctx, `DELETE FROM deliveries WHERE id IN (
			SELECT id FROM deliveries WHERE signature != 'valid' AND received_at < ? ORDER BY id LIMIT ?)`,
			cutoff, pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune unsigned deliveries: %w", err)
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

func (s *Store) pruneChunk(ctx context.Context, q string, args ...any) (int64, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := s.run(ctx, tx, dynamic(q), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
