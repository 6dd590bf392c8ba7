package checkout

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
)

// The tests in this file play a hostile upstream: trees made with git's plumbing
// (hash-object --literally writes what fsck would refuse), served by a real bare
// origin and pulled through real deploys in both modes. Whatever a deploy does with
// them, nothing outside the checkout and nothing in its .git may change.

// ent is one tree entry; sub makes it a directory.
type ent struct {
	mode, name, data string
	sub              []ent
}

func file(name, content string) ent { return ent{mode: "100644", name: name, data: content} }
func link(name, target string) ent  { return ent{mode: "120000", name: name, data: target} }
func dir(name string, sub ...ent) ent {
	return ent{mode: "40000", name: name, sub: sub}
}

const (
	outsideCanary = "canary outside the checkout\n"
	gitCanary     = "canary inside .git\n"
	// pwned is in every blob an attack writes; no file outside the work tree may hold it.
	pwned = "pwned\n"
)

// longTarget is longer than PATH_MAX, so symlink(2) fails with ENAMETOOLONG.
var longTarget = strings.Repeat("A", 5000)

// hostileOrigin is a bare origin whose branch main is moved with plumbing alone.
type hostileOrigin struct {
	t       *testing.T
	bare    string
	outside string // a directory beside the checkout with a canary in it
	parent  string // the last commit, so that every step fast-forwards
}

func (o *hostileOrigin) git(stdin []byte, args ...string) string {
	o.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = o.bare
	cmd.Env = testkit.GitEnv()
	cmd.Stdin = bytes.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		o.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// expand puts the outside directory's absolute path where a name or target says $OUT.
func (o *hostileOrigin) expand(s string) string { return strings.ReplaceAll(s, "$OUT", o.outside) }

// tree writes entries as a raw tree object, unchecked, in git's order (a directory
// sorts as its name plus "/"); duplicates stay as given.
func (o *hostileOrigin) tree(entries []ent) string {
	o.t.Helper()
	sorted := append([]ent(nil), entries...)
	key := func(e ent) string {
		if e.sub != nil || e.mode == "40000" {
			return o.expand(e.name) + "/"
		}
		return o.expand(e.name)
	}
	sort.SliceStable(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	var raw bytes.Buffer
	for _, e := range sorted {
		var h string
		if e.mode == "40000" {
			h = o.tree(e.sub)
		} else {
			h = o.git([]byte(o.expand(e.data)), "hash-object", "-w", "--stdin")
		}
		bin, err := hex.DecodeString(h)
		if err != nil {
			o.t.Fatal(err)
		}
		raw.WriteString(e.mode + " " + o.expand(e.name) + "\x00")
		raw.Write(bin)
	}
	return o.git(raw.Bytes(), "hash-object", "-w", "--literally", "-t", "tree", "--stdin")
}

// push makes a commit of entries on top of the last one and moves main to it.
func (o *hostileOrigin) push(entries []ent) string {
	o.t.Helper()
	args := []string{"commit-tree", o.tree(entries), "-m", "step"}
	if o.parent != "" {
		args = append(args, "-p", o.parent)
	}
	c := o.git(nil, args...)
	o.git(nil, "update-ref", "refs/heads/main", c)
	o.parent = c
	return c
}

// hostileStep is one commit the upstream serves and what the deploy of it must do:
// refuse with an error containing refuse, or succeed when refuse is "".
type hostileStep struct {
	tree   []ent
	refuse string
}

type hostileCase struct {
	name  string
	steps []hostileStep
	// check, when set, looks at the checkout after the last step.
	check func(t *testing.T, checkout string)
}

func ok(tree ...ent) hostileStep { return hostileStep{tree: tree} }
func refused(why string, tree ...ent) hostileStep {
	return hostileStep{tree: tree, refuse: why}
}

var keep = file("keep.txt", "keep\n")

var hostileCases = []hostileCase{
	{name: "symlink then a file below it", steps: []hostileStep{
		ok(keep),
		ok(keep, link("d", "$OUT")),
		ok(keep, dir("d", file("canary", pwned))),
	}, check: func(t *testing.T, c string) {
		assertFile(t, filepath.Join(c, "d", "canary"), pwned)
	}},
	{name: "symlink and a file below it in one tree", steps: []hostileStep{
		ok(keep),
		refused("duplicate", keep, link("d", "$OUT"), dir("d", file("canary", pwned))),
	}},
	{name: "symlink and a file below it in the first tree (clone)", steps: []hostileStep{
		refused("duplicate", keep, link("d", "$OUT"), dir("d", file("canary", pwned))),
	}},
	{name: "symlinked parent left by a failed apply, then a delete below it", steps: []hostileStep{
		ok(keep, dir("d", file("canary", outsideCanary))),
		refused("file name too long", keep, link("d", "$OUT"), link("z", longTarget)),
		ok(keep),
	}},
	{name: "relative symlinked parent left by a failed apply, then a delete below it", steps: []hostileStep{
		ok(keep, dir("d", file("canary", outsideCanary))),
		refused("file name too long", keep, link("d", "../outside"), link("z", longTarget)),
		ok(keep),
	}},
	{name: "parent symlinked into .git by a failed apply, then a delete below it", steps: []hostileStep{
		ok(keep, dir("d", file("canary", gitCanary))),
		refused("file name too long", keep, link("d", ".git"), link("z", longTarget)),
		ok(keep),
	}},
	{name: "symlinked parent left by a failed apply, then a write below it", steps: []hostileStep{
		ok(keep, dir("d", file("x", "1\n"))),
		refused("file name too long", keep, link("d", "$OUT"), link("z", longTarget)),
		ok(keep, dir("d", file("canary", pwned), file("x", "1\n"))),
	}, check: func(t *testing.T, c string) {
		assertFile(t, filepath.Join(c, "d", "canary"), pwned)
	}},
	{name: "directory and symlink swaps", steps: []hostileStep{
		ok(dir("d", file("f", "1\n"))),
		ok(link("d", "$OUT")),
		ok(dir("d", file("f", "2\n"), file("canary", pwned))),
		ok(link("d", ".git")),
		ok(dir("d", file("canary", pwned), dir("hooks", file("post-checkout", pwned)))),
		ok(link("d", "..")),
		ok(keep),
	}},
	{name: "dot-dot", steps: []hostileStep{
		ok(keep),
		refused("unsafe path", keep, dir("..", dir("outside", file("canary", pwned)))),
		refused("unsafe path", keep, file("../outside/canary", pwned)),
		refused("unsafe path", keep, dir("d", file("..", pwned))),
	}},
	{name: "absolute path", steps: []hostileStep{
		ok(keep),
		refused("unsafe path", keep, file("$OUT/canary", pwned)),
	}},
	{name: ".git and its case variants", steps: []hostileStep{
		ok(keep),
		refused("unsafe path", keep, dir(".git", file("canary", pwned), dir("hooks", file("post-checkout", pwned)))),
		refused("unsafe path", keep, dir(".GIT", file("canary", pwned))),
		refused("unsafe path", keep, dir(".Git", file("canary", pwned))),
		refused("unsafe path", keep, dir("d", dir(".gIt", file("config", pwned)))),
		refused("unsafe path", keep, file(".git/canary", pwned)),
		refused("unsafe path", keep, link(".git", "$OUT")),
	}},
	{name: "NTFS aliases of .git", steps: []hostileStep{
		ok(keep),
		refused("unsafe path", keep, dir("git~1", file("canary", pwned))),
		refused("unsafe path", keep, dir("GIT~1", file("canary", pwned))),
		refused("unsafe path", keep, dir(".git ", file("canary", pwned))),
		refused("unsafe path", keep, dir(".git.", file("canary", pwned))),
		refused("unsafe path", keep, dir(".git . .", file("canary", pwned))),
		refused("unsafe path", keep, dir("d", dir("git~1 ", file("config", pwned)))),
		refused("unsafe path", keep, file(`d\.git\canary`, pwned)),
	}},
	{name: "HFS aliases of .git", steps: []hostileStep{
		ok(keep),
		refused("unsafe path", keep, dir(".g\u200cit", file("canary", pwned))),
		refused("unsafe path", keep, dir("\ufeff.GIT\u200d", file("canary", pwned))),
	}},
	{name: "symlinked .gitmodules", steps: []hostileStep{
		ok(keep),
		refused("unsafe path", keep, link(".gitmodules", "$OUT/canary")),
		refused("unsafe path", keep, link(".GITMODULES ", "$OUT/canary")),
	}},
	{name: "duplicate tree entries", steps: []hostileStep{
		ok(keep),
		refused("duplicate", keep, file("a", "1\n"), file("a", pwned)),
		refused("duplicate", keep, dir("d", file("x", "1\n")), dir("d", file("y", pwned))),
		refused("duplicate", keep, file("d", "1\n"), dir("d", file("x", pwned))),
	}},
	{name: "entry names holding a slash", steps: []hostileStep{
		ok(keep, link("d", "$OUT")),
		refused("unsafe path", keep, link("d", "$OUT"), file("d/canary", pwned)),
	}},
	{name: "over-long symlink target", steps: []hostileStep{
		ok(keep),
		refused("file name too long", keep, link("long", longTarget)),
		ok(keep, link("long", "keep.txt")),
	}, check: func(t *testing.T, c string) {
		if target, err := os.Readlink(filepath.Join(c, "long")); err != nil || target != "keep.txt" {
			t.Errorf("long: %q, %v; want a symlink to keep.txt", target, err)
		}
	}},
	{name: "file under a symlink that points inside the checkout", steps: []hostileStep{
		ok(dir("d", file("f", "1\n")), dir("sub", file("a", "1\n"))),
		refused("file name too long", link("d", "sub"), dir("sub", file("a", "1\n")), link("z", longTarget)),
		ok(dir("d", file("f", "2\n"), file("g", pwned)), dir("sub", file("a", "1\n"))),
	}, check: func(t *testing.T, c string) {
		for _, name := range []string{"sub/f", "sub/g"} {
			if _, err := os.Lstat(filepath.Join(c, name)); err == nil {
				t.Errorf("%s was written through the symlink d -> sub", name)
			}
		}
		assertFile(t, filepath.Join(c, "d", "f"), "2\n")
	}},
	{name: "file under a symlink inside the checkout in one tree", steps: []hostileStep{
		ok(dir("sub", file("a", "1\n"))),
		ok(link("d", "sub"), dir("sub", file("a", "1\n"))),
		refused("unsafe path", link("d", "sub"), file("d/f", pwned), dir("sub", file("a", "1\n"))),
		refused("duplicate", link("d", "sub"), dir("d", file("f", pwned)), dir("sub", file("a", "1\n"))),
	}, check: func(t *testing.T, c string) {
		if _, err := os.Lstat(filepath.Join(c, "sub", "f")); err == nil {
			t.Error("sub/f was written through the symlink d -> sub")
		}
	}},
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s: %q, %v; want %q", path, got, err, want)
	}
}

// TestHostileUpstream runs every hostile sequence through real deploys in both modes
// and checks after each deploy that the canaries outside the checkout and in its .git
// are untouched and that no attacker content landed outside the work tree.
func TestHostileUpstream(t *testing.T) {
	for _, tc := range hostileCases {
		for _, mode := range []string{ModeFastForward, ModeReset} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				base := t.TempDir()
				o := &hostileOrigin{t: t, bare: filepath.Join(base, "origin.git"), outside: filepath.Join(base, "outside")}
				testkit.Git(t, base, "init", "-q", "--bare", o.bare)
				if err := os.Mkdir(o.outside, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(o.outside, "canary"), []byte(outsideCanary), 0o644); err != nil {
					t.Fatal(err)
				}
				checkout := filepath.Join(base, "checkout")
				spec := Spec{Name: "hostile", Path: checkout, URL: o.bare, Branch: "main", Mode: mode}
				gitCanaryPath := filepath.Join(checkout, ".git", "canary")
				for i, step := range tc.steps {
					want := o.push(step.tree)
					_, err := Update(context.Background(), spec)
					t.Logf("step %d: %v", i, err)
					if fi, serr := os.Stat(filepath.Join(checkout, ".git")); serr == nil && fi.IsDir() {
						if _, serr := os.Lstat(gitCanaryPath); os.IsNotExist(serr) && i == 0 {
							if err := os.WriteFile(gitCanaryPath, []byte(gitCanary), 0o644); err != nil {
								t.Fatal(err)
							}
						}
					}
					switch {
					case step.refuse == "" && err != nil:
						t.Errorf("step %d: %v; want success", i, err)
					case step.refuse != "" && err == nil:
						t.Errorf("step %d: deployed; want a refusal containing %q", i, step.refuse)
					case step.refuse != "" && !strings.Contains(err.Error(), step.refuse):
						t.Errorf("step %d: %v; want a refusal containing %q", i, err, step.refuse)
					case err == nil:
						if got := testkit.Git(t, checkout, "rev-parse", "HEAD"); got != want {
							t.Errorf("step %d: HEAD %s, want %s", i, got, want)
						}
						// Landed safely: git sees the work tree and index it expects.
						if out := testkit.Git(t, checkout, "status", "--porcelain", "--untracked-files=no"); out != "" {
							t.Errorf("step %d: git status shows tracked changes:\n%s", i, out)
						}
					}
					assertCanaries(t, i, o.outside, checkout)
				}
				if tc.check != nil && !t.Failed() {
					tc.check(t, checkout)
				}
			})
		}
	}
}

// assertCanaries checks the canary outside the checkout and the one in .git (once the
// checkout exists), and that no attacker content landed outside the work tree.
func assertCanaries(t *testing.T, step int, outside, checkout string) {
	t.Helper()
	assertFile(t, filepath.Join(outside, "canary"), outsideCanary)
	if _, err := os.Stat(filepath.Join(checkout, ".git")); err == nil {
		assertFile(t, filepath.Join(checkout, ".git", "canary"), gitCanary)
	}
	for _, root := range []string{filepath.Dir(outside), filepath.Join(checkout, ".git")} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if p == checkout {
				return filepath.SkipDir // the work tree itself may hold the attacker's files
			}
			if d.Type().IsRegular() {
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(pwned)) {
					t.Errorf("step %d: attacker content in %s", step, p)
				}
			}
			return nil
		})
	}
}

// TestFailedApplyRecovers checks what the next deploy does after an apply that stopped
// partway: in both modes it lands on the new commit, removes what the failed apply
// wrote and origin no longer has, keeps a file someone put in its place, and leaves
// the index and work tree as git expects.
func TestFailedApplyRecovers(t *testing.T) {
	for _, mode := range []string{ModeFastForward, ModeReset} {
		for _, touched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/replaced=%v", mode, touched), func(t *testing.T) {
				base := t.TempDir()
				o := &hostileOrigin{t: t, bare: filepath.Join(base, "origin.git"), outside: filepath.Join(base, "outside")}
				testkit.Git(t, base, "init", "-q", "--bare", o.bare)
				checkout := filepath.Join(base, "checkout")
				spec := Spec{Name: "site", Path: checkout, URL: o.bare, Branch: "main", Mode: mode}
				o.push([]ent{keep, dir("d", file("x", "1\n"))})
				if _, err := Update(context.Background(), spec); err != nil {
					t.Fatal(err)
				}
				// d/x goes, new.txt and the symlink d are written, then z fails.
				o.push([]ent{keep, link("d", "keep.txt"), file("new.txt", "new\n"), link("z", longTarget)})
				if _, err := Update(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "file name too long") {
					t.Fatalf("second deploy: %v, want file name too long", err)
				}
				if _, err := os.Stat(filepath.Join(checkout, ".git", journalName)); err != nil {
					t.Fatalf("no journal after a failed apply: %v", err)
				}
				if touched {
					if err := os.WriteFile(filepath.Join(checkout, "new.txt"), []byte("mine\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want := o.push([]ent{keep, dir("d", file("y", "2\n"))})
				if _, err := Update(context.Background(), spec); err != nil {
					t.Fatalf("deploy after the failed one: %v", err)
				}
				if got := testkit.Git(t, checkout, "rev-parse", "HEAD"); got != want {
					t.Errorf("HEAD %s, want %s", got, want)
				}
				assertFile(t, filepath.Join(checkout, "d", "y"), "2\n")
				if _, err := os.Lstat(filepath.Join(checkout, "d", "x")); !os.IsNotExist(err) {
					t.Errorf("d/x: %v, want it gone", err)
				}
				_, err := os.Lstat(filepath.Join(checkout, "new.txt"))
				switch {
				case touched:
					assertFile(t, filepath.Join(checkout, "new.txt"), "mine\n")
				case !os.IsNotExist(err):
					t.Errorf("new.txt, written by the failed apply: %v, want it gone", err)
				}
				if _, err := os.Stat(filepath.Join(checkout, ".git", journalName)); !os.IsNotExist(err) {
					t.Errorf("journal left after a successful deploy: %v", err)
				}
				if out := testkit.Git(t, checkout, "status", "--porcelain", "--untracked-files=no"); out != "" {
					t.Errorf("git status shows tracked changes:\n%s", out)
				}
				if out := testkit.Git(t, checkout, "diff-index", "--cached", "--name-status", "HEAD"); out != "" {
					t.Errorf("index differs from HEAD:\n%s", out)
				}
			})
		}
	}
}

// TestStoppedBetweenIndexAndBranch is a deploy that stopped after writing the index
// but before moving the branch (a crash, a full disk): the journal is still there,
// the index already names the new files, HEAD the old commit. The next deploy must
// finish the job in both modes rather than call the new index a local modification.
func TestStoppedBetweenIndexAndBranch(t *testing.T) {
	for _, mode := range []string{ModeFastForward, ModeReset} {
		t.Run(mode, func(t *testing.T) {
			base := t.TempDir()
			o := &hostileOrigin{t: t, bare: filepath.Join(base, "origin.git")}
			testkit.Git(t, base, "init", "-q", "--bare", o.bare)
			checkout := filepath.Join(base, "checkout")
			spec := Spec{Name: "site", Path: checkout, URL: o.bare, Branch: "main", Mode: mode}
			old := o.push([]ent{keep, file("gone.txt", "bye\n"), file("change.txt", "1\n")})
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			next := o.push([]ent{keep, file("change.txt", "2\n"), file("new.txt", "new\n")})
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			// Put the branch back and the journal of that apply in place.
			testkit.Git(t, checkout, "update-ref", "refs/heads/main", old)
			journal := journalHeader + "\n" +
				"100644 " + testkit.Git(t, checkout, "rev-parse", next+":change.txt") + ` "change.txt"` + "\n" +
				"0 " + strings.Repeat("0", 40) + ` "gone.txt"` + "\n" +
				"100644 " + testkit.Git(t, checkout, "rev-parse", next+":new.txt") + ` "new.txt"` + "\n"
			if err := os.WriteFile(filepath.Join(checkout, ".git", journalName), []byte(journal), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatalf("deploy after the stopped one: %v", err)
			}
			if got := testkit.Git(t, checkout, "rev-parse", "HEAD"); got != next {
				t.Errorf("HEAD %s, want %s", got, next)
			}
			assertFile(t, filepath.Join(checkout, "change.txt"), "2\n")
			assertFile(t, filepath.Join(checkout, "new.txt"), "new\n")
			if out := testkit.Git(t, checkout, "status", "--porcelain"); out != "" {
				t.Errorf("git status after recovery:\n%s", out)
			}
		})
	}
}

// TestHostileUpstreamDeepTree serves a tree nested deeper than git's core.maxTreeDepth:
// it is refused before anything is written, on clone and on update, in both modes.
func TestHostileUpstreamDeepTree(t *testing.T) {
	base := t.TempDir()
	o := &hostileOrigin{t: t, bare: filepath.Join(base, "origin.git")}
	testkit.Git(t, base, "init", "-q", "--bare", o.bare)
	first := o.push([]ent{keep})
	// fast-import makes the 4,097 nested trees in one process.
	path := strings.Repeat("d/", maxTreeDepth+1) + "f"
	o.git([]byte("commit refs/heads/deep\ncommitter t <t@example.com> 0 +0000\ndata 4\ndeep\nfrom "+first+
		"\nM 100644 inline "+path+"\ndata "+fmt.Sprint(len(pwned))+"\n"+pwned+"\n"), "fast-import", "--quiet")
	deep := o.git(nil, "rev-parse", "refs/heads/deep")

	for _, mode := range []string{ModeFastForward, ModeReset} {
		t.Run(mode, func(t *testing.T) {
			checkout := filepath.Join(t.TempDir(), "checkout")
			spec := Spec{Name: "deep", Path: checkout, URL: o.bare, Branch: "main", Mode: mode}
			o.git(nil, "update-ref", "refs/heads/main", first)
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			o.git(nil, "update-ref", "refs/heads/main", deep)
			for _, label := range []string{"update", "clone"} {
				if label == "clone" {
					if err := os.RemoveAll(checkout); err != nil {
						t.Fatal(err)
					}
				}
				_, err := Update(context.Background(), spec)
				if err == nil || !strings.Contains(err.Error(), "nested deeper than 4096") {
					t.Fatalf("%s: %v, want a refusal of the depth", label, err)
				}
				if _, err := os.Lstat(filepath.Join(checkout, "d")); !os.IsNotExist(err) {
					t.Errorf("%s: d exists (%v); nothing should be written", label, err)
				}
			}
		})
	}
}
