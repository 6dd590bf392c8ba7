// Publish: the one subscriber told, after each commit, of the repositories a deploy was
// queued for on this node (OnQueued), and the bookkeeping that holds them until then.

package store

import (
	"context"
	"database/sql"
)

// OnQueued wires the one subscriber told, after each commit, of every repository that a
// deploy was queued (or joined) for on this node. Called once, at start-up, before any
// request or worker runs; a second call panics. Without one, queued deploys wait for the
// workers' sweep. f must not block: it runs on the committing goroutine.
func (s *Store) OnQueued(f func(repo string)) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if s.onQueued != nil {
		panic("store: OnQueued called twice")
	}
	s.onQueued = f
}

// noteQueued records, in tx, that a deploy of repo is queued for node: this node's is kept
// for the subscriber until tx commits (commit); another node's is wakeNode's notification,
// which PostgreSQL sends when tx commits.
func (s *Store) noteQueued(ctx context.Context, tx *sql.Tx, node, repo string) error {
	if node != s.node {
		return s.wakeNode(ctx, tx, node, repo)
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if s.onQueued == nil {
		return nil
	}
	if s.pending == nil {
		s.pending = map[*sql.Tx][]string{}
	}
	s.pending[tx] = append(s.pending[tx], repo)
	return nil
}

// commit commits tx and then, once its rows are visible, tells the subscriber of each
// repository noted in it (once each). Publishing before the commit would let a worker
// claim before the deploy is there to claim, and sleep until the sweep.
func (s *Store) commit(tx *sql.Tx) error {
	err := tx.Commit()
	s.pubMu.Lock()
	repos, f := s.pending[tx], s.onQueued
	reported, onReport := s.reported[tx], s.onReport
	delete(s.pending, tx)
	delete(s.reported, tx)
	s.pubMu.Unlock()
	if err != nil {
		return err
	}
	if reported && onReport != nil {
		onReport()
	}
	seen := make(map[string]bool, len(repos))
	for _, r := range repos {
		if !seen[r] {
			seen[r] = true
			f(r)
		}
	}
	return nil
}

// forget drops what was noted in tx, for a transaction rolled back instead of committed;
// deferred beside tx.Rollback.
func (s *Store) forget(tx *sql.Tx) {
	s.pubMu.Lock()
	delete(s.pending, tx)
	delete(s.reported, tx)
	s.pubMu.Unlock()
}

// publish tells the subscriber, if there is one, of repo: for a deploy another gateway
// queued for this node, committed already (WatchQueue).
func (s *Store) publish(repo string) {
	s.pubMu.Lock()
	f := s.onQueued
	s.pubMu.Unlock()
	if f != nil {
		f(repo)
	}
}
