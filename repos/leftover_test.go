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
	gitcheckout "github.com/hookgate/hookgate/repos/checkout"
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
	var configured []Repo
	for _, repo := range []string{"site", "api", "blog"} {
		paths[repo] = filepath.Join(t.TempDir(), repo)
		if err := os.Mkdir(paths[repo], 0o755); err != nil {
			t.Fatal(err)
		}
		configured = append(configured, Repo{Spec: gitcheckout.Spec{Name: repo, Path: paths[repo]}})
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
		testkit.Eventually(t, 10*time.Second, "the command to start its child", func() bool { return len(procs.Members(c.Process.Pid)) >= 2 })
	}
	want := procs.Members(left.Process.Pid) // the command and its child

	stopped := StopLeftovers(ctx, web1, "web1", configured, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !slices.Equal(stopped, want) {
		t.Fatalf("ended processes %v, want only the cut-off command's and its child's %v", stopped, want)
	}
	if err := left.Wait(); err == nil {
		t.Fatal("the cut-off command exited cleanly; it should have been ended")
	}
	if m := procs.Members(left.Process.Pid); len(m) != 0 {
		t.Fatalf("processes %v of the cut-off command's group are still running (its child?)", m)
	}
	for name, c := range map[string]*exec.Cmd{"the succeeded deploy's daemon": kept, "web2's command": neighbour,
		"another gateway's command": elsewhere} {
		if err := syscall.Kill(-c.Process.Pid, 0); errors.Is(err, syscall.ESRCH) {
			t.Fatalf("%s was ended", name)
		}
	}
}

// runningDeploy records a deploy of repo claimed, so running, by web1 in a new database.
func runningDeploy(t *testing.T, repo string) (*store.Store, int64) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hookgate.db"), store.WithNode("web1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.EnqueueManual(ctx, repo); err != nil {
		t.Fatal(err)
	}
	dp, err := st.ClaimDeploy(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	return st, dp.ID
}

// startIn starts command with sh -c in dir with extra environment, as cred's user when it
// is not nil, in process group pgid (0: a new one of its own).
func startIn(t *testing.T, command, dir string, env []string, cred *syscall.Credential, pgid int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// TestStopLeftoversSparesTheGroup: a deploy command can move itself into another process
// group of the gateway's session (a run_as user's command into the group of another
// user's daemon). After a crash the left-over command and its child are ended, and the
// daemon that shared their group, which carries no deploy's environment, keeps running.
func TestStopLeftoversSparesTheGroup(t *testing.T) {
	st, id := runningDeploy(t, "site")
	checkout := t.TempDir()
	// The daemon runs in the same checkout folder even: only the environment tells.
	daemon := startIn(t, "exec sleep 300", checkout, nil, nil, 0)
	left := startIn(t, "sleep 300 & wait", checkout,
		[]string{fmt.Sprintf("HOOKGATE_DEPLOY=%d", id), "HOOKGATE_REPO=site"}, nil, daemon.Process.Pid)
	group := daemon.Process.Pid
	testkit.Eventually(t, 10*time.Second, "the command to start its child", func() bool { return len(procs.Members(group)) == 3 })

	stopped := StopLeftovers(context.Background(), st, "web1", []Repo{{Spec: gitcheckout.Spec{Name: "site", Path: checkout}}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := left.Wait(); err == nil {
		t.Fatal("the cut-off command exited cleanly; it should have been ended")
	}
	if m := procs.Members(group); !slices.Equal(m, []int{daemon.Process.Pid}) {
		t.Fatalf("processes %v run in the shared group after StopLeftovers, want the daemon %d alone (ended %v)", m, daemon.Process.Pid, stopped)
	}
	if len(stopped) != 2 || !slices.Contains(stopped, left.Process.Pid) {
		t.Fatalf("ended %v, want the command %d and its child", stopped, left.Process.Pid)
	}
}

// TestStopLeftoversChecksTheUser: with run_as, a left-over process is ended only when it
// runs as the repository's user. Another user's process that carries the same deploy's
// environment, in the same checkout and the same process group, is left running.
func TestStopLeftoversChecksTheUser(t *testing.T) {
	deployer, other := testkit.NewUser(t), testkit.NewUser(t)
	st, id := runningDeploy(t, "site")
	checkout := t.TempDir()
	testkit.Reachable(t, checkout)
	env := []string{fmt.Sprintf("HOOKGATE_DEPLOY=%d", id), "HOOKGATE_REPO=site"}
	impostor := startIn(t, "exec sleep 300", checkout, env, &syscall.Credential{Uid: other.UID, Gid: other.GID}, 0)
	group := impostor.Process.Pid
	left := startIn(t, "sleep 300 & wait", checkout, env, &syscall.Credential{Uid: deployer.UID, Gid: deployer.GID}, group)
	testkit.Eventually(t, 10*time.Second, "the command to start its child", func() bool { return len(procs.Members(group)) == 3 })

	site := Repo{Spec: gitcheckout.Spec{Name: "site", Path: checkout}, RunAs: &Account{Name: deployer.Name, UID: deployer.UID, GID: deployer.GID}}
	stopped := StopLeftovers(context.Background(), st, "web1", []Repo{site}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := left.Wait(); err == nil {
		t.Fatal("the cut-off command exited cleanly; it should have been ended")
	}
	if m := procs.Members(group); !slices.Equal(m, []int{impostor.Process.Pid}) {
		t.Fatalf("processes %v run in the shared group after StopLeftovers, want the other user's %d alone (ended %v)", m, impostor.Process.Pid, stopped)
	}
}
