package repos

import (
	"strings"
	"syscall"
)

// Account is a system user that deploy commands run as instead of the gateway's own user
// (run_as in the config). It keeps the commands away from what only the gateway's user may
// read: its environment (/proc/PID/environ holds the admin token and every repository's
// secret), the database, the other repositories' checkouts and keys.
type Account struct {
	Name   string
	UID    uint32
	GID    uint32   // primary group
	Groups []uint32 // supplementary groups
	Home   string
}

// credential is what the child process switches to before it runs the command.
func (a *Account) credential() *syscall.Credential {
	return &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: a.Groups}
}

// commandEnv is env for a command run as a: HOME, USER and LOGNAME name a, not the gateway's
// user, and git accepts the checkout though its top folder and .git belong to the gateway
// (git refuses a repository another user owns unless safe.directory names it; variables
// in GIT_CONFIG_COUNT count as command-line configuration, which git honours for it).
func (a *Account) commandEnv(env []string, checkout string) []string {
	out := make([]string, 0, len(env)+7)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "HOME", name == "USER", name == "LOGNAME", strings.HasPrefix(name, "GIT_CONFIG_"):
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+a.Home, "USER="+a.Name, "LOGNAME="+a.Name,
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0="+checkout)
}
