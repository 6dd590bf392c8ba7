package repos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/procs"
	"github.com/hookgate/hookgate/internal/testkit"
	"github.com/hookgate/hookgate/store"
)

// TestStopLeftovers: at start-up the process group of a command left running by this
// node's cut-off deploy (still recorded running) is ended, children included; a daemon
// started by a deploy that succeeded, another node's running deploy's command, and a
// command of another gateway on the host whose deploy has the same id and repository but
// works in another checkout, are left alone.
func TestStopLeftovers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookgate.db")
	open := func(node string) *store.Store {
		st, err := store.Open(ctx, path, store.WithNode(node))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	web1, web2 := open("web1"), open("web2")
	claimed := func(st *store.Store, repo string) int64 {
		t.Helper()
		if _, err := st.EnqueueManual(ctx, repo); err != nil {
			t.Fatal(err)
		}
		dp, err := st.ClaimDeploy(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		return dp.ID
	}
	cutOff := claimed(web1, "site")
	daemon := claimed(web1, "api")
	if err := web1.FinishDeploy(ctx, daemon, store.Result{Status: store.DeploySucceeded}); err != nil {
		t.Fatal(err)
	}
	other := claimed(web2, "blog")

	paths := map[string]string{}
	for _, repo := range []string{"site", "api", "blog"} {
		paths[repo] = filepath.Join(t.TempDir(), repo)
		if err := os.Mkdir(paths[repo], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Each a command that started a child, in a process group of its own, in its
	// checkout, as runCommand makes them.
	start := func(deploy int64, repo, dir string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sh", "-c", "sleep 300 & wait")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), fmt.Sprintf("HOOKGATE_DEPLOY=%d", deploy), "HOOKGATE_REPO="+repo)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		})
		return cmd
	}
	left, kept, neighbour := start(cutOff, "site", paths["site"]), start(daemon, "api", paths["api"]), start(other, "blog", paths["blog"])
	elsewhere := start(cutOff, "site", t.TempDir()) // another gateway's deploy with the same id
	// The child sleep must exist (and carry the environment) before the scan.
	for _, c := range []*exec.Cmd{left, kept, neighbour, elsewhere} {
		testkit.Eventually(t, 10*time.Second, "the command to start its child", func() bool { return procs.LiveMembers(c.Process.Pid) >= 2 })
	}

	stopped := StopLeftovers(ctx, web1, "web1", paths, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !slices.Equal(stopped, []int{left.Process.Pid}) {
		t.Fatalf("ended process groups %v, want only the cut-off command's %d", stopped, left.Process.Pid)
	}
	if err := left.Wait(); err == nil {
		t.Fatal("the cut-off command exited cleanly; it should have been ended")
	}
	if n := procs.LiveMembers(left.Process.Pid); n != 0 {
		t.Fatalf("%d processes of the cut-off command's group are still running (its child?)", n)
	}
	for name, c := range map[string]*exec.Cmd{"the succeeded deploy's daemon": kept, "web2's command": neighbour,
		"another gateway's command": elsewhere} {
		if err := syscall.Kill(-c.Process.Pid, 0); errors.Is(err, syscall.ESRCH) {
			t.Fatalf("%s was ended", name)
		}
	}
}
