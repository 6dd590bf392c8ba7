package checkout

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"golang.org/x/crypto/ssh"
)

// assertClean checks with the git CLI that the index and work tree match HEAD for
// tracked files and that the object store is sound.
func (f *fixture) assertClean() {
	f.t.Helper()
	if out := testkit.Git(f.t, f.Path, "status", "--porcelain", "--untracked-files=no"); out != "" {
		f.t.Errorf("git status shows tracked changes after update:\n%s", out)
	}
	// diff-index with --cached compares index and HEAD without refreshing stat data.
	if out := testkit.Git(f.t, f.Path, "diff-index", "--cached", "--name-status", "HEAD"); out != "" {
		f.t.Errorf("index differs from HEAD:\n%s", out)
	}
	testkit.Git(f.t, f.Path, "fsck", "--no-progress", "--full")
}

// untrackedFiles are what deploys keep beside the checkout's tracked files.
var untrackedFiles = map[string]string{
	"node_modules/x.js": "module",
	".env":              "SECRET=1",
	".venv/bin/python":  "#!python",
	"build/out.txt":     "built",
	"lib/local.txt":     "mine", // lib's tracked files are all deleted by the update
	"notes.txt":         "untracked",
}

func (f *fixture) assertUntrackedKept() {
	f.t.Helper()
	for name, want := range untrackedFiles {
		full := filepath.Join(f.Path, filepath.FromSlash(name))
		got, err := os.ReadFile(full)
		if err != nil || string(got) != want {
			f.t.Errorf("untracked %s: got %q, %v; want %q", name, got, err, want)
		}
	}
}

var seedFiles = map[string]string{
	".gitignore":   "node_modules/\nbuild/\n.env\n.venv/\n",
	"keep.txt":     "keep",
	"change.txt":   "v1",
	"gone.txt":     "bye",
	"old/name.txt": "rename me",
	"script.sh":    "echo hi",
	"lib/only.txt": "only",
	"fd":           "a file that becomes a directory",
	"df/a.txt":     "a directory that becomes a file",
}

// pushBigChange pushes a commit that exercises every kind of work tree change.
func (f *fixture) pushBigChange() string {
	f.t.Helper()
	f.Write(map[string]string{"change.txt": "v2", "new/deep/file.txt": "deep", "link": "->keep.txt"})
	for _, name := range []string{"gone.txt", "lib/only.txt", "fd"} {
		if err := os.Remove(filepath.Join(f.Seed, name)); err != nil {
			f.t.Fatal(err)
		}
	}
	testkit.Git(f.t, f.Seed, "mv", "old/name.txt", "new-name.txt")
	if err := os.Chmod(filepath.Join(f.Seed, "script.sh"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(f.Seed, "df")); err != nil {
		f.t.Fatal(err)
	}
	f.Write(map[string]string{"fd/inner.txt": "inner", "df": "now a file"})
	return f.CommitAll("big change")
}

func TestUpdateAppliesOneCommit(t *testing.T) {
	for _, mode := range []string{"", "ff", "reset"} {
		t.Run("mode="+mode, func(t *testing.T) {
			f := newFixture(t, seedFiles, true)
			testkit.WriteFiles(f.t, f.Path, untrackedFiles)
			before := f.head()
			want := f.pushBigChange()

			res, err := Update(context.Background(), f.spec(mode))
			if err != nil {
				t.Fatal(err)
			}
			if res.From != before || res.To != want || res.Cloned {
				t.Errorf("result %+v, want From %s To %s", res, before, want)
			}
			// change.txt, gone.txt, old/name.txt, new-name.txt, script.sh, link,
			// new/deep/file.txt, lib/only.txt, fd, fd/inner.txt, df/a.txt, df
			if res.Changed != 12 {
				t.Errorf("Changed = %d, want 12", res.Changed)
			}
			if got := f.head(); got != want {
				t.Errorf("HEAD = %s, want %s", got, want)
			}
			for name, content := range map[string]string{
				"change.txt": "v2", "new-name.txt": "rename me", "new/deep/file.txt": "deep",
				"fd/inner.txt": "inner", "df": "now a file", "keep.txt": "keep",
			} {
				if got := f.read(name); got != content {
					t.Errorf("%s = %q, want %q", name, got, content)
				}
			}
			for _, name := range []string{"gone.txt", "old", "lib/only.txt", "df/a.txt"} {
				if f.exists(name) {
					t.Errorf("%s still exists", name)
				}
			}
			if fi, err := os.Stat(filepath.Join(f.Path, "script.sh")); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("script.sh mode: %v, %v; want 0755", fi.Mode(), err)
			}
			if target, err := os.Readlink(filepath.Join(f.Path, "link")); err != nil || target != "keep.txt" {
				t.Errorf("link: %q, %v; want symlink to keep.txt", target, err)
			}
			f.assertUntrackedKept()
			f.assertClean()
			if out := testkit.Git(t, f.Path, "status", "--porcelain"); out != "?? lib/\n?? notes.txt" && out != "?? lib/local.txt\n?? notes.txt" {
				t.Errorf("git status --porcelain:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(f.Path, ".git", "index.lock")); !os.IsNotExist(err) {
				t.Errorf("index.lock left behind: %v", err)
			}

			// The index we wrote must serve the next update too.
			again, err := Update(context.Background(), f.spec(mode))
			if err != nil {
				t.Fatal(err)
			}
			if again.From != want || again.To != want || again.Changed != 0 {
				t.Errorf("second update %+v, want no change at %s", again, want)
			}
			f.Write(map[string]string{"change.txt": "v3"})
			third := f.CommitAll("third")
			if _, err := Update(context.Background(), f.spec(mode)); err != nil {
				t.Fatal(err)
			}
			if f.head() != third || f.read("change.txt") != "v3" {
				t.Errorf("third update: HEAD %s change.txt %q", f.head(), f.read("change.txt"))
			}
			f.assertClean()
		})
	}
}

func TestUpdateClonesMissingCheckout(t *testing.T) {
	f := newFixture(t, seedFiles, false)
	s := f.spec("")
	s.URL = f.Bare
	res, err := Update(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	want := testkit.Git(t, f.Seed, "rev-parse", "HEAD")
	if !res.Cloned || res.From != "" || res.To != want || res.Changed != len(seedFiles) {
		t.Errorf("result %+v, want a clone at %s with %d files", res, want, len(seedFiles))
	}
	if got := f.read("keep.txt"); got != "keep" {
		t.Errorf("keep.txt = %q", got)
	}
	hash, branch, err := Head(f.Path)
	if err != nil || hash != want || branch != "main" {
		t.Errorf("Head = %s, %s, %v; want %s on main", hash, branch, err, want)
	}
	f.assertClean()
	entries, err := os.ReadDir(filepath.Dir(f.Path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "hookgate-clone") {
			t.Errorf("clone temporary %s left behind", e.Name())
		}
	}

	// A checkout made by go-git's clone updates like any other.
	testkit.WriteFiles(f.t, f.Path, untrackedFiles)
	next := f.pushBigChange()
	if _, err := Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if f.head() != next {
		t.Errorf("HEAD = %s, want %s", f.head(), next)
	}
	f.assertUntrackedKept()
	f.assertClean()
}

func TestUpdateRejects(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(f *fixture, s *Spec)
		want    string
	}{
		{"missing without url", func(f *fixture, s *Spec) {
			s.Path = filepath.Join(f.Path, "nope")
		}, "does not exist and no url is set"},
		{"not a work tree", func(f *fixture, s *Spec) {
			s.Path = t.TempDir()
		}, "is not a git work tree"},
		{"a file", func(f *fixture, s *Spec) {
			s.Path = filepath.Join(f.Path, "keep.txt")
		}, "is not a directory"},
		{"bare repository", func(f *fixture, s *Spec) {
			s.Path = f.Bare
		}, "is not a git work tree"},
		{"branch missing on origin", func(f *fixture, s *Spec) {
			s.Branch = "nope"
		}, `fetch origin nope: branch "nope" not found on origin`},
		{"clone of a missing branch", func(f *fixture, s *Spec) {
			s.Path, s.URL, s.Branch = filepath.Join(t.TempDir(), "new"), f.Bare, "nope"
		}, `branch "nope" not found on origin`},
		{"unknown mode", func(f *fixture, s *Spec) {
			s.Mode = "merge"
		}, `unknown mode "merge"`},
		{"invalid branch", func(f *fixture, s *Spec) {
			s.Branch = "a..b"
		}, "invalid branch name"},
		{"on another branch", func(f *fixture, s *Spec) {
			testkit.Git(t, f.Path, "checkout", "-q", "-b", "feature")
		}, "checkout is on feature, expected branch main"},
		{"detached", func(f *fixture, s *Spec) {
			testkit.Git(t, f.Path, "checkout", "-q", "--detach")
		}, "checkout is on a detached HEAD at"},
		{"index locked", func(f *fixture, s *Spec) {
			testkit.WriteFiles(f.t, f.Path, map[string]string{".git/index.lock": ""})
		}, "index.lock exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{"keep.txt": "keep"}, true)
			f.Write(map[string]string{"new.txt": "new"})
			f.CommitAll("second")
			s := f.spec("")
			tt.prepare(f, &s)
			_, err := Update(context.Background(), s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "repository test: ") {
				t.Errorf("error %q does not name the repository", err)
			}
		})
	}
}

// snapshot records what an ff update that fails must leave exactly as it was.
type snapshot struct {
	head, index, branch string
	files               map[string]string
}

func (f *fixture) snapshot(names ...string) snapshot {
	f.t.Helper()
	idx, err := os.ReadFile(filepath.Join(f.Path, ".git", "index"))
	if err != nil {
		f.t.Fatal(err)
	}
	s := snapshot{
		head:   testkit.Git(f.t, f.Path, "symbolic-ref", "-q", "HEAD"),
		index:  string(idx),
		branch: testkit.Git(f.t, f.Path, "rev-parse", "refs/heads/main"),
		files:  map[string]string{},
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(f.Path, n))
		if err == nil {
			s.files[n] = string(b)
		}
	}
	return s
}

func (f *fixture) assertUnchanged(before snapshot) {
	f.t.Helper()
	names := make([]string, 0, len(before.files))
	for n := range before.files {
		names = append(names, n)
	}
	after := f.snapshot(names...)
	if after.head != before.head || after.branch != before.branch {
		f.t.Errorf("HEAD moved: %s %s → %s %s", before.head, before.branch, after.head, after.branch)
	}
	if after.index != before.index {
		f.t.Error("index was rewritten by a refused update")
	}
	for n, content := range before.files {
		if after.files[n] != content {
			f.t.Errorf("%s changed from %q to %q", n, content, after.files[n])
		}
	}
	if _, err := os.Stat(filepath.Join(f.Path, ".git", "index.lock")); !os.IsNotExist(err) {
		f.t.Errorf("index.lock left behind: %v", err)
	}
}

func TestUpdateLocalModifications(t *testing.T) {
	tests := []struct {
		name   string
		modify func(f *fixture)
		path   string
	}{
		{"content of a file the update changes", func(f *fixture) {
			testkit.WriteFiles(f.t, f.Path, map[string]string{"change.txt": "local edit"})
		}, "change.txt"},
		{"content of a file the update leaves alone, same size", func(f *fixture) {
			testkit.WriteFiles(f.t, f.Path, map[string]string{"keep.txt": "KEEP"})
		}, "keep.txt"},
		{"mode", func(f *fixture) {
			if err := os.Chmod(filepath.Join(f.Path, "keep.txt"), 0o755); err != nil {
				f.t.Fatal(err)
			}
		}, "keep.txt"},
		{"deleted", func(f *fixture) {
			if err := os.Remove(filepath.Join(f.Path, "keep.txt")); err != nil {
				f.t.Fatal(err)
			}
		}, "keep.txt"},
		{"staged", func(f *fixture) {
			testkit.WriteFiles(f.t, f.Path, map[string]string{"change.txt": "staged"})
			testkit.Git(f.t, f.Path, "add", "change.txt")
		}, "change.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, seedFiles, true)
			testkit.WriteFiles(f.t, f.Path, untrackedFiles)
			tt.modify(f)
			want := f.pushBigChange()

			before := f.snapshot("change.txt", "keep.txt", "gone.txt", ".env")
			_, err := Update(context.Background(), f.spec("ff"))
			if err == nil || !strings.Contains(err.Error(), "local modifications") || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("ff: error %v, want local modifications naming %s", err, tt.path)
			}
			f.assertUnchanged(before)
			if !f.exists("gone.txt") || f.exists("new-name.txt") {
				t.Error("work tree changed by a refused update")
			}
			f.assertUntrackedKept()

			res, err := Update(context.Background(), f.spec("reset"))
			if err != nil {
				t.Fatal(err)
			}
			if res.To != want || f.head() != want {
				t.Errorf("reset: result %+v, HEAD %s, want %s", res, f.head(), want)
			}
			if f.read("change.txt") != "v2" || f.read("keep.txt") != "keep" {
				t.Errorf("reset kept local content: change.txt %q keep.txt %q", f.read("change.txt"), f.read("keep.txt"))
			}
			f.assertUntrackedKept()
			f.assertClean()
		})
	}
}

func TestUpdateLocalModificationListIsShort(t *testing.T) {
	files := map[string]string{}
	for i := range 8 {
		files[fmt.Sprintf("f%d.txt", i)] = "v1"
	}
	f := newFixture(t, files, true)
	for name := range files {
		testkit.WriteFiles(f.t, f.Path, map[string]string{name: "local"})
	}
	f.Write(map[string]string{"f0.txt": "v2"})
	f.CommitAll("second")
	_, err := Update(context.Background(), f.spec(""))
	if err == nil || !strings.Contains(err.Error(), "f0.txt, f1.txt, f2.txt, f3.txt, f4.txt and 3 more") {
		t.Fatalf("error %v, want five paths and a count", err)
	}
}

func TestUpdateDiverged(t *testing.T) {
	tests := []struct {
		name    string
		diverge func(f *fixture)
	}{
		{"local commit", func(f *fixture) {
			testkit.WriteFiles(f.t, f.Path, map[string]string{"local.txt": "local commit"})
			testkit.Git(f.t, f.Path, "add", "local.txt")
			testkit.Git(f.t, f.Path, "commit", "-q", "-m", "local")
			f.Write(map[string]string{"change.txt": "v2"})
			f.CommitAll("upstream")
		}},
		{"origin force-pushed", func(f *fixture) {
			f.Write(map[string]string{"change.txt": "v2"})
			f.CommitAll("to be rewritten")
			testkit.Git(f.t, f.Path, "pull", "-q", "--ff-only")
			testkit.Git(f.t, f.Seed, "reset", "-q", "--hard", "HEAD~1")
			f.Write(map[string]string{"change.txt": "v2 rewritten"})
			f.CommitAll("rewritten")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, seedFiles, true)
			testkit.WriteFiles(f.t, f.Path, untrackedFiles)
			tt.diverge(f)
			want := testkit.Git(t, f.Seed, "rev-parse", "HEAD")

			before := f.snapshot("change.txt", "local.txt")
			res, err := Update(context.Background(), f.spec(""))
			if err == nil || !strings.Contains(err.Error(), "diverged") || !strings.Contains(err.Error(), `set mode = "reset"`) {
				t.Fatalf("ff: error %v, want diverged", err)
			}
			if res.To != res.From || res.From != before.branch {
				t.Errorf("failed update reports %+v, want HEAD %s unchanged", res, before.branch)
			}
			f.assertUnchanged(before)

			res, err = Update(context.Background(), f.spec("reset"))
			if err != nil {
				t.Fatal(err)
			}
			if res.From != before.branch || res.To != want || f.head() != want {
				t.Errorf("reset: result %+v, HEAD %s, want %s", res, f.head(), want)
			}
			if f.exists("local.txt") {
				t.Error("reset kept the file of the discarded local commit")
			}
			f.assertUntrackedKept()
			f.assertClean()
		})
	}
}

func TestUpdateResetSwitchesBranch(t *testing.T) {
	for _, how := range []string{"detached", "other branch"} {
		t.Run(how, func(t *testing.T) {
			f := newFixture(t, seedFiles, true)
			testkit.WriteFiles(f.t, f.Path, untrackedFiles)
			if how == "detached" {
				testkit.Git(t, f.Path, "checkout", "-q", "--detach")
			} else {
				testkit.Git(t, f.Path, "checkout", "-q", "-b", "feature")
				testkit.WriteFiles(f.t, f.Path, map[string]string{"feature.txt": "feature"})
				testkit.Git(t, f.Path, "add", "feature.txt")
				testkit.Git(t, f.Path, "commit", "-q", "-m", "feature")
			}
			want := f.pushBigChange()
			if _, err := Update(context.Background(), f.spec("reset")); err != nil {
				t.Fatal(err)
			}
			hash, branch, err := Head(f.Path)
			if err != nil || hash != want || branch != "main" {
				t.Errorf("Head = %s, %q, %v; want %s on main", hash, branch, err, want)
			}
			if f.exists("feature.txt") {
				t.Error("feature.txt survived the switch to main")
			}
			f.assertUntrackedKept()
			f.assertClean()
		})
	}
}

func TestUpdateUntrackedInTheWay(t *testing.T) {
	// What docs/configuration.md says of repos.NAME.mode: ff changes nothing when an
	// untracked file is in the way; reset replaces exactly the untracked files at paths
	// origin's tree needs, and every other untracked or ignored file survives both.
	t.Run("file", func(t *testing.T) {
		f := newFixture(t, map[string]string{"keep.txt": "keep", ".gitignore": "*.log\n"}, true)
		testkit.WriteFiles(f.t, f.Path, map[string]string{"new.txt": "mine", "sub": "mine too",
			"notes.txt": "not in the way", "debug.log": "ignored, not in the way"})
		f.Write(map[string]string{"new.txt": "theirs", "sub/file.txt": "theirs"})
		want := f.CommitAll("adds new.txt")
		before := f.snapshot("new.txt", "sub", "notes.txt", "debug.log")
		_, err := Update(context.Background(), f.spec(""))
		if err == nil || !strings.Contains(err.Error(), "untracked files") || !strings.Contains(err.Error(), "new.txt, sub") {
			t.Fatalf("ff: error %v, want untracked files new.txt, sub", err)
		}
		f.assertUnchanged(before)

		// reset is git reset --hard: origin's tracked file wins.
		if _, err := Update(context.Background(), f.spec("reset")); err != nil {
			t.Fatal(err)
		}
		if f.head() != want || f.read("new.txt") != "theirs" || f.read("sub/file.txt") != "theirs" {
			t.Errorf("reset: HEAD %s new.txt %q", f.head(), f.read("new.txt"))
		}
		if f.read("notes.txt") != "not in the way" || f.read("debug.log") != "ignored, not in the way" {
			t.Errorf("reset: untracked %q, ignored %q; want both kept", f.read("notes.txt"), f.read("debug.log"))
		}
		f.assertClean()
	})
	t.Run("directory", func(t *testing.T) {
		for _, mode := range []string{"ff", "reset"} {
			f := newFixture(t, map[string]string{"keep.txt": "keep"}, true)
			testkit.WriteFiles(f.t, f.Path, map[string]string{"cache/data": "precious"})
			f.Write(map[string]string{"cache": "a file now"})
			f.CommitAll("adds cache")
			before := f.snapshot("cache/data")
			_, err := Update(context.Background(), f.spec(mode))
			if err == nil || !strings.Contains(err.Error(), "directory cache holds untracked files") {
				t.Fatalf("%s: error %v, want directory cache holds untracked files", mode, err)
			}
			f.assertUnchanged(before)
		}
	})
}

func TestUpdateSkipsSubmodules(t *testing.T) {
	// sub starts as a file, so the update also replaces a file by a submodule.
	f := newFixture(t, map[string]string{"keep.txt": "keep", "sub": "a file"}, true)
	commit := testkit.Git(t, f.Seed, "rev-parse", "HEAD")
	testkit.Git(t, f.Seed, "rm", "-q", "sub")
	testkit.Git(t, f.Seed, "update-index", "--add", "--cacheinfo", "160000,"+commit+",sub")
	testkit.Git(t, f.Seed, "commit", "-q", "-m", "submodule")
	testkit.Git(t, f.Seed, "push", "-q", "origin", "HEAD:main")
	want := testkit.Git(t, f.Seed, "rev-parse", "HEAD")
	if _, err := Update(context.Background(), f.spec("")); err != nil {
		t.Fatal(err)
	}
	if f.head() != want {
		t.Errorf("HEAD = %s, want %s", f.head(), want)
	}
	if fi, err := os.Stat(filepath.Join(f.Path, "sub")); err != nil || !fi.IsDir() {
		t.Errorf("sub: %v, want an empty directory", err)
	}
	f.assertClean()
}

func TestUpdateAlreadyUpToDate(t *testing.T) {
	for _, mode := range []string{"ff", "reset"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, seedFiles, true)
			head := f.head()
			res, err := Update(context.Background(), f.spec(mode))
			if err != nil {
				t.Fatal(err)
			}
			if res != (UpdateResult{From: head, To: head}) {
				t.Errorf("result %+v, want From == To == %s and nothing changed", res, head)
			}
			f.assertClean()
		})
	}
}

func TestHead(t *testing.T) {
	f := newFixture(t, map[string]string{"keep.txt": "keep"}, true)
	want := f.head()
	hash, branch, err := Head(f.Path)
	if err != nil || hash != want || branch != "main" {
		t.Errorf("Head = %s, %q, %v; want %s on main", hash, branch, err, want)
	}
	testkit.Git(t, f.Path, "checkout", "-q", "--detach")
	hash, branch, err = Head(f.Path)
	if err != nil || hash != want || branch != "" {
		t.Errorf("detached Head = %s, %q, %v; want %s and no branch", hash, branch, err, want)
	}
	testkit.Git(t, f.Path, "checkout", "-q", "--orphan", "fresh")
	hash, branch, err = Head(f.Path)
	if err != nil || hash != "" || branch != "fresh" {
		t.Errorf("unborn Head = %s, %q, %v; want no hash on fresh", hash, branch, err)
	}
	if _, _, err := Head(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a git work tree") {
		t.Errorf("Head of a plain directory: %v", err)
	}
}

// hangingSSHServer accepts TCP connections and never says a word, like a
// firewalled or wedged git host. hangUp closes it and the connections it holds.
func hangingSSHServer(t *testing.T) (addr string, hangUp func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				c.Close()
			} else {
				conns = append(conns, c)
			}
			mu.Unlock()
		}
	}()
	hangUp = func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	t.Cleanup(hangUp)
	return ln.Addr().String(), hangUp
}

// writeTestKey writes an ed25519 private key and an empty known_hosts file.
func writeTestKey(t *testing.T) (key, knownHosts string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, knownHosts = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return key, knownHosts
}

func TestUpdateTimeout(t *testing.T) {
	key, knownHosts := writeTestKey(t)

	t.Run("already past deadline", func(t *testing.T) {
		f := newFixture(t, map[string]string{"keep.txt": "keep"}, true)
		f.Write(map[string]string{"new.txt": "new"})
		f.CommitAll("second")
		before := f.head()
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, err := Update(ctx, f.spec(""))
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("error %v, want the deadline", err)
		}
		if f.head() != before {
			t.Error("HEAD moved after the deadline")
		}
	})

	for _, clone := range []bool{false, true} {
		t.Run(fmt.Sprintf("hanging ssh host, clone=%v", clone), func(t *testing.T) {
			addr, hangUp := hangingSSHServer(t)
			url := "ssh://git@" + addr + "/x.git"
			f := newFixture(t, map[string]string{"keep.txt": "keep"}, !clone)
			s := f.spec("")
			s.SSHKey, s.KnownHosts = key, knownHosts
			if clone {
				s.URL = url
			} else {
				testkit.Git(t, f.Path, "remote", "set-url", "origin", url)
			}

			const timeout = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			_, err := Update(ctx, s)
			elapsed := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline") {
				t.Fatalf("error %v, want the deadline", err)
			}
			if elapsed > timeout+5*time.Second {
				t.Fatalf("Update returned after %v, deadline was %v", elapsed, timeout)
			}
			t.Logf("after %v: %v", elapsed, err)

			// The abandoned fetch still holds the repository: the next update waits
			// for it, within its own deadline.
			ctx2, cancel2 := context.WithTimeout(context.Background(), timeout)
			defer cancel2()
			_, err = Update(ctx2, s)
			if err == nil || !strings.Contains(err.Error(), "still running") || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("second update: %v, want it to wait for the abandoned fetch", err)
			}

			// Once the host hangs up, the abandoned operation ends and is forgotten.
			path, _ := filepath.Abs(s.Path)
			ok := make(chan struct{})
			go func() { _ = waitForAbandoned(context.Background(), path); close(ok) }()
			hangUp()
			select {
			case <-ok:
			case <-time.After(30 * time.Second):
				t.Fatal("abandoned fetch never ended after the host hung up")
			}
			if clone {
				if _, err := os.Stat(s.Path); !os.IsNotExist(err) {
					t.Errorf("timed-out clone left %s: %v", s.Path, err)
				}
				entries, _ := os.ReadDir(filepath.Dir(s.Path))
				for _, e := range entries {
					if strings.Contains(e.Name(), "hookgate-clone") {
						t.Errorf("timed-out clone left %s", e.Name())
					}
				}
			}
		})
	}
}

func TestUpdateKeepsSecretsOutOfErrors(t *testing.T) {
	const token, password = "tok-3f9a8b7c6d5e", "pw-1a2b3c4d5e6f"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer srv.Close()
	key, knownHosts := writeTestKey(t)
	badKey := filepath.Join(t.TempDir(), "bad_key")
	if err := os.WriteFile(badKey, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nkey-material-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec func(dir string) Spec
		keep []string // secrets that must not appear
	}{
		{"token and password in clone url", func(dir string) Spec {
			return Spec{Path: filepath.Join(dir, "c"), Branch: "main", Token: token,
				URL: strings.Replace(srv.URL, "http://", "http://user:"+password+"@", 1) + "/x.git"}
		}, []string{token, password}},
		{"token as url user", func(dir string) Spec {
			return Spec{Path: filepath.Join(dir, "c"), Branch: "main",
				URL: strings.Replace(srv.URL, "http://", "http://"+token+"@", 1) + "/x.git"}
		}, []string{token}},
		{"unreadable ssh key", func(dir string) Spec {
			return Spec{Path: filepath.Join(dir, "c"), Branch: "main", SSHKey: badKey, KnownHosts: knownHosts,
				URL: "ssh://git@127.0.0.1:1/x.git"}
		}, []string{"key-material-secret"}},
		{"refused ssh", func(dir string) Spec {
			return Spec{Path: filepath.Join(dir, "c"), Branch: "main", SSHKey: key, KnownHosts: knownHosts,
				URL: "ssh://git@127.0.0.1:1/x.git"}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := Update(ctx, tt.spec(t.TempDir()))
			if err == nil {
				t.Fatal("no error")
			}
			for _, secret := range tt.keep {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks %q: %v", secret, err)
				}
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestRedact(t *testing.T) {
	cause := fmt.Errorf("fetch: GET https://x-access-token:s3cr3t@host/r.git: %w", context.DeadlineExceeded)
	err := redact(cause, "s3cr3t")
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "https://***@host/r.git") {
		t.Errorf("redact = %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("redact lost errors.Is")
	}
	if errors.Unwrap(err) != nil {
		t.Error("redacted error unwraps to the unredacted one")
	}
	plain := errors.New("fetch ssh://git@host/r.git: refused")
	if redact(plain, "") != plain {
		t.Error("redact changed an error with nothing secret in it")
	}
}

// TestBranchRefNeverReadsEmpty: a process reading the branch's ref file while deploys move
// it (an operator's `git rev-parse HEAD`, a monitoring script) always reads a full hash,
// the old one or the new one, never an empty or partial file, as with git's own updates.
func TestBranchRefNeverReadsEmpty(t *testing.T) {
	f := newFixture(t, seedFiles, true)
	ref := filepath.Join(f.Path, ".git", "refs", "heads", "main")
	stop := make(chan struct{})
	bad := make(chan string, 1)
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(ref)
			if errors.Is(err, fs.ErrNotExist) {
				continue // packed, not loose: nothing to see yet
			}
			reads.Add(1)
			if err != nil || len(b) != 41 || b[40] != '\n' {
				select {
				case bad <- fmt.Sprintf("%q, %v", b, err):
				default:
				}
				return
			}
		}
	}()
	for i := range 40 {
		f.Write(map[string]string{"change.txt": fmt.Sprintf("v%d\n", i)})
		f.CommitAll(fmt.Sprintf("v%d", i))
		if _, err := Update(context.Background(), f.spec("")); err != nil {
			close(stop)
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case b := <-bad:
		t.Fatalf("a reader of %s saw %s during an update", ref, b)
	default:
	}
	if reads.Load() == 0 {
		t.Fatal("the reader never read the ref")
	}
}
