package store

import (
	"context"
	"database/sql"
	"fmt"
)

// prepared holds the write path's statements, prepared on the write connection when the
// store opens. SQLite compiles a statement's SQL every time it runs unprepared, and for a
// delivery that cost more than running it. They are prepared up front because the store
// has one write connection: preparing one inside a transaction would wait for that very
// connection.
type prepared map[string]*sql.Stmt

func prepareAll(ctx context.Context, db *sql.DB, queries []string) (prepared, error) {
	p := prepared{}
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("prepare statement: %w", err)
		}
		p[q] = st
	}
	return p, nil
}

// queryRow runs q in tx, with its prepared statement when Open prepared one (on SQLite;
// pgx keeps its own cache of prepared statements per connection).
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	st, ok := s.prepared[q]
	if !ok {
		return tx.QueryRowContext(ctx, s.sql(q), args...)
	}
	// The copy bound to tx is closed with it; the statement on the connection stays.
	return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

// query runs q in tx, with its prepared statement when Open prepared one.
func (s *Store) query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	st, ok := s.prepared[q]
	if !ok {
		return tx.QueryContext(ctx, s.sql(q), args...)
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// exec runs q in tx, with its prepared statement when Open prepared one.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	st, ok := s.prepared[q]
	if !ok {
		return tx.ExecContext(ctx, s.sql(q), args...)
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (p prepared) close() {
	for _, st := range p {
		st.Close()
	}
}
