package checkout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
)

func (f *fixture) shallowSpec(mode string) Spec {
	s := f.spec(mode)
	s.URL, s.Depth = f.Bare, 1
	return s
}

// hasObject says whether the checkout's repository holds the object, by git's own account.
func (f *fixture) hasObject(hash string) bool {
	return testkit.GitExit(f.Path, "cat-file", "-e", hash+"^{commit}") == nil
}

func (f *fixture) assertShallow(want bool) {
	f.t.Helper()
	got, err := Shallow(f.Path)
	if err != nil {
		f.t.Fatal(err)
	}
	if got != want {
		f.t.Fatalf("Shallow = %v, want %v", got, want)
	}
	if git := testkit.Git(f.t, f.Path, "rev-parse", "--is-shallow-repository"); git != strconv.FormatBool(want) {
		f.t.Fatalf("git rev-parse --is-shallow-repository = %s, want %v", git, want)
	}
}

func TestShallowCloneFastForwards(t *testing.T) {
	f, commits := shallowFixture(t)
	res, err := Update(context.Background(), f.shallowSpec(""))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cloned || res.To != commits[2] {
		t.Fatalf("clone result %+v, want cloned at %s", res, commits[2])
	}
	f.assertShallow(true)
	if n := testkit.Git(t, f.Path, "rev-list", "--count", "HEAD"); n != "1" {
		t.Fatalf("depth 1 clone holds %s commits, want 1", n)
	}
	if f.hasObject(commits[1]) {
		t.Fatal("the clone fetched the parent of the tip")
	}

	// One commit ahead: a plain fast-forward, fetching only the new commit.
	f.Write(map[string]string{"app.txt": "v4\n", "lib/b.txt": "b\n"})
	c4 := f.CommitAll("v4")
	res, err = Update(context.Background(), f.shallowSpec(""))
	if err != nil {
		t.Fatal(err)
	}
	if res.From != commits[2] || res.To != c4 || f.read("app.txt") != "v4\n" || f.read("lib/b.txt") != "b\n" {
		t.Fatalf("after one push: %+v, app.txt %q", res, f.read("app.txt"))
	}
	f.assertClean()

	// Three commits ahead, more than depth: the fetch brings them down to HEAD, as git's does.
	var last string
	for i := 5; i <= 7; i++ {
		f.Write(map[string]string{"app.txt": fmt.Sprintf("v%d\n", i)})
		last = f.CommitAll(fmt.Sprintf("v%d", i))
	}
	res, err = Update(context.Background(), f.shallowSpec(""))
	if err != nil {
		t.Fatal(err)
	}
	if res.From != c4 || res.To != last || f.read("app.txt") != "v7\n" {
		t.Fatalf("after three pushes: %+v, app.txt %q", res, f.read("app.txt"))
	}
	f.assertClean()
	f.assertShallow(true)
	// Everything since the clone, nothing below it.
	if n := testkit.Git(t, f.Path, "rev-list", "--count", "HEAD"); n != "5" {
		t.Fatalf("checkout holds %s commits, want the 5 since the clone", n)
	}
	if f.hasObject(commits[1]) || f.hasObject(commits[0]) {
		t.Fatal("an update fetched history below the clone")
	}
	if out := testkit.Git(t, f.Path, "fsck", "--connectivity-only"); strings.Contains(out, "missing") {
		t.Fatalf("git fsck: %s", out)
	}
}

func TestShallowResetFollowsRewrittenHistory(t *testing.T) {
	f, commits := shallowFixture(t)
	if _, err := Update(context.Background(), f.shallowSpec(ModeReset)); err != nil {
		t.Fatal(err)
	}
	// Origin rewrites its history from the first commit, below the shallow tip: its tree
	// holds old.txt, a blob the checkout never fetched, which origin must know to send.
	testkit.Git(t, f.Seed, "reset", "-q", "--hard", commits[0])
	f.Write(map[string]string{"app.txt": "rewritten\n", "new/file.txt": "n\n"})
	want := f.CommitAll("rewritten")

	res, err := Update(context.Background(), f.shallowSpec(ModeReset))
	if err != nil {
		t.Fatal(err)
	}
	if res.To != want || f.read("app.txt") != "rewritten\n" || f.read("new/file.txt") != "n\n" || f.read("old.txt") != "only below the tip\n" {
		t.Fatalf("reset result %+v; app.txt %q", res, f.read("app.txt"))
	}
	f.assertClean()
}

// TestShallowFastForwardRefusesNamingDepth rewrites origin's history from below the
// shallow tip: the walk back from the new tip meets commits the checkout never had, and
// past maxShallowDeepen the fast-forward refuses rather than fetch the whole history.
func TestShallowFastForwardRefusesNamingDepth(t *testing.T) {
	f, commits := shallowFixture(t)
	if _, err := Update(context.Background(), f.shallowSpec("")); err != nil {
		t.Fatal(err)
	}
	before := f.head()
	defer func(n int) { maxShallowDeepen = n }(maxShallowDeepen)
	maxShallowDeepen = 2
	testkit.Git(t, f.Seed, "reset", "-q", "--hard", commits[0])
	for i := 4; i <= 6; i++ {
		f.Write(map[string]string{"app.txt": fmt.Sprintf("v%d\n", i)})
		f.CommitAll(fmt.Sprintf("v%d", i))
	}
	_, err := Update(context.Background(), f.shallowSpec(""))
	if err == nil || !strings.Contains(err.Error(), "depth = 1") || !strings.Contains(err.Error(), `mode = "reset"`) {
		t.Fatalf("error %v, want a refusal naming depth = 1 and mode = \"reset\"", err)
	}
	if f.head() != before || f.read("app.txt") != "v3\n" {
		t.Fatal("the refused update moved the checkout")
	}
	f.assertClean()
}

func TestShallowCheckoutGetsHistoryWhenDepthIsRemoved(t *testing.T) {
	f, commits := shallowFixture(t)
	if _, err := Update(context.Background(), f.shallowSpec("")); err != nil {
		t.Fatal(err)
	}
	f.Write(map[string]string{"app.txt": "v4\n"})
	c4 := f.CommitAll("v4")
	full := f.shallowSpec("")
	full.Depth = 0
	res, err := Update(context.Background(), full)
	if err != nil {
		t.Fatal(err)
	}
	if res.To != c4 || !f.hasObject(commits[0]) {
		t.Fatalf("result %+v; first commit present: %v", res, f.hasObject(commits[0]))
	}
	f.assertShallow(false)
	if n := testkit.Git(t, f.Path, "rev-list", "--count", "HEAD"); n != "4" {
		t.Fatalf("checkout holds %s commits, want all 4", n)
	}
}

// randomFile returns n bytes that do not compress, the same for the same seed.
func randomFile(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestLargeBlobWrittenIntact clones a 20 MiB file, then fast-forwards to another 20 MiB
// version of it: both pass the threshold above which blobs stream from the pack.
func TestLargeBlobWrittenIntact(t *testing.T) {
	const size = 20 << 20
	if size <= largeObjectThreshold {
		t.Fatal("the blob must be larger than largeObjectThreshold to stream")
	}
	v1, v2 := randomFile(1, size), randomFile(2, size)
	f := newFixture(t, map[string]string{"README": "big\n"}, false)
	if err := os.WriteFile(filepath.Join(f.Seed, "data.bin"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	f.CommitAll("v1")
	spec := f.spec("")
	spec.URL = f.Bare
	if _, err := Update(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if got := fileSHA(t, filepath.Join(f.Path, "data.bin")); got != sha(v1) {
		t.Fatalf("cloned data.bin sha256 %s, want %s", got, sha(v1))
	}
	if err := os.WriteFile(filepath.Join(f.Seed, "data.bin"), v2, 0o644); err != nil {
		t.Fatal(err)
	}
	to := f.CommitAll("v2")
	res, err := Update(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.To != to {
		t.Fatalf("updated to %s, want %s", res.To, to)
	}
	if got := fileSHA(t, filepath.Join(f.Path, "data.bin")); got != sha(v2) {
		t.Fatalf("updated data.bin sha256 %s, want %s", got, sha(v2))
	}
	f.assertClean()
}

func TestClonesLowerGOGCAndGiveItBack(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	first, second := collectHarderDuringClones(), collectHarderDuringClones()
	first()
	first() // twice is once
	if p := debug.SetGCPercent(cloneGCPercent); p != cloneGCPercent {
		t.Fatalf("GOGC %d while a clone is still running, want %d", p, cloneGCPercent)
	}
	second()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("GOGC %d after the last clone, want the 100 from before", p)
	}
	// A lower setting (an operator's GOGC) is kept, and so is GOGC=off.
	for _, set := range []int{10, -1} {
		debug.SetGCPercent(set)
		done := collectHarderDuringClones()
		if p := debug.SetGCPercent(set); p != set {
			t.Fatalf("GOGC %d during a clone, want the operator's %d kept", p, set)
		}
		done()
		if p := debug.SetGCPercent(100); p != set {
			t.Fatalf("GOGC %d after a clone, want the operator's %d", p, set)
		}
	}
}

func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestShallowUpdateFetchesOnlyTheNewObjects: after a push that adds one small file to a
// tree of 5 MiB of incompressible files, a shallow checkout's objects grow by about that
// file, not by the tree again.
func TestShallowUpdateFetchesOnlyTheNewObjects(t *testing.T) {
	files := map[string]string{}
	for i := range 10 {
		files[fmt.Sprintf("assets/f%d.bin", i)] = string(randomFile(uint64(10+i), 512<<10))
	}
	f := newFixture(t, files, false)
	for _, mode := range []string{ModeFastForward, ModeReset} {
		if _, err := Update(context.Background(), f.shallowSpec(mode)); err != nil {
			t.Fatal(err)
		}
		objects := filepath.Join(f.Path, ".git", "objects")
		before := dirBytes(objects)
		f.Write(map[string]string{"new-" + mode + ".txt": "new\n"})
		to := f.CommitAll(mode)
		res, err := Update(context.Background(), f.shallowSpec(mode))
		if err != nil {
			t.Fatal(err)
		}
		if res.To != to || f.read("new-"+mode+".txt") != "new\n" {
			t.Fatalf("%s: result %+v", mode, res)
		}
		if grew := dirBytes(objects) - before; grew > 64<<10 {
			t.Fatalf("%s: a one-file update grew the shallow checkout's objects by %d bytes; the tree is fetched again", mode, grew)
		}
		f.assertClean()
	}
}

// TestShallowRollback: in a depth = 1 checkout a rollback reaches every commit fetched
// since the clone, in both modes, and a commit older than the clone is refused with a
// message that names depth.
func TestShallowRollback(t *testing.T) {
	for _, mode := range []string{ModeFastForward, ModeReset} {
		t.Run(mode, func(t *testing.T) {
			f, commits := shallowFixture(t)
			spec := f.shallowSpec(mode)
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			f.Write(map[string]string{"app.txt": "v4\n"})
			c4 := f.CommitAll("v4")
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			res, err := UpdateTo(context.Background(), spec, commits[2])
			if err != nil {
				t.Fatalf("roll back to the shallow tip the clone fetched: %v", err)
			}
			if res.From != c4 || res.To != commits[2] || testkit.Git(t, f.Path, "rev-parse", "HEAD") != commits[2] {
				t.Fatalf("rollback %+v, want %s → %s", res, c4, commits[2])
			}
			f.assertClean()
			_, err = UpdateTo(context.Background(), spec, commits[1])
			if !errors.Is(err, ErrUnknownCommit) || !strings.Contains(err.Error(), "depth") {
				t.Fatalf("roll back below the shallow boundary: %v, want ErrUnknownCommit naming depth", err)
			}
			if head := testkit.Git(t, f.Path, "rev-parse", "HEAD"); head != commits[2] {
				t.Fatalf("a refused rollback moved HEAD to %s", head)
			}
		})
	}
}
