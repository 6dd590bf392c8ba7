package checkout

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/hookgate/hookgate/internal/testkit"
	"golang.org/x/sys/unix"
)

// TestWorkTreeRacingLocalUser plays the run_as account's process that a deploy left
// running: while the writer works on paths below d/ (each round with a fresh workTree,
// as each deploy opens one), it swaps d, d/e and the file x, one system call each
// (renameat2 RENAME_EXCHANGE), for symlinks into .git and outside the checkout, and for
// a FIFO. Nothing the writer does may touch .git or the outside directory in any way:
// inotify watches them and must report no event at all, not even an open that is
// refused afterwards, and no FIFO may ever be opened (that open would block the deploy
// until the user lets it go). The attack is probabilistic; the assertion is not: with a
// writer that never resolves through a swappable path, nothing can touch the watched
// directories or the FIFO, however the race goes.
func TestWorkTreeRacingLocalUser(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	checkout := filepath.Join(base, "checkout")
	gitDir := filepath.Join(checkout, ".git")
	canaries := map[string]string{
		filepath.Join(outside, "f"):      outsideCanary,
		filepath.Join(outside, "e", "f"): outsideCanary,
		filepath.Join(gitDir, "f"):       gitCanary,
		filepath.Join(gitDir, "e", "f"):  gitCanary,
		filepath.Join(checkout, "x"):     "x\n",
		filepath.Join(checkout, "d/f"):   "d/f\n",
		filepath.Join(checkout, "d/e/f"): "d/e/f\n",
	}
	for p, content := range canaries {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What d, d/e and x are exchanged with, in turn.
	swaps := map[string][]string{
		"d":   {".git", outside, "../outside", "d.fifo"},
		"d/e": {"../.git/e", filepath.Join(gitDir, "e"), filepath.Join(outside, "e"), "e.fifo"},
		// A FIFO swapped in for a file is opened, without blocking (O_NONBLOCK), and
		// refused as not the file Lstat saw; only a directory's FIFO would block.
		"x": {".git/f", filepath.Join(outside, "f")},
	}
	var decoys []string // checkout-relative names, exchanged with their key
	var fifos []string
	for at, targets := range swaps {
		for k, target := range targets {
			decoy := filepath.Join(checkout, at+".swap"+string(rune('0'+k)))
			if strings.HasSuffix(target, ".fifo") {
				if err := unix.Mkfifo(decoy, 0o644); err != nil {
					t.Fatal(err)
				}
				fifos = append(fifos, decoy)
			} else if err := os.Symlink(target, decoy); err != nil {
				t.Fatal(err)
			}
			decoys = append(decoys, at+"|"+decoy)
		}
	}

	// Any event at all in .git or outside (opens and reads included) is a failure.
	events := watchDirs(t, gitDir, filepath.Join(gitDir, "e"), outside, filepath.Join(outside, "e"))

	var (
		done       atomic.Bool
		fifoOpened atomic.Int64
		swapped    atomic.Int64
		wg         sync.WaitGroup
	)
	// releaseReaders opens each FIFO for writing without blocking, which succeeds only
	// while someone has it open for reading: the writer, which must never open one. It
	// also lets such a blocked writer go, so a wrong writer fails the test, not hangs it.
	releaseReaders := func() {
		for _, f := range fifos {
			fd, err := unix.Open(f, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err == nil {
				fifoOpened.Add(1)
				unix.Close(fd)
			}
		}
	}
	exchange := func(a, b string) bool {
		return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE) == nil
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			at, decoy, _ := strings.Cut(decoys[i%len(decoys)], "|")
			real := filepath.Join(checkout, at)
			if exchange(real, decoy) {
				swapped.Add(1)
				// Swap back at once if the first exchange worked: the windows we want
				// are between the writer's look and its use.
				for !exchange(real, decoy) && !done.Load() {
				}
			}
			releaseReaders()
		}
	}()

	const rounds = 600
	for i := range rounds {
		// The narrow windows (a look, then a use) many times over: each fresh workTree
		// opens d and d/e again, as each deploy does.
		for range 16 {
			w, err := openWorkTree(checkout)
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := w.Lstat("x"); err == nil && fi.Mode().IsRegular() {
				if f, err := w.Open("x", fi); err == nil {
					_, _ = io.Copy(io.Discard, f)
					f.Close()
				}
			}
			_, _ = w.Lstat("d/e/f")
			w.Close()
		}
		w, err := openWorkTree(checkout)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := w.Lstat("d/f"); err == nil && fi.Mode().IsRegular() {
			if f, err := w.Open("d/f", fi); err == nil {
				f.Close()
			}
		}
		_, _ = w.WriteFile("d/f", strings.NewReader(pwned), 0o644)
		_, _ = w.WriteFile("d/e/f", strings.NewReader(pwned), 0o755)
		_, _ = w.WriteFile("d/new", strings.NewReader(pwned), 0o644)
		_, _ = w.Symlink("target", "d/l")
		_, _ = w.Symlink("target", "d/e/l")
		_, _ = w.Readlink("d/l")
		_ = w.Mkdir("d/m")
		_ = w.MkdirAll("d/e/n/o")
		_, _ = w.ReadDir("d/e")
		_ = w.WalkFiles("d", func(string) error { return nil })
		_ = w.Remove("d/e/n/o")
		_ = w.Remove("d/e/n")
		_ = w.Remove("d/m")
		_ = w.Remove("d/l")
		_ = w.Remove("d/e/l")
		_ = w.Remove("d/new")
		if i%2 == 0 {
			_ = w.Remove("d/e/f")
		}
		w.Close()
	}
	done.Store(true)
	wg.Wait()
	releaseReaders()
	t.Logf("%d rounds, %d swaps", rounds, swapped.Load())
	if swapped.Load() == 0 {
		t.Fatal("the racer never swapped anything; the test proves nothing")
	}

	if n := fifoOpened.Load(); n > 0 {
		t.Errorf("the writer opened a FIFO swapped in for a directory or file %d times (a deploy blocks on it)", n)
	}
	for e, n := range events() {
		t.Errorf("the writer touched .git or the outside directory: %s (%d times)", e, n)
	}
	for p, content := range canaries {
		if strings.HasPrefix(p, checkout+"/d/") || p == filepath.Join(checkout, "x") {
			continue // the writer's own files
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q", p, b, err, content)
		}
	}
	for _, dir := range []string{gitDir, outside} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && canaries[p] == "" {
				t.Errorf("%s appeared", p)
			}
			return nil
		})
	}
}

func eventName(mask uint32) string {
	var names []string
	for bit, name := range map[uint32]string{
		unix.IN_ACCESS: "access", unix.IN_MODIFY: "modify", unix.IN_ATTRIB: "attrib",
		unix.IN_CLOSE_WRITE: "close_write", unix.IN_CLOSE_NOWRITE: "close", unix.IN_OPEN: "open",
		unix.IN_MOVED_FROM: "moved_from", unix.IN_MOVED_TO: "moved_to", unix.IN_CREATE: "create",
		unix.IN_DELETE: "delete", unix.IN_DELETE_SELF: "delete_self", unix.IN_MOVE_SELF: "move_self",
	} {
		if mask&bit != 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, "|")
}

// watchDirs watches dirs (or files) with inotify for every event (opens, reads and closes too)
// and returns a func that collects what happened so far: event names and paths, counted.
func watchDirs(t *testing.T, dirs ...string) func() map[string]int {
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(in) })
	watched := map[int32]string{}
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(in, d, unix.IN_ALL_EVENTS)
		if err != nil {
			t.Fatal(err)
		}
		watched[int32(wd)] = d
	}
	return func() map[string]int {
		var buf [64 * 1024]byte
		events := map[string]int{}
		for {
			n, err := unix.Read(in, buf[:])
			if errors.Is(err, unix.EAGAIN) || n <= 0 {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				events[eventName(ev.Mask)+" "+filepath.Join(watched[ev.Wd], name)]++
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
		return events
	}
}

// TestDeployRacingLocalUser is TestWorkTreeRacingLocalUser through real updates: while
// origin's commits keep changing files below d/, a racer exchanges d for symlinks to
// .git and to a directory outside the checkout. Updates may fail (d is a symlink in the
// way at the wrong moment); nothing may land in .git or outside, and the outside
// directory must see no event at all.
func TestDeployRacingLocalUser(t *testing.T) {
	for _, mode := range []string{ModeFastForward, ModeReset} {
		t.Run(mode, func(t *testing.T) {
			o := testkit.NewOrigin(t)
			o.Commit(map[string]string{"d/f": "0\n", "d/e/g": "0\n"}, "d")
			base := t.TempDir()
			checkout, outside := filepath.Join(base, "checkout"), filepath.Join(base, "outside")
			spec := Spec{Name: "race", Path: checkout, URL: o.Bare, Branch: "main", Mode: mode}
			if _, err := Update(context.Background(), spec); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(outside, "e"), 0o755); err != nil {
				t.Fatal(err)
			}
			canaries := map[string]string{
				filepath.Join(outside, "f"):               outsideCanary,
				filepath.Join(outside, "e", "g"):          outsideCanary,
				filepath.Join(checkout, ".git", "f"):      gitCanary,
				filepath.Join(checkout, ".git", "e", "g"): gitCanary,
			}
			for p, content := range canaries {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d := filepath.Join(checkout, "d")
			decoys := []string{d + ".git", d + ".out"}
			for i, target := range []string{".git", outside} {
				if err := os.Symlink(target, decoys[i]); err != nil {
					t.Fatal(err)
				}
			}
			events := watchDirs(t, outside, filepath.Join(outside, "e"))
			var (
				done    atomic.Bool
				swapped atomic.Int64
				wg      sync.WaitGroup
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !done.Load(); i++ {
					decoy := decoys[i%len(decoys)]
					if unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, decoy, unix.RENAME_EXCHANGE) == nil {
						swapped.Add(1)
						_ = unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, decoy, unix.RENAME_EXCHANGE)
					}
					// Some pacing (a few dozen microseconds with d in place), so that
					// deploys get through and write below d often.
					for k := 0; k < 64 && !done.Load(); k++ {
						runtime.Gosched()
					}
				}
			}()
			const rounds = 12
			deployed := 0
			for r := 1; r <= rounds; r++ {
				n := strconv.Itoa(r) + "\n"
				o.Commit(map[string]string{"d/f": pwned + n, "d/e/g": pwned + n, "d/new" + strconv.Itoa(r): pwned}, "round "+n)
				if _, err := Update(context.Background(), spec); err == nil {
					deployed++
				}
			}
			done.Store(true)
			wg.Wait()
			t.Logf("%d rounds, %d deployed, %d swaps", rounds, deployed, swapped.Load())
			if swapped.Load() == 0 {
				t.Fatal("the racer never swapped anything; the test proves nothing")
			}
			for e, n := range events() {
				t.Errorf("a deploy touched the outside directory: %s (%d times)", e, n)
			}
			for p, content := range canaries {
				assertFile(t, p, content)
			}
			for _, dir := range []string{filepath.Join(checkout, ".git"), outside} {
				_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
					if err == nil && !e.IsDir() { // objects are compressed: no plain blob content in .git
						if b, err := os.ReadFile(p); err == nil && strings.HasPrefix(string(b), pwned) {
							t.Errorf("%s holds origin's content", p)
						}
					}
					return nil
				})
			}
		})
	}
}
