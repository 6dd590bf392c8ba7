package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// copyTables are the tables Copy moves, parents before children. A pin is kept: a
// repository held at a commit stays held after the move.
var copyTables = []string{"deploys", "deliveries", "delivery_payloads", "delivery_deploys", "delivery_targets", "notifications", "pins", "reports", "probes", "bad_commits"}

// copySequenced are the copied tables whose ids come from a sequence on PostgreSQL.
var copySequenced = map[string]bool{"deploys": true, "deliveries": true, "notifications": true, "reports": true, "probes": true}

// copySkipped are the tables Copy leaves behind: not history but the state of running
// gateways, which each registers again at start.
var copySkipped = []string{"nodes"}

// Copied counts the rows Copy moved, by table, in copyTables' order.
type Copied struct {
	Tables []string
	Rows   []int64
}

// Copy moves the whole history of the SQLite database file from into the PostgreSQL
// database to (a URL), keeping every id: deliveries, payloads, deploys (with their logs),
// notifications and pins. Both are migrated first. The destination must hold no history yet, and
// no gateway may run on it (Copy holds a lock that every gateway takes shared while it copies),
// nor on the source (Copy opens it WithExclusive, as gateways do); the copy is one
// transaction, so a failure leaves the destination as it was.
func Copy(ctx context.Context, from, to string) (Copied, error) {
	var c Copied
	if IsPostgres(from) {
		return c, errors.New("db copy: --from must be a SQLite file")
	}
	if !IsPostgres(to) {
		return c, errors.New("db copy: --to must be a postgres:// or postgresql:// URL")
	}
	if _, err := os.Stat(from); err != nil {
		return c, fmt.Errorf("db copy: %w", err)
	}
	// Exclusive: a gateway still writing the file would add history after the copy took
	// its rows, and none may start on it while the copy reads.
	src, err := Open(ctx, from, WithExclusive())
	if errors.Is(err, ErrDatabaseInUse) {
		return c, fmt.Errorf("db copy: %w; stop the gateway before copying its history", err)
	}
	if err != nil {
		return c, fmt.Errorf("db copy: open %s: %w", from, err)
	}
	defer src.Close()
	dst, err := Open(ctx, to)
	if err != nil {
		return c, fmt.Errorf("db copy: %w", err)
	}
	defer dst.Close()
	lock, err := dst.lockDatabase(ctx)
	if err != nil {
		return c, fmt.Errorf("db copy: %w", err)
	}
	defer lock.Close()
	if err := src.checkTablesKnown(ctx); err != nil {
		return c, err
	}
	conn, err := dst.wdb.Conn(ctx)
	if err != nil {
		return c, fmt.Errorf("db copy: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		for _, table := range copyTables {
			var n int64
			if err := pgxQueryRow(ctx, tx, dynamicPG(`SELECT count(*) FROM `+table)).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("the destination already holds %d rows in %s; copy into a new database", n, table)
			}
		}
		for _, table := range copyTables {
			n, err := copyTable(ctx, src, tx, table)
			if err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			c.Tables, c.Rows = append(c.Tables, table), append(c.Rows, n)
			if copySequenced[table] {
				// The next id the database hands out follows the copied ones.
				if _, err := pgxExec(ctx, tx, dynamicPG(`SELECT setval(pg_get_serial_sequence('`+table+`', 'id'),
					coalesce(max(id), 0) + 1, false) FROM `+table)); err != nil {
					return fmt.Errorf("%s: sequence: %w", table, err)
				}
			}
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return Copied{}, fmt.Errorf("db copy: %w", err)
	}
	return c, nil
}

// checkTablesKnown refuses a source whose tables Copy does not know: a table added by a
// later migration must be added to copyTables, not silently left behind.
func (s *Store) checkTablesKnown(ctx context.Context) error {
	rows, err := s.rows(ctx, s.rdb, sqliteTablesSQL)
	if err != nil {
		return fmt.Errorf("db copy: list tables: %w", err)
	}
	names, err := scanStrings(rows)
	if err != nil {
		return fmt.Errorf("db copy: list tables: %w", err)
	}
	for _, n := range names {
		known := false
		for _, t := range append(copyTables, copySkipped...) {
			known = known || t == n
		}
		if !known {
			return fmt.Errorf("db copy: the source has a table %s this version cannot copy", n)
		}
	}
	return nil
}

// copyTable streams table's rows, every column, from the SQLite source into the same
// columns of the PostgreSQL destination with COPY, converting what the two engines store
// differently (SQLite's 0/1 for a boolean, a time it kept as text).
func copyTable(ctx context.Context, src *Store, tx pgx.Tx, table string) (int64, error) {
	types := map[string]string{}
	trows, err := pgxQuery(ctx, tx, pgColumnsSQL, table)
	if err != nil {
		return 0, err
	}
	for trows.Next() {
		var name, typ string
		if err := trows.Scan(&name, &typ); err != nil {
			trows.Close()
			return 0, err
		}
		types[name] = typ
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return 0, err
	}
	rows, err := src.rows(ctx, src.rdb, dynamic(`SELECT * FROM `+table+` ORDER BY 1`))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	for _, col := range cols {
		if _, ok := types[col]; !ok {
			return 0, fmt.Errorf("column %s has no counterpart in PostgreSQL", col)
		}
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var rowErr error
	source := pgx.CopyFromFunc(func() ([]any, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out := make([]any, len(vals))
		for i, v := range vals {
			if out[i], rowErr = convertForPostgres(v, types[cols[i]]); rowErr != nil {
				return nil, fmt.Errorf("column %s: %w", cols[i], rowErr)
			}
		}
		return out, nil
	})
	return tx.CopyFrom(ctx, pgx.Identifier{table}, cols, source)
}

// convertForPostgres turns a value read from SQLite into one for a PostgreSQL column of
// type typ (information_schema's data_type).
func convertForPostgres(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "boolean":
		if n, ok := v.(int64); ok {
			return n != 0, nil
		}
	case "timestamp with time zone":
		if s, ok := v.(string); ok {
			for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05"} {
				if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
					return t, nil
				}
			}
			return nil, fmt.Errorf("time %q does not parse", s)
		}
	case "text":
		if b, ok := v.([]byte); ok {
			return string(b), nil
		}
	}
	return v, nil
}
