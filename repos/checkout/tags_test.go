package checkout

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
)

// TestUpdateToTag: a deploy of a tag fetches that tag alone and brings the checkout (on
// its branch) to the commit the tag points to: a lightweight tag's commit, an annotated
// tag's, a tag of a tag's; a tag of a tree is refused with a clear message and moves
// nothing; a tag origin does not have says so.
func TestUpdateToTag(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{ModeFastForward, ModeReset} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, map[string]string{"app.txt": "v1\n"}, true)
			one := f.Tag("v1.0.0", "")
			f.Write(map[string]string{"app.txt": "v2\n"})
			two := f.CommitAll("v2")
			annotated := f.AnnotatedTag("v2.0.0", two, "release 2")
			f.AnnotatedTag("v2.0.0-signed", "v2.0.0", "a tag of a tag")
			f.AnnotatedTag("tree", two+"^{tree}", "a tag of a tree")
			f.Write(map[string]string{"app.txt": "v3 on main, untagged\n"})
			f.CommitAll("v3")
			if annotated == two {
				t.Fatal("the annotated tag's object is its commit; the test would not tell peeling")
			}
			s := f.spec(mode)

			res, err := UpdateMove(ctx, s, Move{Tag: "v1.0.0"})
			if err != nil || f.head() != one || res.To != one {
				t.Fatalf("v1.0.0: %+v %v, HEAD %s; want %s", res, err, f.head(), one)
			}
			res, err = UpdateMove(ctx, s, Move{Tag: "v2.0.0"})
			if err != nil || f.head() != two || res.To != two || f.read("app.txt") != "v2\n" {
				t.Fatalf("annotated v2.0.0: %+v %v, HEAD %s; want the peeled commit %s", res, err, f.head(), two)
			}
			if got := testkit.Git(t, f.Path, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
				t.Fatalf("HEAD is %s; want the checkout to stay on its branch", got)
			}
			_, err = UpdateMove(ctx, s, Move{Tag: "v1.0.0"})
			if mode == ModeFastForward {
				// Backwards is no fast-forward: a rollback (a Target) is the way back.
				if err == nil || !strings.Contains(err.Error(), "not an ancestor of tag v1.0.0") || f.head() != two {
					t.Fatalf("ff back to v1.0.0: %v, HEAD %s; want refused", err, f.head())
				}
			} else if err != nil || f.head() != one {
				t.Fatalf("back to v1.0.0: %v, HEAD %s", err, f.head())
			}
			if _, err := UpdateMove(ctx, s, Move{Tag: "v2.0.0-signed"}); err != nil || f.head() != two {
				t.Fatalf("tag of a tag: %v, HEAD %s; want %s", err, f.head(), two)
			}
			_, err = UpdateMove(ctx, s, Move{Tag: "tree"})
			if err == nil || !strings.Contains(err.Error(), "points to a tree") || !strings.Contains(err.Error(), "not a commit") {
				t.Fatalf("tag of a tree: %v; want it refused as not a commit", err)
			}
			_, err = UpdateMove(ctx, s, Move{Tag: "v9.9.9"})
			if err == nil || !strings.Contains(err.Error(), `tag "v9.9.9" not found on origin`) {
				t.Fatalf("missing tag: %v", err)
			}
			if f.head() != two {
				t.Fatalf("a refused tag moved HEAD to %s", f.head())
			}
			// A rollback of a tag target: to a commit of an earlier tag.
			if _, err := UpdateMove(ctx, s, Move{Tag: "v2.0.0", Target: one}); err != nil || f.head() != one {
				t.Fatalf("rollback to %s under v2.0.0: %v, HEAD %s", one[:7], err, f.head())
			}
			if mode == ModeReset {
				// A hotfix tag off v1.0.0, deployed, then v2.0.0 again: a rollback to the
				// hotfix's commit, which is in neither v2.0.0's history nor HEAD's, finds
				// it under the hotfix tag the checkout fetched.
				testkit.Git(t, f.Seed, "checkout", "-q", "-b", "hotfix", one)
				f.Write(map[string]string{"app.txt": "v1 hotfix\n"})
				testkit.Git(t, f.Seed, "commit", "-qam", "hotfix")
				fix := f.AnnotatedTag("v1.0.1", "", "hotfix")
				fix = testkit.Git(t, f.Seed, "rev-parse", fix+"^{commit}")
				if _, err := UpdateMove(ctx, s, Move{Tag: "v1.0.1"}); err != nil || f.head() != fix {
					t.Fatalf("hotfix v1.0.1: %v, HEAD %s", err, f.head())
				}
				if _, err := UpdateMove(ctx, s, Move{Tag: "v2.0.0"}); err != nil || f.head() != two {
					t.Fatalf("v2.0.0 after the hotfix: %v, HEAD %s", err, f.head())
				}
				if _, err := UpdateMove(ctx, s, Move{Tag: "v2.0.0", Target: fix[:10]}); err != nil || f.head() != fix {
					t.Fatalf("rollback to the hotfix %s under v2.0.0: %v, HEAD %s", fix[:7], err, f.head())
				}
			}
		})
	}
}

// TestCloneTag: a tag target's first deploy clones the tag alone, shallow too, onto the
// branch; origin's other tags are not fetched.
func TestCloneTag(t *testing.T) {
	ctx := context.Background()
	for _, depth := range []int{0, 1} {
		f := newFixture(t, map[string]string{"app.txt": "v1\n"}, false)
		f.AnnotatedTag("v0.9.0", "", "old")
		f.Write(map[string]string{"app.txt": "v2\n"})
		two := f.CommitAll("v2")
		f.AnnotatedTag("v1.0.0", two, "release")
		s := Spec{Name: "test", Path: f.Path, Branch: "main", URL: f.Bare, Depth: depth}
		res, err := UpdateMove(ctx, s, Move{Tag: "v1.0.0"})
		if err != nil || !res.Cloned || f.head() != two || f.read("app.txt") != "v2\n" {
			t.Fatalf("depth %d: %+v %v, HEAD %s; want a clone at %s", depth, res, err, f.head(), two)
		}
		if got := testkit.Git(t, f.Path, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
			t.Fatalf("depth %d: HEAD is %s", depth, got)
		}
		tags := strings.Fields(testkit.Git(t, f.Path, "tag"))
		if !slices.Equal(tags, []string{"v1.0.0"}) {
			t.Fatalf("depth %d: tags in the checkout %v; want v1.0.0 alone", depth, tags)
		}
		if got := testkit.Git(t, f.Path, "status", "--porcelain"); got != "" {
			t.Fatalf("depth %d: git status after the clone:\n%s", depth, got)
		}
	}
}

// TestUpdateSkipsWhenNothingWatchedChanged: with Live and Changed, an update whose
// changes since live match nothing leaves the checkout alone and says Skipped; one that
// touches a watched path (a rename counts its old path too) deploys; a live commit not in
// the history (a force-push) deploys.
func TestUpdateSkipsWhenNothingWatchedChanged(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"docs/guide/a.md": "a\n", "src/main.go": "package main\n", "old/name.txt": "x\n"}, true)
	live := f.head()
	watch := func(prefix string) func(string) bool {
		return func(p string) bool { return strings.HasPrefix(p, prefix) }
	}
	s := f.spec(ModeFastForward)

	f.Write(map[string]string{"src/main.go": "package main // v2\n"})
	srcOnly := f.CommitAll("src only")
	res, err := UpdateMove(ctx, s, Move{Live: live, Changed: watch("docs/")})
	if err != nil || !res.Skipped || res.Target != srcOnly || res.From != live || res.To != live || f.head() != live {
		t.Fatalf("src change with docs/ watched: %+v %v, HEAD %s; want skipped, HEAD %s", res, err, f.head(), live)
	}
	if f.read("src/main.go") != "package main\n" {
		t.Fatal("a skipped update changed the work tree")
	}

	// A rename out of the watched folder: the old path counts.
	testkit.Git(t, f.Seed, "mv", "old/name.txt", "new-name.txt")
	renamed := f.CommitAll("rename")
	res, err = UpdateMove(ctx, s, Move{Live: live, Changed: watch("old/")})
	if err != nil || res.Skipped || f.head() != renamed || f.exists("old/name.txt") {
		t.Fatalf("rename out of old/: %+v %v, HEAD %s; want a deploy to %s", res, err, f.head(), renamed)
	}
	live = renamed
	f.Write(map[string]string{"docs/guide/b.md": "b\n"})
	docs := f.CommitAll("docs")
	res, err = UpdateMove(ctx, s, Move{Live: live, Changed: watch("docs/guide/b")})
	if err != nil || res.Skipped || f.head() != docs {
		t.Fatalf("docs change: %+v %v, HEAD %s; want a deploy to %s", res, err, f.head(), docs)
	}
	// origin rewritten: live is not in the new history, so it deploys even though the
	// trees differ only outside docs/ (the same docs, recommitted).
	live = docs
	testkit.Git(t, f.Seed, "reset", "-q", "--hard", "HEAD~1")
	f.Write(map[string]string{"docs/guide/b.md": "b\n", "src/other.go": "package main\n"})
	rewritten := f.CommitAll("force-pushed")
	res, err = UpdateMove(ctx, s.withMode(ModeReset), Move{Live: live, Changed: watch("docs/")})
	if err != nil || res.Skipped || f.head() != rewritten {
		t.Fatalf("force-push: %+v %v, HEAD %s; want a deploy to %s", res, err, f.head(), rewritten)
	}
	// HEAD is not live (a deploy whose commands failed moved it): no skip, whatever changed.
	f.Write(map[string]string{"src/y.go": "package main\n"})
	notLive := f.CommitAll("HEAD is not live")
	res, err = UpdateMove(ctx, s, Move{Live: renamed, Changed: watch("nothing/")})
	if err != nil || res.Skipped || f.head() != notLive {
		t.Fatalf("HEAD is not live %s: %+v %v; want a deploy to %s", renamed[:7], res, err, notLive)
	}
	// A live commit that is not there at all deploys as well.
	f.Write(map[string]string{"src/x.go": "package main\n"})
	next := f.CommitAll("next")
	res, err = UpdateMove(ctx, s, Move{Live: strings.Repeat("ab", 20), Changed: watch("docs/")})
	if err != nil || res.Skipped || f.head() != next {
		t.Fatalf("unknown live: %+v %v, HEAD %s; want a deploy to %s", res, err, f.head(), next)
	}
	if _, err := os.Stat(filepath.Join(f.Path, ".git", "index.lock")); err == nil {
		t.Fatal("index.lock left behind")
	}
}

func (s Spec) withMode(mode string) Spec { s.Mode = mode; return s }

// TestShallowTagUpdate: a shallow checkout of a tag target moves to a newer tag, fetched
// without the whole history, in ff mode (HEAD found below the tag) and reset mode.
func TestShallowTagUpdate(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{ModeFastForward, ModeReset} {
		f, commits := shallowFixture(t)
		f.Tag("v1.0.0", commits[1])
		f.AnnotatedTag("v1.1.0", commits[2], "1.1")
		s := Spec{Name: "test", Path: f.Path, Branch: "main", URL: f.Bare, Depth: 1, Mode: mode}
		if _, err := UpdateMove(ctx, s, Move{Tag: "v1.0.0"}); err != nil || f.head() != commits[1] {
			t.Fatalf("%s: clone v1.0.0: %v, HEAD %s", mode, err, f.head())
		}
		res, err := UpdateMove(ctx, s, Move{Tag: "v1.1.0"})
		if err != nil || f.head() != commits[2] || res.From != commits[1] || f.read("app.txt") != "v3\n" {
			t.Fatalf("%s: v1.1.0: %+v %v, HEAD %s; want %s", mode, res, err, f.head(), commits[2])
		}
		if n := testkit.Git(t, f.Path, "rev-list", "--count", "HEAD"); n != "2" {
			t.Fatalf("%s: %s commits in the shallow checkout; want 2 (not the whole history)", mode, n)
		}
		if out := testkit.Git(t, f.Path, "fsck", "--no-progress"); strings.Contains(out, "missing") {
			t.Fatalf("%s: fsck: %s", mode, out)
		}
	}
}

// TestResolveTagCommit: a tag target's rollback or pin names a commit of an earlier tag;
// it is found in HEAD's history or a fetched tag's (a hotfix line), though the tag target
// has no branch of origin's to walk (ResolveCommit with no branch cannot read one); an
// unknown or short hash is ErrUnknownCommit.
func TestResolveTagCommit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, map[string]string{"app.txt": "v1\n"}, false)
	one := f.Tag("v1.0.0", "")
	testkit.Git(t, f.Seed, "checkout", "-q", "-b", "hotfix")
	f.Write(map[string]string{"app.txt": "v1 hotfix\n"})
	testkit.Git(t, f.Seed, "commit", "-qam", "hotfix")
	fix := f.Tag("v1.0.1", "")
	testkit.Git(t, f.Seed, "checkout", "-q", "main")
	f.Write(map[string]string{"app.txt": "v2\n"})
	two := f.CommitAll("v2")
	f.AnnotatedTag("v2.0.0", two, "release 2")
	s := Spec{Name: "test", Path: f.Path, Branch: "main", URL: f.Bare, Mode: ModeReset}
	for _, tag := range []string{"v1.0.0", "v1.0.1", "v2.0.0"} {
		if _, err := UpdateMove(ctx, s, Move{Tag: tag}); err != nil {
			t.Fatalf("deploy %s: %v", tag, err)
		}
	}
	for _, want := range []string{one, one[:7], fix[:10], two} {
		if got, err := ResolveTagCommit(f.Path, want); err != nil || !strings.HasPrefix(got, want) {
			t.Errorf("ResolveTagCommit(%s) = %q, %v", want, got, err)
		}
	}
	for _, bad := range []string{"0123456789abcdef", "abc"} {
		if _, err := ResolveTagCommit(f.Path, bad); !errors.Is(err, ErrUnknownCommit) {
			t.Errorf("ResolveTagCommit(%s): %v, want ErrUnknownCommit", bad, err)
		}
	}
}
