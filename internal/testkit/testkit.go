// Package testkit builds the real parts hookgate's tests run against: git repositories made
// with the git binary (a bare origin, a clone that pushes to it, checkouts), and the real
// forge payloads kept in the repository's testdata/.
package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitEnv keeps the developer's own git configuration out of the tests, names the author,
// and never lets git ask for a password.
var gitEnv = []string{
	"GIT_AUTHOR_NAME=hookgate test", "GIT_AUTHOR_EMAIL=test@hookgate.invalid",
	"GIT_COMMITTER_NAME=hookgate test", "GIT_COMMITTER_EMAIL=test@hookgate.invalid",
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_TERMINAL_PROMPT=0",
}

// GitEnv returns the environment Git runs git with, for tests that run the git binary
// themselves (to feed it stdin, or to read its exit status).
func GitEnv() []string { return append(os.Environ(), gitEnv...) }

// Git runs git in dir (with init.defaultBranch=main) and returns its trimmed standard
// output, failing the test on error with stdout and stderr in the message. Only stdout is
// returned, so a warning on stderr never ends up in a hash.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = GitEnv()
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s (in %s): %v\n%s%s", strings.Join(args, " "), dir, err, out.String(), stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// GitExit runs git in dir and returns its error alone: for a test that asks git a yes/no
// question by exit status (cat-file -e).
func GitExit(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = GitEnv()
	return cmd.Run()
}

// Origin is a bare repository with a working clone ("seed") that commits and pushes to it.
// Path, set by NewOriginWith, is where the checkout under test goes (beside origin and seed,
// cloned only if the test asks).
type Origin struct {
	t      testing.TB
	Bare   string
	Seed   string
	Path   string
	Branch string
}

// NewOrigin makes a bare origin in a temp dir with one commit on branch main.
func NewOrigin(t testing.TB) *Origin {
	t.Helper()
	root := t.TempDir()
	o := &Origin{t: t, Bare: filepath.Join(root, "origin.git"), Seed: filepath.Join(root, "seed"), Branch: "main"}
	Git(t, root, "init", "-q", "--bare", "-b", "main", o.Bare)
	Git(t, root, "clone", "-q", o.Bare, o.Seed)
	Git(t, o.Seed, "checkout", "-q", "-b", "main")
	o.Commit(map[string]string{"README.md": "hello\n", ".gitignore": "node_modules/\n.env\n.venv/\nbuild/\n"}, "initial commit")
	return o
}

// Commit writes files (an empty content deletes the file) in the seed clone, commits,
// pushes to origin and returns the new commit's hash.
func (o *Origin) Commit(files map[string]string, msg string) string {
	o.t.Helper()
	for name, content := range files {
		p := filepath.Join(o.Seed, name)
		if content == "" {
			Git(o.t, o.Seed, "rm", "-q", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			o.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			o.t.Fatal(err)
		}
		Git(o.t, o.Seed, "add", name)
	}
	Git(o.t, o.Seed, "commit", "-q", "--allow-empty", "-m", msg)
	Git(o.t, o.Seed, "push", "-q", "origin", "HEAD:refs/heads/"+o.Branch)
	return o.Head()
}

// NewOriginWith makes a bare origin whose first commit on main holds exactly files (the
// rules of Write; no README or .gitignore); Path names a checkout not cloned yet (CloneTo).
func NewOriginWith(t testing.TB, files map[string]string) *Origin {
	t.Helper()
	dir := t.TempDir()
	o := &Origin{
		t:      t,
		Bare:   filepath.Join(dir, "origin.git"),
		Seed:   filepath.Join(dir, "seed"),
		Path:   filepath.Join(dir, "checkout"),
		Branch: "main",
	}
	Git(t, dir, "init", "-q", "--bare", o.Bare)
	Git(t, dir, "clone", "-q", o.Bare, o.Seed)
	o.Write(files)
	o.CommitAll("initial")
	return o
}

// NewShallowOrigin makes an origin with three commits on main (app.txt v1..v3, lib/a.txt,
// and old.txt only below the tip) and returns it with the commits, oldest first; its Path
// is for a depth-1 checkout that the code under test clones itself.
func NewShallowOrigin(t testing.TB) (*Origin, []string) {
	t.Helper()
	o := NewOriginWith(t, map[string]string{"app.txt": "v1\n", "lib/a.txt": "a1\n", "old.txt": "only below the tip\n"})
	commits := []string{Git(t, o.Seed, "rev-parse", "HEAD")}
	for i := 2; i <= 3; i++ {
		o.Write(map[string]string{"app.txt": fmt.Sprintf("v%d\n", i)})
		if i == 2 {
			Git(t, o.Seed, "rm", "-q", "old.txt")
		}
		commits = append(commits, o.CommitAll(fmt.Sprintf("v%d", i)))
	}
	return o, commits
}

// Write writes files into the seed clone without committing (WriteFiles' rules: an empty
// content is an empty file, unlike Commit where it deletes).
func (o *Origin) Write(files map[string]string) {
	o.t.Helper()
	WriteFiles(o.t, o.Seed, files)
}

// CommitAll commits everything in the seed clone (add -A, an empty commit if nothing
// changed), force-pushes it to origin's branch and returns the new hash.
func (o *Origin) CommitAll(msg string) string {
	o.t.Helper()
	Git(o.t, o.Seed, "add", "-A")
	Git(o.t, o.Seed, "commit", "-q", "--allow-empty", "-m", msg)
	Git(o.t, o.Seed, "push", "-q", "-f", "origin", "HEAD:"+o.Branch)
	return Git(o.t, o.Seed, "rev-parse", "HEAD")
}

// CloneTo clones origin into path with the git CLI.
func (o *Origin) CloneTo(path string) {
	o.t.Helper()
	Git(o.t, filepath.Dir(path), "clone", "-q", o.Bare, path)
}

// WriteFiles creates files (path → content) under root: a content "->target" makes a
// symlink to target, an empty content an empty file, and a name ending in "/" a directory
// (its content ignored).
func WriteFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		full := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Head returns the commit origin's branch points at.
func (o *Origin) Head() string {
	o.t.Helper()
	return Git(o.t, o.Bare, "rev-parse", "refs/heads/"+o.Branch)
}

// Clone makes a checkout of origin in a new temp dir and returns its path.
func (o *Origin) Clone() string {
	o.t.Helper()
	dir := filepath.Join(o.t.TempDir(), "checkout")
	Git(o.t, filepath.Dir(dir), "clone", "-q", "-b", o.Branch, o.Bare, dir)
	return dir
}

// CheckoutHead returns HEAD of the checkout at dir.
func CheckoutHead(t testing.TB, dir string) string {
	t.Helper()
	return Git(t, dir, "rev-parse", "HEAD")
}

// TestdataDir returns the repository's testdata/ folder, found by walking up from the
// working directory to the module root (the folder holding go.mod). Nothing outside the
// clone is read.
func TestdataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			td := filepath.Join(dir, "testdata")
			if fi, err := os.Stat(td); err != nil || !fi.IsDir() {
				t.Fatalf("testdata/ not found at the module root %s", dir)
			}
			return td
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// ForgePayloads names real forge bodies in testdata/ (for Payload) that cover
// pushes, tag pushes and other events of GitHub, Gitea and GitLab: what parsers and fuzz
// targets start from.
var ForgePayloads = []string{
	"github/push.json", "github/ping.json", "github/create.json", "github/delete.json",
	"github/release.json", "github/pull-request.json", "github/workflow_run.json",
	"gitea/push.json", "gitlab/push.json", "gitlab/tag.json",
}

// Payload returns the bytes of a real forge payload, e.g. "github/push.json".
func Payload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(TestdataDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Push returns the real GitHub push payload with ref, after and repository.full_name
// replaced, so it names a commit that exists in a test repository.
func Push(t testing.TB, ref, before, after, fullName string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(Payload(t, "github/push.json"), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"], p["before"], p["after"] = ref, before, after
	if repo, ok := p["repository"].(map[string]any); ok && fullName != "" {
		repo["full_name"] = fullName
	}
	if hc, ok := p["head_commit"].(map[string]any); ok {
		hc["id"] = after
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Eventually polls cond every few milliseconds until it holds or timeout passes; it waits
// for a condition, not for time.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tag makes a lightweight tag name at commit (a hash, or "" for the seed's HEAD) and
// pushes it to origin; it returns the commit.
func (o *Origin) Tag(name, commit string) string {
	o.t.Helper()
	if commit == "" {
		commit = "HEAD"
	}
	Git(o.t, o.Seed, "tag", name, commit)
	Git(o.t, o.Seed, "push", "-q", "origin", "refs/tags/"+name)
	return Git(o.t, o.Seed, "rev-parse", name+"^{commit}")
}

// AnnotatedTag makes an annotated tag name of object (a commit, a tree, another tag; ""
// for the seed's HEAD) with message msg and pushes it to origin; it returns the tag
// object's own hash.
func (o *Origin) AnnotatedTag(name, object, msg string) string {
	o.t.Helper()
	if object == "" {
		object = "HEAD"
	}
	Git(o.t, o.Seed, "tag", "-a", "-m", msg, name, object)
	Git(o.t, o.Seed, "push", "-q", "origin", "refs/tags/"+name)
	return Git(o.t, o.Seed, "rev-parse", "refs/tags/"+name)
}
