package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestSynchronousOnEveryConnection: every connection of both pools, the writer included,
// runs with PRAGMA synchronous FULL (2) by default, so a commit, and the answer that waits
// for it, means the delivery is on disk; WithSynchronous(SynchronousNormal) gives NORMAL (1).
func TestSynchronousOnEveryConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want int
	}{
		{"default", nil, 2},
		{"full", []Option{WithSynchronous(SynchronousFull)}, 2},
		{"normal", []Option{WithSynchronous(SynchronousNormal)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(t.TempDir(), "h.db"), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// Hold as many connections as each pool allows at once, so each is a
			// different one.
			for _, pool := range []struct {
				name string
				db   *sql.DB
				n    int
			}{{"writer", s.wdb, 1}, {"readers", s.rdb, 8}} {
				var conns []*sql.Conn
				for i := range pool.n {
					c, err := pool.db.Conn(ctx)
					if err != nil {
						t.Fatal(err)
					}
					conns = append(conns, c)
					var got int
					if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil {
						t.Fatal(err)
					}
					if got != tc.want {
						t.Errorf("%s connection %d: synchronous %d, want %d", pool.name, i, got, tc.want)
					}
				}
				for _, c := range conns {
					c.Close()
				}
			}
		})
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "h.db"), WithSynchronous("off")); err == nil {
		t.Fatal(`Open accepted synchronous "off"`)
	}
}

// TestDatabaseRefusesASecondQueuedDeploy: the schema itself keeps one queued deploy per
// repository, whatever code path or second process writes (the store's own enqueue looks
// first; this is what holds if one ever does not).
func TestDatabaseRefusesASecondQueuedDeploy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := push("site", "a")
		if err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		insert := func(repo string) error {
			tx, err := s.wdb.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var id int64
			// The store's own statement, without the look-up that enqueue does before it
			// (and on PostgreSQL without its ON CONFLICT, which would hide the refusal).
			q := newDeploySQL
			if s.pg {
				q = numberPlaceholders(q)
			}
			if err := tx.QueryRowContext(ctx, q, repo, TriggerManual, "", s.now(), s.node).Scan(&id); err != nil {
				return err
			}
			return tx.Commit()
		}
		if err := insert("site"); !isUniqueViolation(err) {
			t.Fatalf("a second queued deploy of site: %v, want a unique constraint violation", err)
		}
		if err := insert("blog"); err != nil {
			t.Fatalf("another repository's queued deploy: %v", err)
		}
		// A running deploy does not count: once it is claimed, a new one can queue.
		if _, err := s.ClaimDeploy(ctx, "site"); err != nil {
			t.Fatal(err)
		}
		if err := insert("site"); err != nil {
			t.Fatalf("queue behind a running deploy: %v", err)
		}
		q, err := s.QueuedRepos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) != 2 || q[0] != "blog" || q[1] != "site" {
			t.Fatalf("queued %v, want blog and site once each", q)
		}
	})
}
