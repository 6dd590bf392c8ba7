// This file owns copies of the checkout tests' git fixtures (repos/checkout/*_test.go) for
// the worker tests that need an origin of their own; internal/testkit takes them over (A2).
package repos

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitTestEnv keeps the developer's own git configuration out of the tests.
var gitTestEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
	"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
	"GIT_TERMINAL_PROMPT=0",
}

// gitCLI runs the git binary in dir and returns its trimmed output.
func gitCLI(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitTestEnv...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s%s", strings.Join(args, " "), dir, err, out.String(), stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// updateFixture is a bare origin, a seeding clone that commits and pushes to it,
// and the path of the checkout under test.
type updateFixture struct {
	t        *testing.T
	origin   string
	seed     string
	checkout string
}

// newUpdateFixture seeds origin with files (path → content; a "->" prefix makes a
// symlink) and clones the checkout with the git CLI unless clone is false.
func newUpdateFixture(t *testing.T, files map[string]string, clone bool) *updateFixture {
	t.Helper()
	dir := t.TempDir()
	f := &updateFixture{
		t:        t,
		origin:   filepath.Join(dir, "origin.git"),
		seed:     filepath.Join(dir, "seed"),
		checkout: filepath.Join(dir, "checkout"),
	}
	gitCLI(t, dir, "init", "-q", "--bare", f.origin)
	gitCLI(t, dir, "clone", "-q", f.origin, f.seed)
	f.write(f.seed, files)
	f.commit("initial")
	if clone {
		gitCLI(t, dir, "clone", "-q", f.origin, f.checkout)
	}
	return f
}

func (f *updateFixture) spec(mode string) Spec {
	return Spec{Name: "test", Path: f.checkout, Branch: "main", Mode: mode}
}

// write creates files under root; an empty content with a trailing "/" in the
// name makes a directory.
func (f *updateFixture) write(root string, files map[string]string) {
	f.t.Helper()
	for name, content := range files {
		full := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				f.t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// commit commits everything in the seed and pushes it; it returns the new hash.
func (f *updateFixture) commit(msg string) string {
	f.t.Helper()
	gitCLI(f.t, f.seed, "add", "-A")
	gitCLI(f.t, f.seed, "commit", "-q", "--allow-empty", "-m", msg)
	gitCLI(f.t, f.seed, "push", "-q", "-f", "origin", "HEAD:main")
	return gitCLI(f.t, f.seed, "rev-parse", "HEAD")
}

// shallowFixture is a bare origin with a few commits and the path a depth-1 checkout of it
// is cloned into by Update itself.
func shallowFixture(t *testing.T) (*updateFixture, []string) {
	t.Helper()
	f := newUpdateFixture(t, map[string]string{"app.txt": "v1\n", "lib/a.txt": "a1\n", "old.txt": "only below the tip\n"}, false)
	commits := []string{gitCLI(t, f.seed, "rev-parse", "HEAD")}
	for i := 2; i <= 3; i++ {
		f.write(f.seed, map[string]string{"app.txt": fmt.Sprintf("v%d\n", i)})
		if i == 2 {
			gitCLI(t, f.seed, "rm", "-q", "old.txt")
		}
		commits = append(commits, f.commit(fmt.Sprintf("v%d", i)))
	}
	return f, commits
}

func (f *updateFixture) shallowSpec(mode string) Spec {
	s := f.spec(mode)
	s.URL, s.Depth = f.origin, 1
	return s
}

// randomFile returns n bytes that do not compress, the same for the same seed.
func randomFile(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// smallLimits stand for server.max_object_size and max_fetch_size scaled down, so that a
// delta bomb of a few kilobytes shows the bound without building a gigabyte anywhere: a
// 512 KiB base and a delta that declares 64 MiB.
var smallLimits = ObjectLimits{MaxObjectSize: 1 << 20, MaxFetchSize: 8 << 20}

const (
	bombBase   = 512 << 10
	bombCopies = 128
)
