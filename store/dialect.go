package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The store's SQL is written once, in SQLite's spelling with ? placeholders. On PostgreSQL
// sql() rewrites each statement once (then caches it): the fragments in pgFragments
// become PostgreSQL's, the statements in pgStatements are replaced whole, and the ?
// placeholders become $1, $2, …. Everything else about the two engines that is not SQL
// text (ids, locks, time precision, error codes) is a method on Store below.

// pgFragments are SQLite spellings and their PostgreSQL equivalents.
var pgFragments = strings.NewReplacer(
	// A JSON array of strings as rows with one column, value.
	`json_each(?)`, `json_array_elements_text(?::json)`,
)

// sql returns q in the store's dialect.
func (s *Store) sql(q string) string {
	if !s.pg {
		return q
	}
	if v, ok := pgCache.Load(q); ok {
		return v.(string)
	}
	pq, ok := pgStatements[q]
	if !ok {
		pq = pgFragments.Replace(q)
	}
	pq = numberPlaceholders(pq)
	pgCache.Store(q, pq)
	return pq
}

var pgCache sync.Map // SQLite text (or a stmt) → PostgreSQL text

// stmt is one statement in both engines' spelling (statements.go). pg is "" when
// PostgreSQL's is SQLite's with $n placeholders and the fragments of pgFragments (see
// sql); otherwise it is written out beside SQLite's, and sqlite is "" for a statement only
// PostgreSQL runs.
type stmt struct{ sqlite, pg string }

// dynamic is a statement built at run time (filters, IN lists, multi-row inserts) by the
// code beside its caller, in SQLite's spelling.
func dynamic(sqlite string) stmt { return stmt{sqlite: sqlite} }

// text returns q in the store's dialect.
func (s *Store) text(q stmt) string {
	if !s.pg {
		return q.sqlite
	}
	if q.pg == "" {
		return s.sql(q.sqlite)
	}
	if v, ok := pgCache.Load(q); ok {
		return v.(string)
	}
	pq := numberPlaceholders(q.pg)
	pgCache.Store(q, pq)
	return pq
}

// The run helpers below are where the store's statements reach database/sql: in the
// store's dialect, and with the statement Open prepared when there is one (on SQLite, in a
// transaction). on is a *sql.Tx, *sql.DB or *sql.Conn.
type (
	execer interface {
		ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	}
	querier interface {
		QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	}
	rowQuerier interface {
		QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	}
)

// run executes q on on.
func (s *Store) run(ctx context.Context, on execer, q stmt, args ...any) (sql.Result, error) {
	if tx, ok := on.(*sql.Tx); ok {
		if st, ok := s.prepared[q.sqlite]; ok {
			return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		}
	}
	return on.ExecContext(ctx, s.text(q), args...)
}

// rows runs the query q on on.
func (s *Store) rows(ctx context.Context, on querier, q stmt, args ...any) (*sql.Rows, error) {
	if tx, ok := on.(*sql.Tx); ok {
		if st, ok := s.prepared[q.sqlite]; ok {
			return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		}
	}
	return on.QueryContext(ctx, s.text(q), args...)
}

// row runs the query q, which returns at most one row, on on.
func (s *Store) row(ctx context.Context, on rowQuerier, q stmt, args ...any) *sql.Row {
	if tx, ok := on.(*sql.Tx); ok {
		if st, ok := s.prepared[q.sqlite]; ok {
			// The copy bound to tx is closed with it; the statement on the connection stays.
			return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
		}
	}
	return on.QueryRowContext(ctx, s.text(q), args...)
}

// numberPlaceholders turns each ? outside a quoted string into $1, $2, ….
func numberPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isUniqueViolation matches a unique constraint's error by code, never by message.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pgxer is a pgx connection or transaction: db copy's destination and the LISTEN
// connection, PostgreSQL only, so they run q's PostgreSQL text ($n placeholders).
type pgxer interface {
	Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, q string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) pgx.Row
}

func pgxExec(ctx context.Context, on pgxer, q stmt, args ...any) (pgconn.CommandTag, error) {
	return on.Exec(ctx, q.pg, args...)
}

func pgxQuery(ctx context.Context, on pgxer, q stmt, args ...any) (pgx.Rows, error) {
	return on.Query(ctx, q.pg, args...)
}

func pgxQueryRow(ctx context.Context, on pgxer, q stmt, args ...any) pgx.Row {
	return on.QueryRow(ctx, q.pg, args...)
}

// dynamicPG is a PostgreSQL-only statement built at run time (db copy's per-table ones).
func dynamicPG(pg string) stmt { return stmt{pg: pg} }

// nextDeliveryIDs returns the first of n new delivery ids, which the caller numbers on
// from. SQLite has one writer, so the next ids are the table's largest plus one, two, …
// (what SQLite itself would pick); on PostgreSQL several gateways insert at once and the
// ids come from the column's sequence.
func (s *Store) nextDeliveryIDs(ctx context.Context, tx *sql.Tx, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	if !s.pg {
		var last int64
		if err := s.queryRow(ctx, tx, maxDeliveryIDSQL).Scan(&last); err != nil {
			return nil, err
		}
		for i := range n {
			ids = append(ids, last+1+int64(i))
		}
		return ids, nil
	}
	rows, err := s.rows(ctx, tx, nextDeliveryIDsSQL, n)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}

// lockRepos serializes, on PostgreSQL, the transactions that may queue a deploy of the
// same repositories, taking one transaction-scoped lock per repository in name order: two
// gateways' batches that both queue deploys of "a" and "b" would otherwise each wait for
// the other's uncommitted queued row, a deadlock. SQLite has one writer and needs none.
func (s *Store) lockRepos(ctx context.Context, tx *sql.Tx, repos []string) error {
	if !s.pg || len(repos) == 0 {
		return nil
	}
	sorted := append([]string(nil), repos...)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, r := range sorted {
		if _, err := s.run(ctx, tx, lockRepoSQL, repoLockClass, r); err != nil {
			return err
		}
	}
	return nil
}

// repoLockClass is the first key of the repository locks ("hg" in ASCII, then 1).
const repoLockClass = 0x68670001

// storedTime is t as the database keeps it: UTC, and on PostgreSQL to the microsecond, so a
// value the store hands back after a write equals what a read returns.
func (s *Store) storedTime(t time.Time) time.Time {
	t = t.UTC()
	if s.pg {
		t = t.Truncate(time.Microsecond)
	}
	return t
}

// prefixRange adds the condition "col starts with prefix" in a form an index can serve:
// SQLite's LIKE is case-insensitive and so cannot use one, and a PostgreSQL text cannot
// hold the byte 0xff that bounds the range on SQLite.
func (s *Store) prefixRange(w *where, col, prefix string) {
	prefix = strings.ToLower(prefix)
	if s.pg {
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix)
		w.add(col+" LIKE ?", esc+"%")
		return
	}
	w.add(col+" >= ? AND "+col+" < ?", prefix, prefix+"\xff")
}

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
	return s.row(ctx, tx, stmt{sqlite: q}, args...)
}

// query runs q in tx, with its prepared statement when Open prepared one.
func (s *Store) query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	return s.rows(ctx, tx, stmt{sqlite: q}, args...)
}

// exec runs q in tx, with its prepared statement when Open prepared one.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	return s.run(ctx, tx, stmt{sqlite: q}, args...)
}

func (p prepared) close() {
	for _, st := range p {
		st.Close()
	}
}
