package repos

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/repos/checkout"
	"github.com/hookgate/hookgate/store"
)

// TestRunAs: with RunAs, the commands run as that account (uid, groups, HOME), can write
// everywhere in the checkout (beside the files the gateway just wrote, in the folders it
// just made, in the top folder), can run git there, and cannot read the gateway's
// environment, replace .git, or change what is in it. Needs root (CI runs as root).
func TestRunAs(t *testing.T) {
	u := testkit.NewUser(t)
	e := newWorkerEnv(t)
	testkit.Reachable(t, e.checkout)
	as := &Account{Name: u.Name, UID: u.UID, GID: u.GID, Home: "/nonexistent"}
	to := e.origin.Commit(map[string]string{"app.txt": "v2\n", "deep/er/new.txt": "new\n"}, "v2")
	m := e.manager(t, 1, Repo{
		Spec: checkout.Spec{Name: "site", Path: e.checkout},
		Commands: []string{
			`echo "uid=$(id -u) gid=$(id -g) home=$HOME user=$USER"`,
			// The gateway's environment: the test process is the command's parent.
			`if cat /proc/$PPID/environ >/dev/null 2>&1; then echo ENVIRON-READABLE; else echo environ refused; fi`,
			`echo mine > top.txt && echo v3 > app.txt && echo more >> deep/er/new.txt && mkdir -p deep/er/out && touch deep/er/out/x`,
			`git log -1 --format=commit=%H`,
			`if mv .git stolen 2>/dev/null; then echo MOVED-GIT; else echo .git stays; fi`,
			`if echo x >> .git/config 2>/dev/null; then echo WROTE-GIT; else echo .git read-only; fi`,
		},
		RunAs: as,
	})
	d := e.queue(t, "site", "run-as-1")
	if !m.workers["site"].runOnce() {
		t.Fatal("runOnce found nothing to deploy")
	}
	dp := e.deploy(t, d.DeployID)
	if dp.Status != store.DeploySucceeded {
		t.Fatalf("deploy %s: %s\n%s", dp.Status, dp.Error, dp.Log)
	}
	for _, want := range []string{
		"uid=" + strconv.Itoa(int(u.UID)) + " gid=" + strconv.Itoa(int(u.GID)) + " home=/nonexistent user=" + u.Name,
		"environ refused", "commit=" + to, ".git stays", ".git read-only",
	} {
		if !strings.Contains(dp.Log, want+"\n") {
			t.Errorf("the log lacks %q:\n%s", want, dp.Log)
		}
	}
	owned := func(rel string, uid uint32) {
		t.Helper()
		info, err := os.Lstat(filepath.Join(e.checkout, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Sys().(*syscall.Stat_t).Uid; got != uid {
			t.Errorf("%s is owned by uid %d, want %d", rel, got, uid)
		}
	}
	owned("top.txt", u.UID)
	owned("deep/er/out/x", u.UID)
	owned(".git", 0)
	owned(".git/config", 0)
	owned(".", 0)

	// The next update (reset: the commands changed tracked files) writes as the gateway
	// again, over the account's files; the commands can still write everywhere.
	to = e.origin.Commit(map[string]string{"app.txt": "v4\n", "later/file.txt": "x\n"}, "v4")
	m.workers["site"].update(Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout, Branch: "main", Mode: checkout.ModeReset},
		Timeout: time.Minute, RunAs: as,
		Commands: []string{`echo again >> later/file.txt && echo v5 > app.txt && rm README.md && echo wrote`}})
	d = e.queue(t, "site", "run-as-2")
	if !m.workers["site"].runOnce() {
		t.Fatal("runOnce found nothing to deploy")
	}
	if dp = e.deploy(t, d.DeployID); dp.Status != store.DeploySucceeded || dp.ToCommit != to || !strings.Contains(dp.Log, "wrote\n") {
		t.Fatalf("second deploy %s: %s\n%s", dp.Status, dp.Error, dp.Log)
	}
}

// TestHandOverStaysInTheCheckout: a symbolic link in the checkout (to a file and to a
// folder outside it) is handed over as a link; what it points to keeps its owner. A hard
// link to a file outside is not handed over at all.
func TestHandOverStaysInTheCheckout(t *testing.T) {
	u := testkit.NewUser(t)
	dir := t.TempDir()
	checkout, outside := filepath.Join(dir, "checkout"), filepath.Join(dir, "outside")
	for _, d := range []string{filepath.Join(checkout, ".git"), filepath.Join(checkout, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(outside, "canary"), filepath.Join(checkout, "sub", "f")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"to-file": filepath.Join(outside, "canary"), "to-dir": outside, "sub/up": "../../outside"} {
		if err := os.Symlink(target, filepath.Join(checkout, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "hard"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(outside, "hard"), filepath.Join(checkout, "sub", "hard")); err != nil {
		t.Fatal(err)
	}
	if err := handOver(checkout, &Account{Name: u.Name, UID: u.UID, GID: u.GID}); err != nil {
		t.Fatal(err)
	}
	for path, uid := range map[string]uint32{
		outside: 0, filepath.Join(outside, "canary"): 0, filepath.Join(outside, "hard"): 0,
		filepath.Join(checkout, "to-file"): u.UID, filepath.Join(checkout, "to-dir"): u.UID,
		filepath.Join(checkout, "sub", "up"): u.UID, filepath.Join(checkout, "sub", "f"): u.UID,
		filepath.Join(checkout, ".git"): 0,
	} {
		info, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Sys().(*syscall.Stat_t).Uid; got != uid {
			t.Errorf("%s is owned by uid %d, want %d", path, got, uid)
		}
	}
	info, err := os.Stat(checkout)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&os.ModeSticky == 0 || info.Mode().Perm()&0o070 != 0o070 {
		t.Errorf("the checkout's top folder has mode %v; want group-writable and sticky", info.Mode())
	}
}

// BenchmarkHandOver: the hand-over after each deploy walks the whole checkout; once the
// tree is the account's, a deploy that changed a few files costs one walk with an lstat
// per entry. 20,000 files in 200 folders (a small node_modules). Needs root.
func BenchmarkHandOver(b *testing.B) {
	u := testkit.NewUser(b)
	dir := filepath.Join(b.TempDir(), "checkout")
	for i := range 200 {
		sub := filepath.Join(dir, "node_modules", "pkg"+strconv.Itoa(i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := range 100 {
			if err := os.WriteFile(filepath.Join(sub, strconv.Itoa(j)+".js"), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ".git", "objects"), 0o755); err != nil {
		b.Fatal(err)
	}
	a := &Account{Name: u.Name, UID: u.UID, GID: u.GID}
	if err := handOver(dir, a); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := handOver(dir, a); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRunAsTakesGitBackBeforeTheUpdate: a checkout the account already owned, .git
// included and left writable by the group and others (run_as just switched on), whose
// update then fails (a local modification in ff mode): .git and the top folder are the
// gateway's again before the update runs, so the account can neither swap nor write .git
// during it, even though no hand-over follows a failed update.
func TestRunAsTakesGitBackBeforeTheUpdate(t *testing.T) {
	u := testkit.NewUser(t)
	e := newWorkerEnv(t)
	testkit.Reachable(t, e.checkout)
	as := &Account{Name: u.Name, UID: u.UID, GID: u.GID, Home: "/nonexistent"}
	// The test's checkout shares object files with its origin by hard links (a local
	// clone); a checkout hookgate cloned has none. Copy them apart first.
	err := filepath.WalkDir(filepath.Join(e.checkout, ".git"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p+".copy", b, 0o444); err != nil {
			return err
		}
		return os.Rename(p+".copy", p)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(e.checkout, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, int(u.UID), int(u.GID)); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.Chmod(p, info.Mode().Perm()|0o022)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The account's own edit of a tracked file: the fast-forward refuses.
	if err := os.WriteFile(filepath.Join(e.checkout, "README.md"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.origin.Commit(map[string]string{"app.txt": "v2\n"}, "v2")
	m := e.manager(t, 1, Repo{Spec: checkout.Spec{Name: "site", Path: e.checkout}, Commands: []string{"true"}, RunAs: as})
	d := e.queue(t, "site", "reclaim-1")
	if !m.workers["site"].runOnce() {
		t.Fatal("runOnce found nothing to deploy")
	}
	if dp := e.deploy(t, d.DeployID); dp.Status != store.DeployFailed || !strings.Contains(dp.Error, "local modifications") {
		t.Fatalf("deploy %s: %q; want failed on the local modification", dp.Status, dp.Error)
	}
	err = filepath.WalkDir(filepath.Join(e.checkout, ".git"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if st.Uid != uint32(os.Geteuid()) {
			t.Errorf("%s is owned by uid %d after the update, want the gateway's %d", p, st.Uid, os.Geteuid())
		}
		if d.Type()&fs.ModeSymlink == 0 && info.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s is %v after the update: writable by the account's group or others", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(e.checkout); err != nil || info.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) || info.Mode()&fs.ModeSticky == 0 {
		t.Fatalf("the top folder after the update: %v, %v; want the gateway's and sticky", info, err)
	}
}
