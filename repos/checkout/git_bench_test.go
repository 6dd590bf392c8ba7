package checkout

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/repotest"
)

// benchOrigin is a bare origin with repotest's history, a seeding clone to push from, and
// a checkout cloned by the git CLI.
type benchOrigin struct {
	origin, seed, checkout string
	pushes                 int
}

func newBenchOrigin(b *testing.B) *benchOrigin {
	b.Helper()
	dir := b.TempDir()
	o := &benchOrigin{
		origin:   filepath.Join(dir, "origin.git"),
		seed:     filepath.Join(dir, "seed"),
		checkout: filepath.Join(dir, "checkout"),
	}
	testkit.Git(b, dir, "init", "-q", "--bare", o.origin)
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = o.origin
	cmd.Env = testkit.GitEnv()
	cmd.Stdin = bytes.NewReader(repotest.FastImport())
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git fast-import: %v\n%s", err, out)
	}
	testkit.Git(b, o.origin, "repack", "-adq")
	testkit.Git(b, dir, "clone", "-q", o.origin, o.seed)
	testkit.Git(b, dir, "clone", "-q", o.origin, o.checkout)
	return o
}

// push makes one new commit on origin that changes two files and adds one.
func (o *benchOrigin) push(b *testing.B) {
	b.Helper()
	o.pushes++
	paths, content := repotest.Push(o.pushes)
	for _, name := range paths {
		if err := os.WriteFile(filepath.Join(o.seed, filepath.FromSlash(name)), content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	testkit.Git(b, o.seed, "add", "-A")
	testkit.Git(b, o.seed, "commit", "-q", "-m", fmt.Sprintf("push %d", o.pushes))
	testkit.Git(b, o.seed, "push", "-q", "origin", "HEAD:main")
}

func BenchmarkUpdateOneCommit(b *testing.B) {
	o := newBenchOrigin(b)
	s := Spec{Name: "bench", Path: o.checkout, Branch: "main"}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		o.push(b)
		b.StartTimer()
		res, err := Update(context.Background(), s)
		if err != nil {
			b.Fatal(err)
		}
		if res.Changed != 3 {
			b.Fatalf("Changed = %d, want 3", res.Changed)
		}
	}
}

func BenchmarkGitPullFFOnly(b *testing.B) {
	o := newBenchOrigin(b)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		o.push(b)
		b.StartTimer()
		testkit.Git(b, o.checkout, "pull", "-q", "--ff-only")
	}
}
