package repos

import (
	"context"
	"log/slog"
	"slices"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/internal/procs"
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
	for _, p := range procs.Commands() {
		if p.Pgid == self || p.Pgid <= 1 || slices.Contains(stopped, p.Pgid) {
			continue
		}
		dp, err := st.Deploy(ctx, p.Deploy)
		if err != nil || dp.Node != node || dp.Status != store.DeployRunning || dp.Repo != p.Repo {
			continue
		}
		if !procs.Within(p.Cwd, paths[dp.Repo]) {
			continue
		}
		log.Warn("a deploy command cut off by the gateway's stop is still running; ending it before the deploy runs again",
			"deploy_id", dp.ID, "repo", dp.Repo, "pgid", p.Pgid)
		procs.EndGroup(p.Pgid, leftoverGrace)
		stopped = append(stopped, p.Pgid)
	}
	slices.Sort(stopped)
	return stopped
}
