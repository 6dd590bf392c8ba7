package main

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/hookgate/hookgate"

// importRules is the table between the <!-- imports --> markers of ARCHITECTURE.md: for
// each package (a path in the module, "main" for the root), the project packages it may
// import and the third-party modules that may be imported only there.
type importRules struct {
	project    map[string][]string // package → project packages it may import
	thirdParty map[string][]string // listed path prefix → the packages that may import it
}

func readImportRules(t *testing.T) importRules {
	t.Helper()
	f, err := os.Open("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules := importRules{project: map[string][]string{}, thirdParty: map[string][]string{}}
	in := false
	cell := regexp.MustCompile("`([^`]+)`")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "<!-- imports -->" {
			in = !in
			continue
		}
		if !in || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "| package") || strings.HasPrefix(line, "|---") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) != 3 {
			t.Fatalf("ARCHITECTURE.md import table: row %q has %d columns, want 3", line, len(cols))
		}
		var pkgs, may, third []string
		for _, m := range cell.FindAllStringSubmatch(cols[0], -1) {
			pkgs = append(pkgs, m[1])
		}
		for _, m := range cell.FindAllStringSubmatch(cols[1], -1) {
			may = append(may, m[1])
		}
		for _, m := range cell.FindAllStringSubmatch(cols[2], -1) {
			third = append(third, m[1])
		}
		for _, p := range pkgs {
			rules.project[p] = append(rules.project[p], may...)
			for _, tp := range third {
				rules.thirdParty[tp] = append(rules.thirdParty[tp], p)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rules.project) < 5 {
		t.Fatalf("ARCHITECTURE.md: read %d rows of the import table between <!-- imports --> markers", len(rules.project))
	}
	return rules
}

// TestImportRules keeps ARCHITECTURE.md's import table true: every non-test file of the
// module (scripts/ aside: tools that measure it) imports only the project packages its
// package's row allows, and a third-party module listed in the table only from the package
// it is listed for. The table is the rule; this test only reads it.
func TestImportRules(t *testing.T) {
	bad, checked, err := importViolations(".", readImportRules(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files", checked)
	}
}

// TestImportRulesCatchABreak: a file of store importing server, and one of server
// importing the PostgreSQL driver, are both reported.
func TestImportRulesCatchABreak(t *testing.T) {
	root := t.TempDir()
	for path, src := range map[string]string{
		"store/x.go":  "package store\nimport _ \"" + modulePath + "/server\"\n",
		"server/y.go": "package server\nimport _ \"github.com/jackc/pgx/v5/stdlib\"\n",
		"store/ok.go": "package store\nimport _ \"" + modulePath + "/migrations\"\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad, checked, err := importViolations(root, readImportRules(t))
	if err != nil || checked != 3 || len(bad) != 2 ||
		!strings.Contains(bad[0]+bad[1], "store/x.go: imports server") || !strings.Contains(bad[0]+bad[1], "server/y.go: imports github.com/jackc/pgx/v5/stdlib") {
		t.Fatalf("violations %q (checked %d, %v), want store/x.go and server/y.go", bad, checked, err)
	}
}

// importViolations walks the Go files under root and returns each import the rules forbid,
// and how many files it read.
func importViolations(root string, rules importRules) ([]string, int, error) {
	var bad []string
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "scripts") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel = filepath.ToSlash(rel)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		if pkg == "." {
			pkg = "main"
		}
		allowed, known := rules.project[pkg]
		if !known {
			bad = append(bad, fmt.Sprintf("%s: package %s has no row in ARCHITECTURE.md's import table", rel, pkg))
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if rest, ok := strings.CutPrefix(p, modulePath+"/"); ok {
				if !slices.Contains(allowed, rest) {
					bad = append(bad, fmt.Sprintf("%s: imports %s, which package %s may not (ARCHITECTURE.md)", rel, rest, pkg))
				}
				continue
			}
			for prefix, owners := range rules.thirdParty {
				if (p == prefix || strings.HasPrefix(p, prefix+"/")) && !slices.Contains(owners, pkg) {
					bad = append(bad, fmt.Sprintf("%s: imports %s, which only %s may (ARCHITECTURE.md)", rel, p, strings.Join(owners, ", ")))
				}
			}
		}
		return nil
	})
	slices.Sort(bad)
	return bad, checked, err
}
