package repos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
)

// TestWorkTreeRefusesDotGitElsewhere: the writer updates only a checkout whose .git is
// a real directory, and only while it stays the same one. A .git that is a symlink or a
// gitdir file would let whoever made it choose the repository the gateway writes the
// index and branch into, and the config (origin's URL) it fetches with.
func TestWorkTreeRefusesDotGitElsewhere(t *testing.T) {
	o := testkit.NewOrigin(t)
	checkout := filepath.Join(t.TempDir(), "checkout")
	spec := Spec{Name: "dotgit", Path: checkout, URL: o.Bare, Branch: "main", Mode: ModeFastForward}
	if _, err := Update(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	before := testkit.CheckoutHead(t, checkout)
	o.Commit(map[string]string{"new": "new\n"}, "second")

	// .git moved to a folder in the work tree (which the run_as account may own) and a
	// symlink to it in its place (go-git itself refuses one leading out of the
	// checkout): refused, nothing written.
	elsewhere := filepath.Join(checkout, "moved.git")
	if err := os.Rename(filepath.Join(checkout, ".git"), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("moved.git", filepath.Join(checkout, ".git")); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(context.Background(), spec); err == nil {
		t.Error("Update with .git a symlink succeeded; want a refusal")
	}
	// go-git happens to refuse that link already; the writer does not rely on it.
	if w, err := openWorkTree(checkout); err == nil || !strings.Contains(err.Error(), ".git is not a directory") {
		if err == nil {
			w.Close()
		}
		t.Errorf("openWorkTree with .git a symlink: %v; want a refusal", err)
	}
	if _, err := os.Lstat(filepath.Join(checkout, "new")); !os.IsNotExist(err) {
		t.Errorf("new was written through a checkout whose .git is a symlink: %v", err)
	}
	if got := testkit.Git(t, elsewhere, "rev-parse", "HEAD"); got != before {
		t.Errorf("HEAD of the linked .git moved to %s", got)
	}

	// A gitdir file, as git worktree makes: refused too.
	if err := os.Remove(filepath.Join(checkout, ".git")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, ".git"), []byte("gitdir: "+elsewhere+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w, err := openWorkTree(checkout); err == nil || !strings.Contains(err.Error(), ".git is not a directory") {
		if err == nil {
			w.Close()
		}
		t.Errorf("openWorkTree with .git a gitdir file: %v; want a refusal", err)
	}

	// Back in place: the update goes through; a .git replaced while the work tree is
	// open is noticed before the index and branch are written.
	if err := os.Remove(filepath.Join(checkout, ".git")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(elsewhere, filepath.Join(checkout, ".git")); err != nil {
		t.Fatal(err)
	}
	w, err := openWorkTree(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.checkGit(); err != nil {
		t.Errorf("checkGit on the same .git: %v", err)
	}
	if err := os.Rename(filepath.Join(checkout, ".git"), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(checkout, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.checkGit(); err == nil {
		t.Error("checkGit after .git was replaced by another directory: nil")
	}
}

// TestNestedDotGitIsNotEntered: the run_as account may make a folder named .git in a
// subfolder it owns. Origin can never name it (validPath), and the writer neither
// enters nor removes it: a directory holding it is the account's untracked content,
// and the update says so instead of blaming origin.
func TestNestedDotGitIsNotEntered(t *testing.T) {
	for _, mode := range []string{ModeFastForward, ModeReset} {
		t.Run(mode, func(t *testing.T) {
			o := testkit.NewOrigin(t)
			o.Commit(map[string]string{"sub/a": "a\n"}, "sub")
			checkout := filepath.Join(t.TempDir(), "checkout")
			spec := Spec{Name: "nested", Path: checkout, URL: o.Bare, Branch: "main", Mode: mode}
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(checkout, "sub", ".git", "config")
			if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(config, []byte("the account's\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			o.Commit(map[string]string{"sub/a": ""}, "remove sub/a")
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatalf("removing sub/a beside the account's sub/.git: %v", err)
			}
			o.Commit(map[string]string{"sub": "now a file\n"}, "sub becomes a file")
			_, err := Update(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), "holds untracked files (sub/.git)") {
				t.Errorf("sub with the account's .git replaced by a file: %v; want a refusal naming sub/.git", err)
			}
			assertFile(t, config, "the account's\n")
		})
	}
}
