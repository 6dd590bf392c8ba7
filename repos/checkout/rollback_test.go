package checkout

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rollbackFixture: origin with three commits, a checkout updated to the third, and an
// untracked file in it.
func rollbackFixture(t *testing.T) (o *testkit.Origin, spec Spec, c1, c2, c3 string) {
	o = testkit.NewOrigin(t)
	c1 = o.Head()
	c2 = o.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	checkout := o.Clone()
	c3 = o.Commit(map[string]string{"app.txt": "v3\n", "new.txt": "added in v3\n"}, "v3")
	spec = Spec{Name: "site", Path: checkout, Branch: "main"}
	if res, err := Update(context.Background(), spec); err != nil || res.To != c3 {
		t.Fatalf("update to v3: %+v, %v", res, err)
	}
	if err := os.WriteFile(filepath.Join(checkout, ".env"), []byte("SECRET=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(checkout, "notes.local"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return o, spec, c1, c2, c3
}

func TestUpdateToRollsBackInFFMode(t *testing.T) {
	_, spec, _, c2, c3 := rollbackFixture(t)
	ctx := context.Background()
	res, err := UpdateTo(ctx, spec, c2)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if res.From != c3 || res.To != c2 || testkit.CheckoutHead(t, spec.Path) != c2 {
		t.Fatalf("rollback result %+v, HEAD %s; want %s → %s", res, testkit.CheckoutHead(t, spec.Path), c3, c2)
	}
	if got := readFile(t, filepath.Join(spec.Path, "app.txt")); got != "v2\n" {
		t.Fatalf("app.txt = %q after rollback", got)
	}
	if _, err := os.Stat(filepath.Join(spec.Path, "new.txt")); !os.IsNotExist(err) {
		t.Fatalf("a file added after the target must go: %v", err)
	}
	if readFile(t, filepath.Join(spec.Path, ".env")) != "SECRET=1\n" || readFile(t, filepath.Join(spec.Path, "notes.local")) != "mine\n" {
		t.Fatal("ignored and untracked files must survive a rollback")
	}
	if st := testkit.Git(t, spec.Path, "status", "--porcelain", "--untracked-files=no"); st != "" {
		t.Fatalf("git status after rollback is not clean:\n%s", st)
	}
	// And forward again to the branch head: an ordinary fast-forward.
	if res, err := Update(ctx, spec); err != nil || res.To != c3 {
		t.Fatalf("forward again: %+v, %v", res, err)
	}
}

func TestUpdateToRefusesLocalModificationsInFFMode(t *testing.T) {
	_, spec, _, c2, c3 := rollbackFixture(t)
	if err := os.WriteFile(filepath.Join(spec.Path, "app.txt"), []byte("hot fix\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := UpdateTo(context.Background(), spec, c2)
	if err == nil || !strings.Contains(err.Error(), "local modifications") {
		t.Fatalf("rollback over a modified tracked file: %v", err)
	}
	if testkit.CheckoutHead(t, spec.Path) != c3 || readFile(t, filepath.Join(spec.Path, "app.txt")) != "hot fix\n" {
		t.Fatal("a refused rollback must leave the checkout as it was")
	}
	// reset mode discards the modification and moves back.
	spec.Mode = ModeReset
	if res, err := UpdateTo(context.Background(), spec, c2); err != nil || res.To != c2 {
		t.Fatalf("reset-mode rollback: %+v, %v", res, err)
	}
}

func TestUpdateToRefusesLocalCommitsInFFMode(t *testing.T) {
	_, spec, c1, _, _ := rollbackFixture(t)
	testkit.Git(t, spec.Path, "commit", "-q", "--allow-empty", "-m", "local only")
	_, err := UpdateTo(context.Background(), spec, c1)
	if err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("rollback that would lose a local commit: %v", err)
	}
}

func TestUpdateToUnknownCommit(t *testing.T) {
	_, spec, _, _, c3 := rollbackFixture(t)
	// A commit that exists in the checkout but not in the branch's history.
	testkit.Git(t, spec.Path, "checkout", "-q", "-b", "side")
	testkit.Git(t, spec.Path, "commit", "-q", "--allow-empty", "-m", "side")
	side := testkit.CheckoutHead(t, spec.Path)
	testkit.Git(t, spec.Path, "checkout", "-q", "main")
	for _, want := range []string{side, side[:8], strings.Repeat("ab", 20), "abc", "zzzzzzzz"} {
		if _, err := UpdateTo(context.Background(), spec, want); !errors.Is(err, ErrUnknownCommit) {
			t.Errorf("UpdateTo(%q) = %v, want ErrUnknownCommit", want, err)
		}
		if _, err := ResolveCommit(spec.Path, "main", want); !errors.Is(err, ErrUnknownCommit) {
			t.Errorf("ResolveCommit(%q) = %v, want ErrUnknownCommit", want, err)
		}
	}
	if testkit.CheckoutHead(t, spec.Path) != c3 {
		t.Fatal("a refused rollback moved HEAD")
	}
}

func TestResolveCommitPrefix(t *testing.T) {
	_, spec, c1, c2, _ := rollbackFixture(t)
	for _, want := range []string{c1, c1[:7], strings.ToUpper(c2[:10])} {
		got, err := ResolveCommit(spec.Path, "main", want)
		if err != nil || (got != c1 && got != c2) || !strings.HasPrefix(got, strings.ToLower(want)) {
			t.Errorf("ResolveCommit(%q) = %q, %v", want, got, err)
		}
	}
}

func TestOriginHead(t *testing.T) {
	o, spec, _, _, c3 := rollbackFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got, err := OriginHead(ctx, spec); err != nil || got != c3 {
		t.Fatalf("OriginHead = %q, %v; want %s", got, err, c3)
	}
	c4 := o.Commit(map[string]string{"app.txt": "v4\n"}, "v4")
	got, err := OriginHead(ctx, spec)
	if err != nil || got != c4 {
		t.Fatalf("OriginHead after a push = %q, %v; want %s", got, err, c4)
	}
	if testkit.Git(t, spec.Path, "rev-parse", "refs/remotes/origin/main") != c3 {
		t.Fatal("the look-up must not fetch")
	}
	spec.Branch = "nope"
	if _, err := OriginHead(ctx, spec); err == nil || !strings.Contains(err.Error(), `branch "nope" not found`) {
		t.Fatalf("missing branch: %v", err)
	}
}

// TestOriginHeadErrorHidesCredentials: a failed look-up's error (shown as origin_error on
// the API and the repositories page) never carries the token or a password in the URL.
func TestOriginHeadErrorHidesCredentials(t *testing.T) {
	const token = "s3cr3t-T0ken-value"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, spec := range []Spec{
		{Name: "site", Path: filepath.Join(t.TempDir(), "none"), Branch: "main", URL: "http://127.0.0.1:1/acme/site.git", Token: token},
		{Name: "site", Path: filepath.Join(t.TempDir(), "none"), Branch: "main", URL: "http://deploy:" + token + "@127.0.0.1:1/acme/site.git"},
		// A bare token as the user name: Go's own URL redaction keeps user names.
		{Name: "site", Path: filepath.Join(t.TempDir(), "none"), Branch: "main", URL: "http://" + token + "@127.0.0.1:1/acme/site.git"},
	} {
		_, err := OriginHead(ctx, spec)
		if err == nil {
			t.Fatal("a look-up of a closed port succeeded")
		}
		if strings.Contains(err.Error(), token) {
			t.Fatalf("the error shows the credential: %v", err)
		}
	}
}
