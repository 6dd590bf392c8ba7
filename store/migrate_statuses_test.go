package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hookgate/hookgate/migrations"
)

// TestStatusMigrationKeepsHistory: 00011 rebuilds SQLite's deploys and pins tables to widen
// their CHECK constraints. A database with history from before it must keep every deploy,
// every delivery's link to its deploy (a careless rebuild with foreign keys on sets them
// NULL when the old table is dropped), the pin, and then take the new statuses.
func TestStatusMigrationKeepsHistory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookgate.db")
	db, err := sql.Open("sqlite", dsn(path, false, SynchronousFull))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO deploys (id, repo, status, triggered_by, queued_at, node, crashes, reason)
			VALUES (7, 'site', 'succeeded', 'push', '2026-01-02 03:04:05', 'n1', 1, 'why')`,
		`INSERT INTO deliveries (id, repo, signature, status, http_status, received_at, deploy_id)
			VALUES (3, 'site', 'valid', 'accepted', 202, '2026-01-02 03:04:05', 7)`,
		`INSERT INTO delivery_deploys (delivery_id, deploy_id) VALUES (3, 7)`,
		`INSERT INTO pins (repo, commit_hash, pinned_by, pinned_at) VALUES ('site', 'abc', 'pin', '2026-01-02 03:04:05')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openAt(t, path)
	var deployID sql.NullInt64
	var links, crashes int
	var reason, pinnedBy string
	if err := s.wdb.QueryRow(`SELECT deploy_id FROM deliveries WHERE id = 3`).Scan(&deployID); err != nil {
		t.Fatal(err)
	}
	if err := s.wdb.QueryRow(`SELECT count(*) FROM delivery_deploys WHERE deploy_id = 7`).Scan(&links); err != nil {
		t.Fatal(err)
	}
	if err := s.wdb.QueryRow(`SELECT crashes, reason FROM deploys WHERE id = 7`).Scan(&crashes, &reason); err != nil {
		t.Fatal(err)
	}
	if err := s.wdb.QueryRow(`SELECT pinned_by FROM pins WHERE repo = 'site'`).Scan(&pinnedBy); err != nil {
		t.Fatal(err)
	}
	if !deployID.Valid || deployID.Int64 != 7 || links != 1 || crashes != 1 || reason != "why" || pinnedBy != "pin" {
		t.Fatalf("after the migration: deploy_id %v, links %d, crashes %d, reason %q, pinned_by %q; want 7, 1, 1, why, pin",
			deployID, links, crashes, reason, pinnedBy)
	}
	for _, st := range []string{"waiting", "verifying", "skipped", "superseded"} {
		if _, err := s.wdb.Exec(`INSERT INTO deploys (repo, status, triggered_by, queued_at) VALUES ('site', ?, 'push', '2026-01-02 03:04:05')`, st); err != nil {
			t.Errorf("status %s: %v", st, err)
		}
	}
	if _, err := s.wdb.Exec(`UPDATE pins SET pinned_by = 'health'`); err != nil {
		t.Errorf("pinned_by health: %v", err)
	}
	var fkOn int
	if err := s.wdb.QueryRow(`PRAGMA foreign_keys`).Scan(&fkOn); err != nil || fkOn != 1 {
		t.Fatalf("foreign keys after the migration: %d, %v; want on", fkOn, err)
	}
}
