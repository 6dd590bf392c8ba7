package repos

import (
	"context"
	"log/slog"
	"os"
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

// leftoverGrace is how long the left-over processes have to end after SIGTERM before they
// get SIGKILL.
const leftoverGrace = 5 * time.Second

// StopLeftovers ends the deploy commands left running by an earlier run of this node, and
// what they started, process by process. A process is one when it carries the environment
// hookgate gives deploy commands (HOOKGATE_DEPLOY, HOOKGATE_REPO) naming a deploy still
// recorded as running on this node (st's), works in that repository's checkout, and runs as
// the repository's user (its run_as account's uid, else the gateway's), so a command of
// another gateway on the same host, whose deploy ids come from another database, is never
// taken for one, nor is another user's process that copied the environment.
//
// Process groups are not signalled: a command can join any process group of the gateway's
// session, another repository's daemon's among them, and root's signal to that group would
// end the daemon too. The price: a process the command started that left the checkout
// folder (cd /) is not found.
//
// Call it at start-up, once the node's lock is held (no other process of this node runs
// deploys) and before its running deploys are marked interrupted, so each is recorded
// ended after its command was. A command of a deploy that finished (a daemon a successful
// deploy started) is left alone, as is the gateway's own process group. It reads /proc
// (Linux); elsewhere it finds nothing. It returns the pids it ended.
func StopLeftovers(ctx context.Context, st *store.Store, node string, repos []Repo, log *slog.Logger) []int {
	self := syscall.Getpgrp()
	found := procs.Commands()
	defer procs.Release(found)
	var ending []procs.Command
	for _, p := range found {
		if p.Pgid == self {
			continue
		}
		i := slices.IndexFunc(repos, func(r Repo) bool { return r.Name == p.Repo })
		if i < 0 {
			continue
		}
		r := repos[i]
		uid := os.Geteuid()
		if r.RunAs != nil {
			uid = int(r.RunAs.UID)
		}
		if p.UID != uid || !procs.Within(p.Cwd, r.Path) {
			continue
		}
		dp, err := st.Deploy(ctx, p.Deploy)
		if err != nil || dp.Node != node || dp.Status != store.DeployRunning || dp.Repo != p.Repo {
			continue
		}
		log.Warn("a deploy command cut off by the gateway's stop is still running; ending it before the deploy runs again",
			"deploy_id", dp.ID, "repo", dp.Repo, "pid", p.Pid, "uid", p.UID)
		ending = append(ending, p)
	}
	procs.End(ending, leftoverGrace)
	var pids []int
	for _, p := range ending {
		pids = append(pids, p.Pid)
	}
	slices.Sort(pids)
	return pids
}
