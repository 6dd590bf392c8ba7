package repos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const (
	benchCommits = 4000
	benchFiles   = 2000
	benchDirs    = 100
)

// benchOrigin is a bare origin with benchCommits commits over benchFiles files, a
// seeding clone to push from, and a checkout cloned by the git CLI.
type benchOrigin struct {
	origin, seed, checkout string
	pushes                 int
}

// newBenchOrigin builds the history with git fast-import, which makes thousands of
// commits in about a second where a commit loop would take minutes.
func newBenchOrigin(b *testing.B) *benchOrigin {
	b.Helper()
	dir := b.TempDir()
	o := &benchOrigin{
		origin:   filepath.Join(dir, "origin.git"),
		seed:     filepath.Join(dir, "seed"),
		checkout: filepath.Join(dir, "checkout"),
	}
	gitCLI(b, dir, "init", "-q", "--bare", o.origin)

	var stream bytes.Buffer
	data := func(s string) { fmt.Fprintf(&stream, "data %d\n%s\n", len(s), s) }
	path := func(i int) string { return fmt.Sprintf("dir%03d/file%04d.txt", i%benchDirs, i) }
	content := func(i, version int) string {
		return fmt.Sprintf("file %d version %d\n%s", i, version, bytes.Repeat([]byte("some ordinary source text\n"), 1+i%40))
	}
	for c := 1; c <= benchCommits; c++ {
		fmt.Fprintf(&stream, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", c, 1_600_000_000+c*60)
		data(fmt.Sprintf("commit %d", c))
		if c > 1 {
			fmt.Fprintf(&stream, "from :%d\n", c-1)
		}
		if c == 1 {
			for i := range benchFiles {
				fmt.Fprintf(&stream, "M 100644 inline %s\n", path(i))
				data(content(i, 0))
			}
			continue
		}
		for k := range 1 + c%3 {
			i := (c*7 + k*13) % benchFiles
			fmt.Fprintf(&stream, "M 100644 inline %s\n", path(i))
			data(content(i, c))
		}
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = o.origin
	cmd.Env = append(os.Environ(), gitTestEnv...)
	cmd.Stdin = &stream
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git fast-import: %v\n%s", err, out)
	}
	gitCLI(b, o.origin, "repack", "-adq")
	gitCLI(b, dir, "clone", "-q", o.origin, o.seed)
	gitCLI(b, dir, "clone", "-q", o.origin, o.checkout)
	return o
}

// push makes one new commit on origin that changes two files and adds one.
func (o *benchOrigin) push(b *testing.B) {
	b.Helper()
	o.pushes++
	for _, name := range []string{
		fmt.Sprintf("dir%03d/file%04d.txt", o.pushes%benchDirs, o.pushes%benchFiles),
		fmt.Sprintf("dir%03d/new%04d.txt", (o.pushes*3)%benchDirs, o.pushes),
		"CHANGELOG",
	} {
		full := filepath.Join(o.seed, filepath.FromSlash(name))
		if err := os.WriteFile(full, fmt.Appendf(nil, "push %d\n", o.pushes), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	gitCLI(b, o.seed, "add", "-A")
	gitCLI(b, o.seed, "commit", "-q", "-m", fmt.Sprintf("push %d", o.pushes))
	gitCLI(b, o.seed, "push", "-q", "origin", "HEAD:main")
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
		gitCLI(b, o.checkout, "pull", "-q", "--ff-only")
	}
}
