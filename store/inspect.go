package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Engine describes the database a setting names, for hookgate check.
type Engine struct {
	Kind    string // "SQLite" or "PostgreSQL"
	Version string // the engine's version; for a SQLite file not created yet, the library's
	Where   string // the file, or the URL without its password
	Missing bool   // a SQLite file that does not exist yet (serve creates it)
	Nodes   []Node // the gateways registered in it (none before a gateway first started)
}

// Inspect connects to database (as Open takes it) without creating or migrating anything
// and reports the engine and its version.
func Inspect(ctx context.Context, database string) (Engine, error) {
	e := Engine{Where: Redact(database)}
	if IsPostgres(database) {
		e.Kind = "PostgreSQL"
		cfg, err := pgx.ParseConfig(database)
		if err != nil {
			return e, CheckPostgresURL(database)
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		pg := &Store{pg: true}
		if err := pg.row(ctx, db, engineVersionSQL).Scan(&e.Version); err != nil {
			return e, fmt.Errorf("connect to PostgreSQL: %w", err)
		}
		return e, inspectNodes(ctx, pg, db, &e)
	}
	e.Kind = "SQLite"
	dsn := "file::memory:"
	if _, err := os.Stat(database); errors.Is(err, fs.ErrNotExist) {
		e.Missing = true
	} else if err != nil {
		return e, fmt.Errorf("database file: %w", err)
	} else {
		dsn = "file:" + database + "?mode=ro"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return e, err
	}
	defer db.Close()
	lite := &Store{}
	if err := lite.row(ctx, db, engineVersionSQL).Scan(&e.Version); err != nil {
		return e, fmt.Errorf("open %s: %w", database, err)
	}
	return e, inspectNodes(ctx, lite, db, &e)
}

// inspectNodes fills e.Nodes when the nodes table exists (nodesTableSQL says so); d is a
// Store of db's engine, for the statements' dialect only.
func inspectNodes(ctx context.Context, d *Store, db *sql.DB, e *Engine) error {
	var ok bool
	if err := d.row(ctx, db, nodesTableSQL).Scan(&ok); err != nil {
		return fmt.Errorf("look for the nodes table: %w", err)
	}
	if !ok {
		return nil
	}
	var err error
	e.Nodes, err = listNodes(ctx, d, db, time.Now())
	return err
}
