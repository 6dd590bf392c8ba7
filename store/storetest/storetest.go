// Package storetest fills a hookgate database with a large, realistic history fast, for
// the benchmarks and scripts that measure the history at scale, and counts what a load run
// left in one. Like every SQL detail, this lives under store/; it reads and writes the
// tables the migrations create.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the driver CountDeliveries opens for PostgreSQL
	_ "modernc.org/sqlite"             // the driver FillFile and CountDeliveries open
)

// FillHistory adds n deliveries over 10 repositories and the deploys they joined, in one
// INSERT … SELECT each from a recursive CTE: a million rows take seconds where a million
// RecordDelivery calls would take minutes. The mix is the one BenchmarkHistory in server
// uses, and the one store's BenchmarkHistoryScale and scripts/historyscale measure: one delivery in ten rejected (invalid signature, no payload), one in five accepted
// into a deploy (50 deliveries of one repository per deploy, one deploy in four failed),
// one in seven a ping, the rest ignored pushes; one per second. Payloads are a few hundred
// bytes rather than 7 KB: the listings never read them (they live in overflow pages), and
// 7 GB of them would only make the file slow to build.
func FillHistory(ctx context.Context, db *sql.DB, n int) error {
	deploys := n / 50
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01-02 15:04:05")
	_, err = tx.ExecContext(ctx, `
		WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k WHERE x < ?)
		INSERT INTO deploys (repo, status, triggered_by, ref, from_commit, to_commit,
			queued_at, started_at, finished_at, error, log)
		SELECT 'repo-' || ((x - 1) % 10),
			CASE WHEN x % 4 = 0 THEN 'failed' ELSE 'succeeded' END, 'push', 'refs/heads/main',
			printf('%040x', x - 1), printf('%040x', x),
			strftime('%Y-%m-%d %H:%M:%S+00:00', ?, '+' || (x * 50) || ' seconds'),
			strftime('%Y-%m-%d %H:%M:%S+00:00', ?, '+' || (x * 50 + 1) || ' seconds'),
			strftime('%Y-%m-%d %H:%M:%S+00:00', ?, '+' || (x * 50 + 9) || ' seconds'),
			CASE WHEN x % 4 = 0 THEN 'command 1 of 2 (make build) failed: exit status 2' ELSE '' END,
			'build output' || char(10)
		FROM k`, deploys, start, start, start)
	if err != nil {
		return fmt.Errorf("fill deploys: %w", err)
	}
	_, err = tx.ExecContext(ctx, `
		WITH RECURSIVE k(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM k WHERE x < ? - 1)
		INSERT INTO deliveries (guid, repo, event, ref, before_commit, after_commit, commit_short,
			signature, signature_alg, status, reason, http_status, received_at, remote_addr,
			user_agent, content_type, body_size, headers, full_name, repo_url, pusher, message,
			payload, deploy_id)
		SELECT printf('%08x-5eed-4000-8000-%012x', x, x), 'repo-' || (x % 10),
			CASE WHEN x % 7 = 0 AND x % 10 != 3 AND x % 5 != 0 THEN 'ping' ELSE 'push' END,
			'refs/heads/main', printf('%040x', x + 1), printf('%040x', x + 2),
			substr(printf('%040x', x + 2), 1, 7),
			CASE WHEN x % 10 = 3 THEN 'invalid' ELSE 'valid' END, 'sha256',
			CASE WHEN x % 10 = 3 THEN 'rejected' WHEN x % 5 = 0 THEN 'accepted' ELSE 'ignored' END,
			CASE WHEN x % 10 = 3 THEN 'signature does not match the body'
				WHEN x % 5 = 0 THEN 'queued for deploy' ELSE 'push to refs/heads/feature' END,
			CASE WHEN x % 10 = 3 THEN 401 WHEN x % 5 = 0 THEN 202 ELSE 200 END,
			strftime('%Y-%m-%d %H:%M:%S+00:00', ?, '+' || x || ' seconds'),
			'140.82.115.1', 'GitHub-Hookshot/7b6c1ad', 'application/json', 7300,
			'{"X-Github-Event":"push","X-Github-Hook-Id":"492039781"}', 'acme/app',
			'https://github.com/acme/app', 'octocat', 'Fix the thing',
			CASE WHEN x % 10 = 3 THEN NULL
				ELSE CAST('{"ref":"refs/heads/main","after":"' || printf('%040x', x + 2) || '","padding":"' ||
					printf('%.200c', 'x') || '"}' AS BLOB) END,
			CASE WHEN x % 5 = 0 AND x % 10 != 3 THEN (x / 500) * 10 + (x % 10) + 1 END
		FROM k`, n, start)
	if err != nil {
		return fmt.Errorf("fill deliveries: %w", err)
	}
	return tx.Commit()
}

// FillFile fills the database file at path, which store.Open has already created and
// migrated, with n deliveries (see FillHistory), then checkpoints the WAL into the file.
func FillFile(ctx context.Context, path string, n int) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := FillHistory(ctx, db, n); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// CountDeliveries opens the database at path (a SQLite file, read-only, or a PostgreSQL URL)
// and counts its deliveries: all of them, and those that were answered 2xx. A load run
// checks that every 2xx it received is a delivery in the database.
func CountDeliveries(ctx context.Context, path string) (all, answered2xx int64, err error) {
	driver, dsn := "sqlite", "file:"+path+"?mode=ro"
	if isPostgres(path) {
		driver, dsn = "pgx", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, `
		SELECT count(*), coalesce(sum(CASE WHEN http_status BETWEEN 200 AND 299 THEN 1 ELSE 0 END), 0)
		FROM deliveries`,
	).Scan(&all, &answered2xx)
	if err != nil {
		return 0, 0, fmt.Errorf("count deliveries: %w", err)
	}
	return all, answered2xx, nil
}

// isPostgres is store.IsPostgres (store's tests import this package, so it cannot import
// store).
func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// NewPostgresDatabase creates the database name in the PostgreSQL cluster that base (a URL)
// reaches, and returns its URL and a func that drops it.
func NewPostgresDatabase(ctx context.Context, base, name string) (string, func() error, error) {
	u, err := url.Parse(base)
	if err != nil || !isPostgres(base) {
		return "", nil, fmt.Errorf("not a PostgreSQL URL")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() error {
		defer admin.Close()
		_, err := admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
		return err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
