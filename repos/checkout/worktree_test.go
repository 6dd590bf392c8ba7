package checkout

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidPath(t *testing.T) {
	good := []string{
		"a", "a/b/c", ".gitignore", ".gitattributes", ".github/workflows/ci.yml", ".gitmodules",
		"x.git", ".gitx", "git~2", "gitt~1", "a/.git-crypt/key", "...", "a/.../b", "café/.g\u00eft",
		"a b", "a\\b", ".GITMODULES", "gitmod~1",
	}
	for _, p := range good {
		if err := validPath(p, false); err != nil {
			t.Errorf("validPath(%q) = %v, want nil", p, err)
		}
	}
	bad := []string{
		"", "/a", "a/", "a//b", ".", "./a", "..", "a/..", "a/../b", "a\x00b",
		".git", ".GIT", ".Git", "a/.gIt", "a/.git/b", ".git/config",
		".git ", ".git.", ".git . .", ".git::$INDEX_ALLOCATION", "git~1", "GIT~1", "a/git~1 /b", "git~1.",
		`a\.git`, `a\.git\hooks`, `.git\x`,
		".g\u200cit", "\ufeff.git", ".gi\u200dT", ".\u206agit\u200e", "a/.GI\u202eT/b",
	}
	for _, p := range bad {
		if err := validPath(p, false); err == nil {
			t.Errorf("validPath(%q) = nil, want an error", p)
		}
	}
	// A symlink may not pose as .gitmodules, which git reads (protectNTFS/HFS forms too).
	for _, p := range []string{".gitmodules", "a/.GitModules", ".gitmodules .", ".gitmodules:x", "gitmod~1", "GI7EBA~4", ".git\u200cmodules"} {
		if err := validPath(p, true); err == nil {
			t.Errorf("validPath(%q, symlink) = nil, want an error", p)
		}
	}
	for _, p := range []string{"gitmodules", "a/.gitmodulesx", "gitmod~0"} {
		if err := validPath(p, true); err != nil {
			t.Errorf("validPath(%q, symlink) = %v, want nil", p, err)
		}
	}
}

// TestWorkTreeNeverFollowsSymlinks calls every workTree method on paths below
// symlinks that point outside the checkout, into .git and inside the checkout, and
// checks that none of them reaches the target.
func TestWorkTreeNeverFollowsSymlinks(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	checkout := filepath.Join(base, "checkout")
	for _, d := range []string{outside, filepath.Join(checkout, ".git"), filepath.Join(checkout, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	canaries := map[string]string{
		filepath.Join(outside, "x"):           "outside",
		filepath.Join(checkout, ".git", "x"):  "git",
		filepath.Join(checkout, "sub", "x"):   "sub",
		filepath.Join(checkout, "sub", "f"):   "sub file",
		filepath.Join(checkout, "plainfile"):  "plain",
		filepath.Join(outside, "deep", "x"):   "deep",
		filepath.Join(checkout, ".git", "f"):  "git file",
		filepath.Join(checkout, "sub", "d/x"): "sub deep",
	}
	for p, content := range canaries {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"out": outside, "rel": "../outside", "git": ".git", "in": "sub", "file": "plainfile/x"} {
		if err := os.Symlink(target, filepath.Join(checkout, name)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := openWorkTree(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	for _, link := range []string{"out", "rel", "git", "in"} {
		for _, below := range []string{"x", "deep/x", "f", "d/x"} {
			p := link + "/" + below
			if _, err := w.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Lstat(%s) = %v, want not exist", p, err)
			}
			if _, err := w.Readlink(p); err == nil {
				t.Errorf("Readlink(%s) succeeded", p)
			}
			if f, err := w.Open(p, nil); err == nil {
				f.Close()
				t.Errorf("Open(%s) succeeded", p)
			}
			if err := w.Remove(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Remove(%s) = %v, want not exist", p, err)
			}
			if _, err := w.WriteFile(p, strings.NewReader(pwned), 0o644); err == nil {
				t.Errorf("WriteFile(%s) succeeded", p)
			}
			if _, err := w.Symlink("/", p); err == nil {
				t.Errorf("Symlink(%s) succeeded", p)
			}
			if err := w.Mkdir(p); err == nil {
				t.Errorf("Mkdir(%s) succeeded", p)
			}
			if err := w.MkdirAll(p); err == nil {
				t.Errorf("MkdirAll(%s) succeeded", p)
			}
		}
		if _, err := w.ReadDir(link); err == nil {
			t.Errorf("ReadDir(%s) succeeded", link)
		}
	}
	var walked []string
	if err := w.WalkFiles("sub", func(p string) error { walked = append(walked, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(walked, ",") != "sub/d/x,sub/f,sub/x" {
		t.Errorf("WalkFiles(sub) = %v", walked)
	}
	// .git is refused by name, whatever the path's case or alias.
	for _, p := range []string{".git/x", ".GIT/x", "git~1/x", ".git", "sub/../.git/x"} {
		if _, err := w.Lstat(p); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat(%s) = %v, want an unsafe path error", p, err)
		}
		if err := w.Remove(p); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Remove(%s) = %v, want an unsafe path error", p, err)
		}
	}
	// The final component is the link itself: removing it leaves the target.
	for _, link := range []string{"out", "rel", "git", "in", "file"} {
		fi, err := w.Lstat(link)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("Lstat(%s) = %v, %v; want the symlink itself", link, fi, err)
		}
		if err := w.Remove(link); err != nil {
			t.Errorf("Remove(%s): %v", link, err)
		}
	}
	for p, content := range canaries {
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q", p, b, err, content)
		}
	}
}

// TestWorkTreeIsTheOnlyWay makes sure the updater has no file-system call of its own
// on a work-tree path: in the package's code, outside worktree.go, file calls are
// allowed only in the functions that handle the checkout directory itself (whether
// it exists, and the sibling a clone is made in).
func TestWorkTreeIsTheOnlyWay(t *testing.T) {
	forbidden := map[string]map[string]bool{
		"os": {"Lstat": true, "Stat": true, "Remove": true, "RemoveAll": true, "Rename": true, "Symlink": true,
			"Link": true, "Readlink": true, "Open": true, "OpenFile": true, "Create": true, "CreateTemp": true,
			"Mkdir": true, "MkdirAll": true, "MkdirTemp": true, "ReadDir": true, "ReadFile": true, "WriteFile": true,
			"Chmod": true, "Chown": true, "Lchown": true, "Chtimes": true, "Truncate": true, "OpenRoot": true, "DirFS": true},
		"filepath": {"Walk": true, "WalkDir": true, "Glob": true, "EvalSymlinks": true},
		"unix":     nil, // every function
		"syscall":  {"Open": true, "Openat": true, "Unlink": true, "Unlinkat": true, "Rename": true, "Symlink": true, "Lstat": true, "Stat": true, "Mkdir": true, "Rmdir": true},
		"ioutil":   nil,
	}
	// The checkout directory itself and its parent, never a path inside it; takeLock
	// links the lock it made in .git to git's lock name there (billy has no link);
	// tagTimes makes (and removes) a repository of its own in the system's temp dir.
	allowed := map[string]bool{"update": true, "cloneCheckout": true, "Inspect": true, "needsClone": true, "takeLock": true,
		"tagTimes": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "worktree.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				funcs, watched := forbidden[pkg.Name]
				if !watched || funcs != nil && !funcs[sel.Sel.Name] {
					return true
				}
				if allowed[fn.Name.Name] && pkg.Name == "os" {
					return true
				}
				t.Errorf("%s: %s calls %s.%s; work-tree paths go through workTree", fset.Position(sel.Pos()), fn.Name.Name, pkg.Name, sel.Sel.Name)
				return true
			})
		}
	}
	if checked < 3 {
		t.Fatalf("checked %d files; run from the package directory", checked)
	}
}
