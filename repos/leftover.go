package repos

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/store"
)

// A gateway killed while a deploy command ran (SIGKILL, the OOM killer, a crash) leaves
// the command running in its own process group: nothing is left to cancel it. The restarted
// gateway marks that deploy interrupted and runs it again, and the old command would run
// beside the new one in the same checkout. A service manager that kills the whole unit
// (systemd's KillMode=mixed or control-group) ends it first; without one, StopLeftovers does.

// leftoverGrace is how long a left-over process group has to end after SIGTERM before it
// gets SIGKILL.
const leftoverGrace = 5 * time.Second

// StopLeftovers ends the process groups of deploy commands left running by an earlier run
// of this node. A group is one when a process in it carries the environment hookgate gives
// deploy commands (HOOKGATE_DEPLOY, HOOKGATE_REPO) naming a deploy still recorded as
// running on this node (st's), and works in that repository's checkout (paths: each
// repository's path), so a command of another gateway on the same host, whose deploy ids
// come from another database, is never taken for one. Call it at start-up, once the node's
// lock is held (no other process of this node runs deploys) and before its running deploys
// are marked interrupted, so each is recorded ended after its command was. A command of a
// deploy that finished (a daemon a successful deploy started) is left alone, as is the
// gateway's own process group. It reads /proc (Linux); elsewhere it finds nothing. It
// returns the process groups it ended.
func StopLeftovers(ctx context.Context, st *store.Store, node string, paths map[string]string, log *slog.Logger) []int {
	self := syscall.Getpgrp()
	var stopped []int
	for _, p := range commandProcesses() {
		if p.pgid == self || p.pgid <= 1 || slices.Contains(stopped, p.pgid) {
			continue
		}
		dp, err := st.Deploy(ctx, p.deploy)
		if err != nil || dp.Node != node || dp.Status != store.DeployRunning || dp.Repo != p.repo {
			continue
		}
		if !within(p.cwd, paths[dp.Repo]) {
			continue
		}
		log.Warn("a deploy command cut off by the gateway's stop is still running; ending it before the deploy runs again",
			"deploy_id", dp.ID, "repo", dp.Repo, "pgid", p.pgid)
		endGroup(p.pgid)
		stopped = append(stopped, p.pgid)
	}
	slices.Sort(stopped)
	return stopped
}

// within tells whether dir is path or inside it, symbolic links resolved (a process's
// working directory in /proc is).
func within(dir, path string) bool {
	if dir == "" || path == "" {
		return false
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	rel, err := filepath.Rel(path, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// endGroup sends SIGTERM to the process group, then SIGKILL if a process of it still runs
// after leftoverGrace. A zombie does not count: its parent (init, or a gateway that is a
// container's first process and reaps nothing it did not start) may be slow to reap it.
func endGroup(pgid int) {
	if err := syscall.Kill(-pgid, syscall.SIGTERM); errors.Is(err, syscall.ESRCH) {
		return
	}
	deadline := time.Now().Add(leftoverGrace)
	for time.Now().Before(deadline) {
		if liveMembers(pgid) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// liveMembers counts the processes of process group pgid that are not zombies.
func liveMembers(pgid int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command's name in parentheses: state, ppid, pgrp, ….
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			n++
		}
	}
	return n
}

// commandProcess is a process that carries a deploy command's environment.
type commandProcess struct {
	pgid   int
	deploy int64
	repo   string
	cwd    string
}

// commandProcesses lists the processes that carry HOOKGATE_DEPLOY and HOOKGATE_REPO in
// their environment (deploy commands and what they started). Processes whose environment
// cannot be read (another user's, without root) are skipped.
func commandProcesses() []commandProcess {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []commandProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		p, ok := parseCommandEnv(env)
		if !ok {
			continue
		}
		if p.pgid, err = syscall.Getpgid(pid); err != nil {
			continue
		}
		if p.cwd, err = os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err != nil {
			continue
		}
		out = append(out, p)
	}
	return out
}

// parseCommandEnv finds HOOKGATE_DEPLOY=N and HOOKGATE_REPO=NAME in a NUL-separated
// environment.
func parseCommandEnv(env []byte) (commandProcess, bool) {
	var p commandProcess
	for _, kv := range bytes.Split(env, []byte{0}) {
		k, v, _ := strings.Cut(string(kv), "=")
		switch k {
		case "HOOKGATE_DEPLOY":
			p.deploy, _ = strconv.ParseInt(v, 10, 64)
		case "HOOKGATE_REPO":
			p.repo = v
		}
	}
	return p, p.deploy > 0 && p.repo != ""
}
