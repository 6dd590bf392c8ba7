package checkout

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestScanDoesNotReadHardLinks: a tracked file replaced by a hard link to a file
// outside the checkout (the run_as account can make one to files it may read and write,
// to any file where protected_hardlinks is off) is never opened by the gateway: it is
// not known to be clean, so a fast-forward refuses it as a local modification and a
// reset replaces the link, never writing through it.
func TestScanDoesNotReadHardLinks(t *testing.T) {
	for _, mode := range []string{ModeFastForward, ModeReset} {
		t.Run(mode, func(t *testing.T) {
			o := testkit.NewOrigin(t)
			o.Commit(map[string]string{"f": "same\n"}, "f")
			base := t.TempDir()
			checkout, outside := filepath.Join(base, "checkout"), filepath.Join(base, "outside")
			spec := Spec{Name: "hardlink", Path: checkout, URL: o.Bare, Branch: "main", Mode: mode}
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			secret := filepath.Join(outside, "secret")
			if err := os.WriteFile(secret, []byte("same\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(checkout, "f")); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(secret, filepath.Join(checkout, "f")); err != nil {
				t.Fatal(err)
			}
			events := watchDirs(t, outside, secret) // the file itself: an open through the link reports only on it
			want := o.Commit(map[string]string{"g": "g\n"}, "g")
			_, err := Update(context.Background(), spec)
			switch {
			case mode == ModeFastForward && (err == nil || !strings.Contains(err.Error(), "local modifications to tracked files: f")):
				t.Errorf("fast-forward beside a hard-linked f: %v; want a refusal naming f", err)
			case mode == ModeReset && err != nil:
				t.Errorf("reset beside a hard-linked f: %v", err)
			case mode == ModeReset && testkit.CheckoutHead(t, checkout) != want:
				t.Errorf("HEAD %s, want %s", testkit.CheckoutHead(t, checkout), want)
			}
			for e, n := range events() {
				// A reset unlinks the checkout's name for it: its link count changes.
				if !strings.HasPrefix(e, "attrib ") {
					t.Errorf("the update touched the file outside through its hard link: %s (%d times)", e, n)
				}
			}
			assertFile(t, secret, "same\n")
			if fi, err := os.Lstat(secret); err != nil || fi.Mode() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
				t.Errorf("%s changed: %v %v", secret, fi.Mode(), err)
			}
		})
	}
}
