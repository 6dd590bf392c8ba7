package repos

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
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

// handOver makes the checkout at path writable by a after the gateway has updated it:
// everything in it the gateway wrote becomes a's, except .git, which is (or becomes
// again) the gateway's, readable by a's group, so the commands cannot rewrite what the
// gateway fetches with,
// such as origin's URL, which the HTTPS token is sent to, or plant links in it that the
// gateway would write through. The top folder is the gateway's too, with a's group
// allowed to write in it and the sticky bit set: a can add and remove its own files there
// but cannot move .git away and put another in its place.
//
// Every call goes through an os.Root on the checkout and changes links themselves
// (Lchown), never what they point to, so a symbolic link in the tree, which the upstream
// or a's commands may have put there, never leads it outside the checkout.
func handOver(path string, a *Account) error {
	root, err := os.OpenRoot(path)
	if err != nil {
		return fmt.Errorf("hand the checkout to %s: %w", a.Name, err)
	}
	defer root.Close()
	gw := owner{uint32(os.Geteuid()), uint32(os.Getegid())}
	var errs []error
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		// The top folder and .git stay the gateway's, in a's group: the top folder
		// group-writable and sticky, .git group-readable, so a's commands can run git
		// (git describe in a build) but not change the repository.
		want, perm := owner{a.UID, a.GID}, fs.FileMode(0)
		switch {
		case p == ".":
			want, perm = owner{gw.uid, a.GID}, 0o070|fs.ModeSticky
		case p == ".git" || strings.HasPrefix(p, ".git/"):
			want, perm = owner{gw.uid, a.GID}, 0o040
			if d.IsDir() {
				perm = 0o050
			}
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile by a process the last deploy left running
		}
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Uid != want.uid || st.Gid != want.gid {
			if err := root.Lchown(p, int(want.uid), int(want.gid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		// Chmod follows a link: links are left alone (their own mode means nothing).
		if have := info.Mode() & (fs.ModePerm | fs.ModeSticky); perm != 0 && d.Type()&fs.ModeSymlink == 0 && have|perm != have {
			if err := root.Chmod(p, have|perm); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		more := ""
		if len(errs) > 1 {
			more = " (and " + strconv.Itoa(len(errs)-1) + " more)"
		}
		return fmt.Errorf("hand the checkout to %s: %w%s", a.Name, errs[0], more)
	}
	return nil
}

type owner struct{ uid, gid uint32 }
