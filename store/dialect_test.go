// The SQL guard: statements reach database/sql and pgx only through the dialect layer.

package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runMethods are the database/sql and pgx methods that take SQL text (or run a prepared
// statement): outside dialect.go nothing calls them, so every statement goes through
// text() in the store's dialect and, on SQLite, finds its prepared statement.
var runMethods = []string{
	"ExecContext", "QueryContext", "QueryRowContext", "PrepareContext", "StmtContext",
	"Exec", "Query", "QueryRow", "Prepare",
}

// rawSQLAllowed are the files, besides dialect.go, still allowed to call them, each with
// why: none now.
var rawSQLAllowed = map[string]string{}

// TestSQLOnlyThroughTheDialect fails naming file:line of every call of a runMethods method
// with arguments in a non-test store file other than dialect.go (and rawSQLAllowed). A
// call without arguments (url.Values' Query()) is no statement.
func TestSQLOnlyThroughTheDialect(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "dialect.go" {
			continue
		}
		if _, ok := rawSQLAllowed[name]; ok {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if ok && slices.Contains(runMethods, sel.Sel.Name) {
				t.Errorf("%s: calls %s outside the dialect layer; name the statement in statements.go (or build it with dynamic) and run it with s.run, s.rows or s.row",
					fset.Position(call.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked < 20 {
		t.Fatalf("checked %d files: run from the store folder", checked)
	}
}
