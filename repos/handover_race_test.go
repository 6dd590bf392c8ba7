package repos

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/hookgate/hookgate/internal/testkit"
	"golang.org/x/sys/unix"
)

// TestHandOverRacingLocalUser: the hand-over walks a tree the account's running
// processes can change. While it runs, a racer exchanges (renameat2 RENAME_EXCHANGE,
// one system call) each new file for a hard link to a root-owned file outside the
// checkout, and each new file in .git for a symlink to another (the account cannot
// write in .git once it is the gateway's, but can in a checkout it owned before run_as
// was set). The walk decides on what it looked at; if it then acts on the name, it
// chowns or chmods the outside files. Probabilistic attack, deterministic assertion:
// the outside files' owner and mode never change when the walk acts on what it checked.
func TestHandOverRacingLocalUser(t *testing.T) {
	u := testkit.NewUser(t)
	a := &Account{Name: u.Name, UID: u.UID, GID: u.GID}
	dir := t.TempDir()
	checkout, outside := filepath.Join(dir, "checkout"), filepath.Join(dir, "outside")
	for _, d := range []string{filepath.Join(checkout, ".git"), filepath.Join(checkout, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hard, linked := filepath.Join(outside, "hard"), filepath.Join(outside, "linked")
	for _, f := range []string{hard, linked} {
		if err := os.WriteFile(f, []byte("root's\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const files = 8
	var (
		pairs   [][2]string // a file the walk will hand over, and its decoy
		mu      sync.Mutex
		done    atomic.Bool
		swapped atomic.Int64
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			mu.Lock()
			if len(pairs) > 0 {
				p := pairs[i%len(pairs)]
				if unix.Renameat2(unix.AT_FDCWD, p[0], unix.AT_FDCWD, p[1], unix.RENAME_EXCHANGE) == nil {
					swapped.Add(1)
					_ = unix.Renameat2(unix.AT_FDCWD, p[0], unix.AT_FDCWD, p[1], unix.RENAME_EXCHANGE)
				}
			}
			mu.Unlock()
		}
	}()
	const rounds = 100
	for r := range rounds {
		// New root-owned entries each round, so the walk has something to change.
		var ps [][2]string
		for k := range files {
			name := "r" + strconv.Itoa(r) + "-" + strconv.Itoa(k)
			f, decoy := filepath.Join(checkout, "sub", name), filepath.Join(checkout, "sub", name+".decoy")
			g, gdecoy := filepath.Join(checkout, ".git", name), filepath.Join(checkout, ".git", name+".decoy")
			for _, p := range []string{f, g} {
				if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Link(hard, decoy); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(linked, gdecoy); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, [2]string{f, decoy}, [2]string{g, gdecoy})
		}
		mu.Lock()
		pairs = ps
		mu.Unlock()
		_ = handOver(checkout, a) // errors: entries that changed under the walk
		mu.Lock()
		pairs = nil
		mu.Unlock()
		for _, p := range ps {
			for _, name := range p {
				if err := os.Remove(name); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	done.Store(true)
	wg.Wait()
	t.Logf("%d rounds, %d swaps", rounds, swapped.Load())
	if swapped.Load() == 0 {
		t.Fatal("the racer never swapped anything; the test proves nothing")
	}
	// And the walk still does its work.
	final, gitFinal := filepath.Join(checkout, "sub", "final"), filepath.Join(checkout, ".git", "final")
	for _, p := range []string{final, gitFinal} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := handOver(checkout, a); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(final); err != nil || fi.Sys().(*syscall.Stat_t).Uid != u.UID {
		t.Errorf("sub/final was not handed over: %v", err)
	}
	if fi, err := os.Lstat(gitFinal); err != nil || fi.Mode().Perm() != 0o640 || fi.Sys().(*syscall.Stat_t).Gid != u.GID {
		t.Errorf(".git/final is not the gateway's, readable by the account's group: %v %v", fi.Mode(), err)
	}
	for _, f := range []string{hard, linked} {
		fi, err := os.Lstat(f)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s outside the checkout is now uid %d gid %d mode %v; want root's, 0600", f, st.Uid, st.Gid, fi.Mode().Perm())
		}
	}
}
