package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/hookgate/hookgate/migrations"
)

// IsPostgres reports whether database (the [server] database setting) names a PostgreSQL
// database rather than a SQLite file.
func IsPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// pgPoolSize bounds the connections one gateway opens: the delivery writer, a claim or two,
// the pages' reads.
const pgPoolSize = 16

// CheckPostgresURL reports whether url is a PostgreSQL URL the driver accepts. The error
// never quotes it: the driver's message can hold the password.
func CheckPostgresURL(url string) error {
	if _, err := pgx.ParseConfig(url); err != nil {
		return errors.New("the PostgreSQL URL does not parse (see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS)")
	}
	return nil
}

func openPostgres(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", CheckPostgresURL(url))
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgPoolSize)
	db.SetMaxIdleConns(pgPoolSize)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: connect to PostgreSQL %s: %w", Redact(url), err)
	}
	if err := migratePostgres(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{wdb: db, rdb: db, pg: true, pgConfig: cfg, prepared: prepared{},
		now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
	s.batch = newBatcher(s)
	return s, nil
}

// migratePostgres applies the PostgreSQL migrations. Gateways of a fleet that start at the
// same moment take turns: goose holds a session-level advisory lock while it migrates.
func migratePostgres(ctx context.Context, db *sql.DB) error {
	// Tried every second (goose's default is every 5 s), for 5 minutes: a fleet started
	// at once waits about a second per node, not five.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Redact returns a database setting fit for a log line or a page: a PostgreSQL URL without
// its password, a file path as it is.
func Redact(database string) string {
	if !IsPostgres(database) {
		return database
	}
	u, err := neturl.Parse(database)
	if err != nil {
		return "postgres://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = neturl.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
