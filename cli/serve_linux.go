// serve_linux.go holds what serve does to its own process on Linux.

package cli

import "golang.org/x/sys/unix"

// setNonDumpable keeps other processes of the gateway's user, deploy commands among them,
// out of its /proc/PID files: environ holds the admin token and the secrets given through
// the environment, and mem and maps the rest. Only root (CAP_SYS_PTRACE) can still read
// them, so deploy commands that run as the gateway's root user are not kept out: that
// is what run_as is for. It also means no core dumps.
func setNonDumpable() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
