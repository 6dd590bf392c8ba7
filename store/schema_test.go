package store

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/pgtest"
	"github.com/hookgate/hookgate/migrations"
)

// TestMigrationsComeInPairs: every migration has its other engine's copy, same number and
// name, so a migration added to one folder only fails here even without PostgreSQL.
func TestMigrationsComeInPairs(t *testing.T) {
	names := func(fsys fs.FS) []string {
		m, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	lite, pg := names(migrations.FS), names(migrations.Postgres)
	if len(lite) == 0 || !slices.Equal(lite, pg) {
		t.Fatalf("migrations differ between the engines:\nSQLite:     %v\nPostgreSQL: %v", lite, pg)
	}
}

// TestSchemasMatch migrates both engines and compares what a query can tell: the tables,
// their columns and which may be NULL, and the indexes with their columns, uniqueness and
// predicates. Column types differ by design (INTEGER and BIGINT, TEXT and TIMESTAMPTZ).
func TestSchemasMatch(t *testing.T) {
	if !pgtest.Enabled(t) {
		t.Skip("PostgreSQL tests are off: set " + pgtest.Env + " (scripts/pgtest); CI always does")
	}
	lite := describeSchema(t, openTest(t))
	pg := describeSchema(t, openAt(t, pgtest.Database(t)))
	for _, k := range slices.Sorted(maps.Keys(lite)) {
		if pg[k] != lite[k] {
			t.Errorf("%s\n  SQLite:     %s\n  PostgreSQL: %s", k, lite[k], orNone(pg[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(pg)) {
		if _, ok := lite[k]; !ok {
			t.Errorf("%s\n  SQLite:     (none)\n  PostgreSQL: %s", k, pg[k])
		}
	}
	if len(lite) < 10 {
		t.Fatalf("read only %d schema entries from SQLite: %v", len(lite), lite)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// describeSchema returns one line per column ("column deploys.repo") and per index
// ("index deploys_running"), each describing it in terms both engines share.
func describeSchema(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	query := func(q string, scan func(...any) error, dest ...any) {
		t.Helper()
		rows, err := s.rdb.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			if err := scan(dest...); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	var table, column, name, def string
	var nullable, pk bool
	column1 := func(...any) error {
		null := "null"
		if !nullable || pk {
			// A primary key column is NOT NULL on PostgreSQL and, for the rowid alias,
			// never NULL on SQLite either, whatever table_info says.
			null = "not null"
		}
		out["column "+table+"."+column] = null
		return nil
	}
	index1 := func(...any) error {
		d, err := describeIndex(def)
		if err != nil {
			return err
		}
		out["index "+name] = d
		return nil
	}
	if s.pg {
		query(`SELECT table_name, column_name, is_nullable = 'YES', false FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name != 'goose_db_version'`,
			column1, &table, &column, &nullable, &pk)
		// Indexes that back a primary key or unique constraint are the constraint's, which
		// SQLite keeps unnamed: they are compared as columns, not as indexes.
		query(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
			AND tablename != 'goose_db_version'
			AND indexname NOT IN (SELECT conname FROM pg_constraint)`, index1, &name, &def)
	} else {
		query(`SELECT m.name, c.name, c."notnull" = 0, c.pk > 0 FROM sqlite_master m, pragma_table_info(m.name) c
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name != 'goose_db_version'`,
			column1, &table, &column, &nullable, &pk)
		query(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`, index1, &name, &def)
	}
	return out
}

var (
	indexDef = regexp.MustCompile(`(?is)^create\s+(unique\s+)?index\s+(?:if\s+not\s+exists\s+)?\S+\s+on\s+(?:\w+\.)?(\w+)\s*(?:using\s+\w+\s*)?\((.*?)\)\s*(?:where\s+(.*))?$`)
	pgCast   = regexp.MustCompile(`::[a-z ]+`)
	noise    = regexp.MustCompile(`[\s()"]+`)
)

// describeIndex reduces a CREATE INDEX statement of either engine to "unique on table
// (columns) where predicate", without casts, quotes, brackets or spaces, and with one
// spelling of "not equal".
func describeIndex(def string) (string, error) {
	m := indexDef.FindStringSubmatch(strings.TrimSpace(def))
	if m == nil {
		return "", fmt.Errorf("cannot read index definition %q", def)
	}
	norm := func(s string) string {
		s = pgCast.ReplaceAllString(strings.ToLower(s), "")
		return strings.ReplaceAll(noise.ReplaceAllString(s, ""), "!=", "<>")
	}
	d := "on " + strings.ToLower(m[2]) + " (" + norm(m[3]) + ")"
	if m[1] != "" {
		d = "unique " + d
	}
	if m[4] != "" {
		d += " where " + norm(m[4])
	}
	return d, nil
}
