package checkout

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/testkit"
)

// killHelperEnv names the checkout the test binary updates when TestUpdateAfterKilledUpdate
// starts it again as a helper process, and heldEnv the file it writes once it holds
// index.lock.
const (
	killHelperEnv = "HOOKGATE_TEST_UPDATE_KILLED"
	heldEnv       = "HOOKGATE_TEST_UPDATE_HELD"
)

// TestMain runs the tests, or, started as the helper of TestUpdateAfterKilledUpdate, the
// update it gets killed in.
func TestMain(m *testing.M) {
	if path := os.Getenv(killHelperEnv); path != "" {
		killedUpdate(path)
		os.Exit(1) // killed before this, or the update failed
	}
	os.Exit(m.Run())
}

// killedUpdate updates the checkout at path, says when it holds index.lock, and waits
// there to be killed.
func killedUpdate(path string) {
	lockTaken = func(name string) {
		if name != "index.lock" {
			return
		}
		if err := os.WriteFile(os.Getenv(heldEnv), nil, 0o644); err != nil {
			panic(err)
		}
		select {} // killed here
	}
	if _, err := Update(context.Background(), Spec{Name: "test", Path: path, Branch: "main"}); err != nil {
		fmt.Fprintln(os.Stderr, "helper update:", err)
	}
}

// TestUpdateAfterKilledUpdate kills (SIGKILL) a real process in the middle of an update,
// while it holds .git/index.lock, as happens to a gateway killed during a deploy; the next
// update must remove that lock, which no live process holds, and bring the checkout to
// origin's head, where it used to fail with "index.lock exists" until someone removed it.
func TestUpdateAfterKilledUpdate(t *testing.T) {
	f := newFixture(t, map[string]string{"keep.txt": "keep"}, true)
	lock := filepath.Join(f.Path, ".git", "index.lock")
	record := filepath.Join(f.Path, ".git", lockRecordName)
	// A real process takes the lock and stops there (lockTaken), so the kill lands while
	// the lock is held, whatever the machine's speed.
	f.Write(map[string]string{"app.txt": "v2\n", "sub/new.txt": "new\n"})
	want := f.CommitAll("v2")
	held := filepath.Join(t.TempDir(), "held")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), killHelperEnv+"="+f.Path, heldEnv+"="+held)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	testkit.Eventually(t, time.Minute, "the helper to hold index.lock", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the helper ended before it held the lock: %v", err)
		default:
		}
		_, err := os.Stat(held)
		return err == nil
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	for _, p := range []string{lock, record} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the killed update left no %s: %v", filepath.Base(p), err)
		}
	}

	res, err := Update(context.Background(), f.spec(""))
	if err != nil {
		t.Fatalf("update after the killed one: %v", err)
	}
	if res.To != want || f.head() != want {
		t.Fatalf("update after the killed one: %+v, HEAD %s, want %s", res, f.head(), want)
	}
	f.assertClean()
	for _, p := range []string{lock, record, filepath.Join(f.Path, ".git", journalName)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}

// TestUpdateLeavesOthersLocks: a lock is removed only when it is the very file a dead
// hookgate process recorded. A lock a live process holds, or one made since by anyone
// else, is refused as before; the ref lock of a killed update is recovered like the
// index's.
func TestUpdateLeavesOthersLocks(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })

	fileID := func(t *testing.T, p string) string {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	tests := []struct {
		name    string
		lock    string // under .git
		pid     int
		replace bool   // the lock is replaced by another file after it was recorded
		empty   bool   // a branch lock killed before its hash was written
		want    string // "" = the update succeeds
	}{
		{"index lock of a dead hookgate", "index.lock", deadPID, false, false, ""},
		{"branch lock of a dead hookgate", "refs/heads/main.lock", deadPID, false, false, ""},
		// go-git's fetch reads refs/heads/main.lock as a ref, and an empty one fails it.
		{"empty branch lock of a dead hookgate", "refs/heads/main.lock", deadPID, false, true, ""},
		{"index lock of a live process", "index.lock", live.Process.Pid, false, false, "index.lock exists"},
		{"index lock made since by another process", "index.lock", deadPID, true, false, "index.lock exists"},
		{"branch lock of a live process", "refs/heads/main.lock", live.Process.Pid, false, false, "lock refs/heads/main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, map[string]string{"keep.txt": "keep"}, true)
			f.Write(map[string]string{"new.txt": "new"})
			want := f.CommitAll("second")
			lock := filepath.Join(f.Path, ".git", filepath.FromSlash(tt.lock))
			// What a killed update leaves: an empty index.lock or partly written index;
			// a branch lock with the new hash in it or nothing yet.
			content := ""
			if strings.HasPrefix(tt.lock, "refs/") && !tt.empty {
				content = want + "\n"
			}
			testkit.WriteFiles(f.t, f.Path, map[string]string{".git/" + tt.lock: content})
			rec := fmt.Sprintf("%s %s %d\n", tt.lock, fileID(t, lock), tt.pid)
			if err := os.WriteFile(filepath.Join(f.Path, ".git", lockRecordName), []byte(rec), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.replace {
				// Made before the old one goes, so it cannot get the old one's inode.
				testkit.WriteFiles(f.t, f.Path, map[string]string{".git/" + tt.lock + ".new": "git's"})
				if err := os.Rename(lock+".new", lock); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Update(context.Background(), f.spec(""))
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("update: %v, want an error containing %q", err, tt.want)
				}
				if _, serr := os.Stat(lock); serr != nil {
					t.Fatalf("the other process's lock was removed: %v", serr)
				}
				return
			}
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if f.head() != want {
				t.Fatalf("HEAD %s, want %s", f.head(), want)
			}
			f.assertClean()
			if _, err := os.Stat(lock); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", tt.lock, err)
			}
		})
	}
}

// TestUpdateAfterKilledFetch: go-git writes a ref by truncating its file and then writing
// it, so a gateway killed during a fetch can leave refs/remotes/origin/main empty, and
// go-git then fails every fetch with "ref file is empty" (TestFleet saw a node stuck so).
// The next update must fetch again and reach origin's head; an empty ref that is not the
// tracking ref hookgate writes is not its to remove.
func TestUpdateAfterKilledFetch(t *testing.T) {
	f := newFixture(t, map[string]string{"keep.txt": "keep"}, true)
	f.Write(map[string]string{"new.txt": "new"})
	want := f.CommitAll("second")
	tracking := filepath.Join(f.Path, ".git", "refs", "remotes", "origin", "main")
	if err := os.WriteFile(tracking, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Update(context.Background(), f.spec(""))
	if err != nil {
		t.Fatalf("update after the killed fetch: %v", err)
	}
	if res.To != want || f.head() != want {
		t.Fatalf("update after the killed fetch: %+v, HEAD %s, want %s", res, f.head(), want)
	}
	if got := testkit.Git(t, f.Path, "rev-parse", "refs/remotes/origin/main"); got != want {
		t.Errorf("refs/remotes/origin/main = %s, want %s", got, want)
	}
	f.assertClean()

	// Someone else's empty ref is left alone (and go-git's error says why the update fails).
	other := filepath.Join(f.Path, ".git", "refs", "heads", "feature")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(context.Background(), f.spec("")); err == nil {
		t.Log("go-git now tolerates an empty ref beside the branch")
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("refs/heads/feature was removed: %v", err)
	}
}
