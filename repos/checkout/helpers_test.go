// This file owns the checkout tests' fixture: a testkit.Origin whose Path is the checkout
// under test, and what the tests read back from that checkout.
package checkout

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
)

// fixture is an origin seeded by the test (testkit.NewOriginWith) and the checkout at its
// Path, cloned with the git CLI unless the test leaves that to Update.
type fixture struct {
	*testkit.Origin
	t *testing.T
}

// newFixture seeds origin with files (testkit.WriteFiles' rules) and clones the checkout
// with the git CLI unless clone is false.
func newFixture(t *testing.T, files map[string]string, clone bool) *fixture {
	t.Helper()
	f := &fixture{Origin: testkit.NewOriginWith(t, files), t: t}
	if clone {
		f.CloneTo(f.Path)
	}
	return f
}

// shallowFixture is an origin with three commits (testkit.NewShallowOrigin) whose
// depth-1 checkout Update itself clones.
func shallowFixture(t *testing.T) (*fixture, []string) {
	t.Helper()
	o, commits := testkit.NewShallowOrigin(t)
	return &fixture{Origin: o, t: t}, commits
}

func (f *fixture) spec(mode string) Spec {
	return Spec{Name: "test", Path: f.Path, Branch: "main", Mode: mode}
}

func (f *fixture) head() string {
	f.t.Helper()
	return testkit.Git(f.t, f.Path, "rev-parse", "HEAD")
}

func (f *fixture) read(name string) string {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.Path, filepath.FromSlash(name)))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) exists(name string) bool {
	_, err := os.Lstat(filepath.Join(f.Path, filepath.FromSlash(name)))
	return err == nil
}
