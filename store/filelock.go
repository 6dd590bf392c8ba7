package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrDatabaseInUse means another process holds the SQLite file (see WithExclusive): a
// running gateway, or hookgate db copy reading it.
var ErrDatabaseInUse = errors.New("the SQLite database is in use by another hookgate process")

// Two gateways on one SQLite file would each take the other's running deploys for ones a
// crash cut off, and end and re-queue them at start; PostgreSQL refuses that with
// LockGateway's advisory lock. A SQLite file has no session to hold a lock in, so the
// process holds an flock(2) on a file beside the database, DB.lock, open for its whole
// life: the kernel lets go of it when the process ends however it ends, SIGKILL
// included, so a restart after a crash is never refused. Why a file of its own and not the
// database: SQLite locks the database with fcntl(2) byte ranges, which on NFS is also how
// Linux emulates flock, so a lock on the database itself would shut out every reader
// there; and the lock file can say who holds it (the pid is written into it).
//
// Go opens every file close-on-exec, so deploy commands do not inherit the descriptor: a
// command left running by a crashed gateway does not keep its successor out.

// lockPath is where the lock for the database file db lives: beside the file the path
// leads to, symbolic links resolved, so two paths to one database share one lock.
func lockPath(db string) (string, error) {
	abs, err := filepath.Abs(db)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		return resolved + ".lock", nil
	}
	// Not created yet: its folder exists (openSQLite made it).
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)) + ".lock", nil
}

// lockFile takes the exclusive lock on the SQLite database db for this process, or fails
// at once with ErrDatabaseInUse naming the database and the holder's pid.
func lockFile(db string) (*os.File, error) {
	name, err := lockPath(db)
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	// 0600: a deploy command of the gateway's group could otherwise open it and take the
	// lock, keeping the gateway from starting again.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s (lock file %s)",
				ErrDatabaseInUse, strings.TrimSuffix(name, ".lock"), holder(f), name)
		}
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock database %s: write %s: %w", db, name, err)
	}
	return f, nil
}

// holder names the process holding the lock file f, as its pid. The holder writes it just
// after it took the lock, so a moment's wait covers a start-up racing this one.
func holder(f *os.File) string {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
			return "pid " + strconv.Itoa(pid)
		}
		if time.Now().After(deadline) {
			return "another process (its pid is not in the lock file)"
		}
	}
}

// unlockFile lets go of the lock taken by lockFile, emptied first so that it names no
// process that no longer holds it. The file stays: removing it would let a process that
// opened it just before lock a file no one else can find.
func unlockFile(f *os.File) error {
	if f == nil {
		return nil
	}
	_ = f.Truncate(0)
	return f.Close()
}
