// This file owns the lock on a checkout's .git: the mover's lock record, and removing a dead lock.
package checkout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-git/go-billy/v5"
)

// lockRecordName is the file in .git where the mover records the git lock it holds
// (index.lock, then the branch's ref lock): "NAME DEV:INODE PID".
//
// A gateway killed while it holds one (SIGKILL, the OOM killer) leaves the lock file
// behind, and git's protocol is that nobody removes another process's lock: every
// later update of that checkout would fail with "index.lock exists" until an operator
// removed it by hand, so a node restarted after a crash would never catch up. The record
// tells hookgate's own dead lock from anyone else's: the lock file is the very one the
// record names (same device and inode, so a lock an operator's git created since is not
// it) and the process that took it is gone (or is this one: a worker is the only updater
// of its checkout in a gateway). A lock held by a live process, hookgate or git, is
// never touched.
const lockRecordName = "hookgate-lock"

// takeLock creates .git/NAME exclusively, as git does, records it as this process's, and
// returns it open for writing. A lock a dead hookgate update left (whichever: the record
// names one lock at a time) is removed first.
//
// The lock is made as a new file beside the record, recorded, and only then linked to
// NAME (link fails if NAME exists, like an exclusive create): whenever NAME is there,
// its record is already written, so no moment of a kill leaves a lock that cannot be
// told from another process's.
func (m *mover) takeLock(name string, perm fs.FileMode) (billy.File, error) {
	removeDeadLock(m.dotgit)
	const tmp = lockRecordName + ".new"
	_ = m.dotgit.Remove(tmp) // one a kill left
	f, err := m.dotgit.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, fmt.Errorf("lock .git/%s: %w", name, err)
	}
	id, err := fileID(m.dotgit, tmp)
	if err == nil {
		err = writeLockRecord(m.dotgit, fmt.Sprintf("%s %s %d\n", name, id, os.Getpid()))
	}
	if err == nil {
		err = os.Link(filepath.Join(m.dotgit.Root(), tmp), filepath.Join(m.dotgit.Root(), filepath.FromSlash(name)))
		if err != nil {
			m.dropLockRecord()
		}
	}
	_ = m.dotgit.Remove(tmp)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if lockTaken != nil {
		lockTaken(name)
	}
	return f, nil
}

// lockTaken, when set (only by tests), is called once takeLock holds the lock NAME: the
// test's helper process stops there to be killed holding it.
var lockTaken func(name string)

// dropLockRecord forgets the lock once it is renamed into place or removed.
func (m *mover) dropLockRecord() {
	_ = m.dotgit.Remove(lockRecordName)
}

// removeDeadLock removes the lock a dead hookgate update left in dotgit, if any. Should
// the removal fail, the next exclusive create of that lock says it exists.
func removeDeadLock(dotgit billy.Filesystem) {
	if dead, ok := deadOwnLock(dotgit); ok {
		if err := dotgit.Remove(dead); err == nil || errors.Is(err, fs.ErrNotExist) {
			_ = dotgit.Remove(lockRecordName)
		}
	}
}

// deadOwnLock returns the lock the record names when it is still there, is the very file
// recorded, and the process that took it is gone: a lock a hookgate update took and
// never released because its process died.
func deadOwnLock(dotgit billy.Filesystem) (string, bool) {
	f, err := dotgit.Open(lockRecordName)
	if err != nil {
		return "", false
	}
	raw, err := io.ReadAll(io.LimitReader(f, 1024))
	f.Close()
	if err != nil {
		return "", false
	}
	fields := strings.Fields(string(raw))
	if len(fields) != 3 {
		return "", false
	}
	name := fields[0]
	if name != "index.lock" && !(strings.HasPrefix(name, "refs/heads/") && strings.HasSuffix(name, ".lock") &&
		!strings.Contains(name, "..")) {
		return "", false
	}
	id, err := fileID(dotgit, name)
	if err != nil || id != fields[1] {
		return "", false
	}
	pid, err := strconv.Atoi(fields[2])
	if err != nil || pid <= 0 {
		return "", false
	}
	return name, pid == os.Getpid() || errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// fileID names the file at .git/NAME by device and inode.
func fileID(dotgit billy.Filesystem, name string) (string, error) {
	fi, err := dotgit.Lstat(name)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("no inode for .git/%s", name)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

func writeLockRecord(dotgit billy.Filesystem, line string) error {
	f, err := dotgit.OpenFile(lockRecordName, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeEmptyTrackingRef removes .git/NAME, origin's branch head as last fetched, when
// it is an empty file: go-git writes a ref by truncating the file and then writing it,
// so a fetch killed with its gateway between the two leaves it empty, and go-git then
// refuses to read any ref ("ref file is empty"): every later fetch would fail. The ref is
// only a copy of origin's, and the fetch that follows writes it again.
func removeEmptyTrackingRef(dotgit billy.Filesystem, name string) {
	if fi, err := dotgit.Lstat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		_ = dotgit.Remove(name)
	}
}
