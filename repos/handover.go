// This file owns the run_as hand-over: giving a checkout to the account and taking it back.
package repos

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The hand-over to a run_as account lives here too: it walks the work tree, so it is
// held to the same rule as the updater (never through a symlink), by file descriptors.

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
// changes each entry through a descriptor of its own, opened without following a link and
// checked (walk). A folder swapped for a link meanwhile is not entered (O_NOFOLLOW). A file
// with more than one link is never given away: a hard link to a file elsewhere (where
// protected_hardlinks is off) would hand that file to a.
func handOver(path string, a *Account) error {
	return handOverWalk(path, a, false)
}

// reclaim takes the top folder and .git back before an update, as handOver leaves them
// after one: the top folder the gateway's (sticky, the account's group may write) and
// .git the gateway's, only readable by the account's group. handOver runs only after an
// update that succeeded, so without this the first update of a checkout the account
// already owned (run_as just switched on), or one after a failed update, would run while
// the account could still swap or write .git. The work tree itself stays the account's.
func reclaim(path string, a *Account) error {
	return handOverWalk(path, a, true)
}

func handOverWalk(path string, a *Account, gitOnly bool) error {
	verb := "hand the checkout to " + a.Name
	if gitOnly {
		verb = "take .git back from " + a.Name
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) && gitOnly {
		return nil // not cloned yet: the clone is made by the gateway, in a folder of its own
	}
	if err != nil {
		return fmt.Errorf("%s: open %s: %w", verb, path, err)
	}
	h := &handover{a: a, gw: owner{uint32(os.Geteuid()), uint32(os.Getegid())}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("%s: %w", verb, err)
	}
	if st.Uid != h.gw.uid || st.Gid != a.GID {
		h.note(".", unix.Fchown(fd, int(h.gw.uid), int(a.GID)))
	}
	if mode := uint32(st.Mode & 0o7777); mode|0o070|unix.S_ISVTX != mode {
		h.note(".", unix.Fchmod(fd, mode|0o070|unix.S_ISVTX))
	}
	if gitOnly {
		h.walkGit(fd)
	} else {
		h.walk(fd, ".", false)
	}
	if len(h.errs) > 0 {
		more := ""
		if len(h.errs) > 1 {
			more = " (and " + strconv.Itoa(len(h.errs)-1) + " more)"
		}
		return fmt.Errorf("%s: %w%s", verb, h.errs[0], more)
	}
	return nil
}

// walkGit gives .git, below the open top folder fd, back to the gateway the way walk does
// inside .git, and closes fd. A .git that is not a folder is left to the update, which
// refuses it.
func (h *handover) walkGit(fd int) {
	defer unix.Close(fd)
	sub, err := unix.Openat(fd, ".git", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return
	}
	if err != nil {
		h.note(".git", err)
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(sub, &st); err != nil {
		h.note(".git", err)
		unix.Close(sub)
		return
	}
	want := owner{h.gw.uid, h.a.GID}
	if h.needs(&st, want, 0o050) {
		h.fix(sub, ".git", &st, want, 0o050)
	}
	h.walk(sub, ".git", true)
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
//
// An entry is looked at with fstatat only to skip what needs no change, which after the
// first hand-over is nearly everything. To change one, the walk opens it (never
// following a link: O_NOFOLLOW, or O_PATH|O_NOFOLLOW for the link itself), checks what
// it opened, and changes that open file: a name the account swaps meanwhile, for a hard
// link to a file elsewhere or for a symlink, is never chowned or chmod'ed by name.
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
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				h.note(p, err)
				continue
			}
			if perm != 0 {
				perm |= 0o010 // a group-readable folder is also searchable
			}
			// What fstatat saw decides whether to look again; a folder swapped in since
			// that needs a change gets it at the next hand-over.
			if h.needs(&st, want, perm) {
				if err := unix.Fstat(sub, &st); err != nil {
					h.note(p, err)
					unix.Close(sub)
					continue
				}
				h.fix(sub, p, &st, want, perm)
			}
			h.walk(sub, p, git)
			continue
		}
		if git && st.Nlink > 1 && st.Uid != h.gw.uid && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// The account's, and linked elsewhere: taking it back could take a file
			// outside the checkout from whoever owns it, leaving it lets the account
			// write .git. Neither: the deploy stops and says so.
			h.note(p, errors.New("a file in .git that is not the gateway's has another hard link; remove the link or clone the checkout again"))
			continue
		}
		if !h.needs(&st, want, perm) {
			continue
		}
		// Only a file needing a mode is opened for reading (only in .git, where files
		// are the gateway's); for a change of owner, O_PATH opens without reading.
		flags := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if h.needsMode(&st, perm) {
			flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
		}
		f, err := unix.Openat(fd, name, flags, 0)
		if err == unix.ELOOP {
			continue // became a link since the fstatat: left for the next hand-over
		}
		if err != nil {
			h.note(p, err)
			continue
		}
		if err := unix.Fstat(f, &st); err != nil {
			h.note(p, err)
		} else if st.Mode&unix.S_IFMT != unix.S_IFDIR { // a folder swapped in: next time
			h.fix(f, p, &st, want, perm)
		}
		unix.Close(f)
	}
}

func (h *handover) needs(st *unix.Stat_t, want owner, perm uint32) bool {
	return h.needsOwner(st, want) || h.needsMode(st, perm)
}

// needsOwner: a file with more than one link is never given away: a hard link to a
// file elsewhere (where protected_hardlinks is off) would hand that file to a.
func (h *handover) needsOwner(st *unix.Stat_t, want owner) bool {
	kind := st.Mode & unix.S_IFMT
	return (st.Uid != want.uid || st.Gid != want.gid) && (kind == unix.S_IFDIR || st.Nlink <= 1)
}

func (h *handover) needsMode(st *unix.Stat_t, perm uint32) bool {
	mode := uint32(st.Mode & 0o7777)
	return perm != 0 && st.Mode&unix.S_IFMT != unix.S_IFLNK && gitMode(mode, perm) != mode
}

// gitMode is the mode an entry of .git gets: perm added for the account's group, and no
// write for the group or others, which an account that once owned the checkout may have
// left there.
func gitMode(mode, perm uint32) uint32 { return (mode | perm) &^ 0o022 }

// fix changes the open file f (fstat'ed into st; opened with O_PATH unless it needs a
// mode) to be want's with perm added.
func (h *handover) fix(f int, p string, st *unix.Stat_t, want owner, perm uint32) {
	if h.needsOwner(st, want) {
		// fchown does not take an O_PATH descriptor; fchownat on it with AT_EMPTY_PATH
		// changes exactly the opened inode, a link itself included.
		h.note(p, unix.Fchownat(f, "", int(want.uid), int(want.gid), unix.AT_EMPTY_PATH))
	}
	if h.needsMode(st, perm) {
		h.note(p, unix.Fchmod(f, gitMode(uint32(st.Mode&0o7777), perm)))
	}
}
