package repos

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
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
// gateway fetches with, such as origin's URL, which the HTTPS token is sent to, or plant
// links in it that the gateway would write through. The top folder is the gateway's too,
// with a's group allowed to write in it and the sticky bit set: a can add and remove its
// own files there but cannot move .git away and put another in its place.
//
// The tree is a's, and a process a left running may change it during the walk, so the walk
// never resolves a path: it holds each folder open (opened without following a link) and
// changes its entries relative to it, links themselves (AT_SYMLINK_NOFOLLOW). A folder
// swapped for a link meanwhile is not entered (O_NOFOLLOW). A file with more than one
// link is never given away: a hard link to a file elsewhere (where protected_hardlinks is
// off) would hand that file to a.
func handOver(path string, a *Account) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hand the checkout to %s: open %s: %w", a.Name, path, err)
	}
	h := &handover{a: a, gw: owner{uint32(os.Geteuid()), uint32(os.Getegid())}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("hand the checkout to %s: %w", a.Name, err)
	}
	if st.Uid != h.gw.uid || st.Gid != a.GID {
		h.note(".", unix.Fchown(fd, int(h.gw.uid), int(a.GID)))
	}
	if mode := uint32(st.Mode & 0o7777); mode|0o070|unix.S_ISVTX != mode {
		h.note(".", unix.Fchmod(fd, mode|0o070|unix.S_ISVTX))
	}
	h.walk(fd, ".", false)
	if len(h.errs) > 0 {
		more := ""
		if len(h.errs) > 1 {
			more = " (and " + strconv.Itoa(len(h.errs)-1) + " more)"
		}
		return fmt.Errorf("hand the checkout to %s: %w%s", a.Name, h.errs[0], more)
	}
	return nil
}

type owner struct{ uid, gid uint32 }

type handover struct {
	a    *Account
	gw   owner
	errs []error
}

// note records err, about rel, unless it is nil or says the entry is gone (removed by a
// process the last deploy left running).
func (h *handover) note(rel string, err error) {
	if err != nil && !errors.Is(err, unix.ENOENT) {
		h.errs = append(h.errs, &fs.PathError{Op: "hand over", Path: rel, Err: err})
	}
}

// walk hands over the entries of the open folder fd (rel in the checkout; inGit: inside
// .git) and closes fd.
func (h *handover) walk(fd int, rel string, inGit bool) {
	dir := os.NewFile(uintptr(fd), rel)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		h.note(rel, err)
		return
	}
	for _, name := range names {
		p := name
		if rel != "." {
			p = rel + "/" + name
		}
		git := inGit || p == ".git"
		want, perm := owner{h.a.UID, h.a.GID}, uint32(0)
		if git {
			want, perm = owner{h.gw.uid, h.a.GID}, 0o040
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			h.note(p, err)
			continue
		}
		kind := st.Mode & unix.S_IFMT
		if (st.Uid != want.uid || st.Gid != want.gid) && (kind == unix.S_IFDIR || st.Nlink <= 1) {
			h.note(p, unix.Fchownat(fd, name, int(want.uid), int(want.gid), unix.AT_SYMLINK_NOFOLLOW))
		}
		if kind == unix.S_IFDIR && perm != 0 {
			perm |= 0o010 // a group-readable folder is also searchable
		}
		// Only in .git, which a cannot write, so the entry cannot turn into a link
		// between the stat and the chmod (which would follow it).
		if mode := uint32(st.Mode & 0o7777); perm != 0 && kind != unix.S_IFLNK && mode|perm != mode {
			h.note(p, unix.Fchmodat(fd, name, mode|perm, 0))
		}
		if kind != unix.S_IFDIR {
			continue
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			h.note(p, err)
			continue
		}
		h.walk(sub, p, git)
	}
}
